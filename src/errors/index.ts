/**
 * Every error the API answers with: a stable code (TMR_API_WHAT), the HTTP status, a message and a
 * hint that says how to solve it. The codes live here, once; docs/api.md documents each, and a
 * test keeps the two in step.
 */

export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
  readonly hint: string;
  /** A transient error may succeed when repeated unchanged. */
  readonly transient?: boolean;
}

export const API_ERRORS = {
  TMR_API_UNAUTHENTICATED: {
    status: 401,
    message: 'this call needs a token or a session',
    hint: 'send "Authorization: Bearer <token>"; create one with `tomaranai token create` or POST /api/v1/sessions',
  },
  TMR_API_BAD_CREDENTIALS: {
    status: 401,
    message: 'unknown user or wrong password',
    hint: 'check the user name and password; an admin can reset it with `tomaranai user add --force`',
  },
  TMR_API_TOKEN_INVALID: {
    status: 401,
    message: 'the token is unknown, revoked or expired',
    hint: 'create a new token (`tomaranai token create` or POST /api/v1/tokens) or log in again',
  },
  TMR_API_FORBIDDEN: {
    status: 403,
    message: 'your role may not do this',
    hint: 'ask an admin for a role that allows it (see "Who may do what" in docs/api.md)',
  },
  TMR_API_NOT_YOUR_SYSTEM: {
    status: 403,
    message: 'a vendor account sees and acts only on its own systems',
    hint: 'name a service or VM of your vendor; GET /api/v1/services lists them',
  },
  TMR_API_LOGIN_RATE_LIMITED: {
    status: 429,
    message: 'too many failed logins; wait before trying again',
    hint: 'wait for the time in the Retry-After header; an admin can create a token with `tomaranai token create`',
    transient: true,
  },
  TMR_API_VALIDATION: {
    status: 400,
    message: 'the request does not match its schema',
    hint: 'see "issues" for each field at fault and /openapi.json for the schema',
  },
  TMR_API_NOT_FOUND: {
    status: 404,
    message: 'no such resource',
    hint: 'check the name or id; list resources with the matching GET endpoint',
  },
  TMR_API_ROUTE_NOT_FOUND: {
    status: 404,
    message: 'no such endpoint',
    hint: 'see /openapi.json for every endpoint',
  },
  TMR_API_CONFLICT: {
    status: 409,
    message: 'the resource is not in a state that allows this',
    hint: 'read its current state first; the message says what is in the way',
  },
  TMR_API_BLUEPRINT_INVALID: {
    status: 422,
    message: 'the blueprint is not valid; nothing was changed',
    hint: 'fix the problems listed in "issues" (`tomaranai validate FILE` shows them with lines)',
  },
  TMR_API_BLUEPRINT_STALE: {
    status: 409,
    message: 'the running blueprint changed since the version you diffed against',
    hint: 'GET /api/v1/blueprint, review the diff again and send the current version as baseVersion',
  },
  TMR_API_DRILL_RUNNING: {
    status: 409,
    message: 'a drill is already running',
    hint: 'wait for it to end (GET /api/v1/drills/{id}) and start the next one then',
    transient: true,
  },
  TMR_API_NOT_LEADER: {
    status: 503,
    message: 'this instance follows; only the leader changes state',
    hint: 'send mutating calls to the leader (GET /readyz names it) or retry once a leader is elected',
    transient: true,
  },
  TMR_API_SUBSTRATE_REFUSED: {
    status: 502,
    message: 'the substrate refused the action',
    hint: 'the message carries its reason; the journal records the refusal',
  },
  TMR_API_PAYLOAD_TOO_LARGE: {
    status: 413,
    message: 'the request body is too large',
    hint: 'a blueprint may be at most 8 MiB; other bodies are small JSON documents',
  },
  TMR_API_INTERNAL: {
    status: 500,
    message: 'an internal error; nothing was half-done on purpose, but check the journal',
    hint: 'the log has the details under the request id; report it with that id',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ApiErrorCode = keyof typeof API_ERRORS;

export interface ApiIssue {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly hint: string;

  constructor(
    readonly code: ApiErrorCode,
    message?: string,
    readonly issues?: readonly ApiIssue[],
    hint?: string,
  ) {
    super(message ?? API_ERRORS[code].message);
    this.status = API_ERRORS[code].status;
    this.hint = hint ?? API_ERRORS[code].hint;
  }

  body(): { error: { code: ApiErrorCode; message: string; hint: string; transient: boolean; issues?: readonly ApiIssue[] } } {
    const spec: ErrorSpec = API_ERRORS[this.code];
    return {
      error: {
        code: this.code,
        message: this.message,
        hint: this.hint,
        transient: spec.transient === true,
        ...(this.issues === undefined ? {} : { issues: this.issues }),
      },
    };
  }
}

export function apiError(code: ApiErrorCode, message?: string, hint?: string): ApiError {
  return new ApiError(code, message, undefined, hint);
}
