/**
 * Every error Tomaranai raises, stated once: a stable code (TMR_AREA_WHAT), its area, the HTTP
 * status the API answers it with, a default message and a hint that says how to solve it, and
 * whether repeating the same call may succeed (transient). docs/errors.md explains each code; a
 * test keeps the two in step. Domain code throws `TomaranaiError` with a domain code
 * (TMR_ACCOUNT_EXISTS, TMR_LAB_NOT_ROOT, …); the API answers any TomaranaiError with its status and
 * body, the CLI prints its code, message and hint. Blueprint validation problems are not errors:
 * they are reported as a list (model/problems.ts).
 */

export type ErrorArea = 'api' | 'account' | 'service' | 'journal' | 'drill' | 'lab' | 'plan' | 'size' | 'segmentation' | 'report' | 'notify' | 'fence' | 'vsphere';

export interface ErrorSpec {
  readonly area: ErrorArea;
  readonly status: number;
  readonly message: string;
  readonly hint: string;
  /** A transient error may succeed when repeated unchanged. */
  readonly transient?: boolean;
}

export const ERRORS = {
  TMR_API_UNAUTHENTICATED: {
    area: 'api',
    status: 401,
    message: 'this call needs a token or a session',
    hint: 'send "Authorization: Bearer <token>"; create one with `tomaranai token create` or POST /api/v1/sessions',
  },
  TMR_API_BAD_CREDENTIALS: {
    area: 'api',
    status: 401,
    message: 'unknown user or wrong password',
    hint: 'check the user name and password; an admin can reset it with `tomaranai user add --force`',
  },
  TMR_API_TOKEN_INVALID: {
    area: 'api',
    status: 401,
    message: 'the token is unknown, revoked or expired',
    hint: 'create a new token (`tomaranai token create` or POST /api/v1/tokens) or log in again',
  },
  TMR_API_FORBIDDEN: {
    area: 'api',
    status: 403,
    message: 'your role may not do this',
    hint: 'ask an admin for a role that allows it (see "Who may do what" in docs/api.md)',
  },
  TMR_API_NOT_YOUR_SYSTEM: {
    area: 'api',
    status: 403,
    message: 'a vendor account sees and acts only on its own systems',
    hint: 'name a service or VM of your vendor; GET /api/v1/services lists them',
  },
  TMR_API_DIRECTORY_UNAVAILABLE: {
    area: 'api',
    status: 503,
    message: "the hospital's directory (LDAP or OpenID provider) did not answer",
    hint: 'try again shortly; local accounts (and tokens already issued) keep working; check the directory and the ldap/oidc section of --directory',
    transient: true,
  },
  TMR_API_OIDC_FAILED: {
    area: 'api',
    status: 401,
    message: 'the OpenID Connect login did not complete',
    hint: 'start again from the login page in the same browser; the message says what did not check out',
  },
  TMR_API_LOGIN_RATE_LIMITED: {
    area: 'api',
    status: 429,
    message: 'too many failed logins; wait before trying again',
    hint: 'wait for the time in the Retry-After header; an admin can create a token with `tomaranai token create`',
    transient: true,
  },
  TMR_API_TOO_MANY_STREAMS: {
    area: 'api',
    status: 429,
    message: 'too many event streams',
    hint: 'close a stream you no longer read, then retry after the time in Retry-After',
    transient: true,
  },
  TMR_API_DISRUPTION: {
    area: 'api',
    status: 409,
    message: 'the request would take a continuous or critical service down further than its tier allows',
    hint: 'the message names what it would break; wait until the service is fully protected again, then retry, or repeat the request with askApproval: true to hold it for another operator\'s approval (GET /api/v1/approvals)',
    transient: true,
  },
  TMR_API_OUTSIDE_WINDOW: {
    area: 'api',
    status: 409,
    message: 'a vendor acts on its systems only inside a maintenance window of that service',
    hint: 'open a window first (POST /api/v1/services/{name}/maintenance-windows), or ask the hospital',
  },
  TMR_API_ACTION_RATE_LIMITED: {
    area: 'api',
    status: 429,
    message: 'too many disruptive actions from this account in a short time',
    hint: 'wait the time the message gives, or ask another operator',
    transient: true,
  },
  TMR_API_MALFORMED_HTTP: {
    area: 'api',
    status: 400,
    message: 'the request is not valid HTTP/1.1',
    hint: 'send a well-formed HTTP/1.1 request (a client library, or curl); the connection is closed',
  },
  TMR_API_VALIDATION: {
    area: 'api',
    status: 400,
    message: 'the request does not match its schema',
    hint: 'see "issues" for each field at fault and /openapi.json for the schema',
  },
  TMR_API_NOT_FOUND: {
    area: 'api',
    status: 404,
    message: 'no such resource',
    hint: 'check the name or id; list resources with the matching GET endpoint',
  },
  TMR_API_ROUTE_NOT_FOUND: {
    area: 'api',
    status: 404,
    message: 'no such endpoint',
    hint: 'see /openapi.json for every endpoint',
  },
  TMR_API_CONFLICT: {
    area: 'api',
    status: 409,
    message: 'the resource is not in a state that allows this',
    hint: 'read its current state first; the message says what is in the way',
  },
  TMR_API_BLUEPRINT_INVALID: {
    area: 'api',
    status: 422,
    message: 'the blueprint is not valid; nothing was changed',
    hint: 'fix the problems listed in "issues" (`tomaranai validate FILE` shows them with lines)',
  },
  TMR_API_BLUEPRINT_BUDGET: {
    area: 'api',
    status: 422,
    message: 'the blueprint exceeds what one review may cost; nothing was changed',
    hint: 'a blueprint is read within 2 s and 512 MB: remove YAML aliases, duplicate keys and needless nesting (`tomaranai validate FILE` shows its problems)',
  },
  TMR_API_BLUEPRINT_STALE: {
    area: 'api',
    status: 409,
    message: 'the running blueprint changed since the version you diffed against',
    hint: 'GET /api/v1/blueprint, review the diff again and send the current version as baseVersion',
  },
  TMR_API_DRILL_RUNNING: {
    area: 'api',
    status: 409,
    message: 'a drill is already running',
    hint: 'wait for it to end (GET /api/v1/drills/{id}) and start the next one then',
    transient: true,
  },
  TMR_API_NOT_LEADER: {
    area: 'api',
    status: 503,
    message: 'this instance follows; only the leader changes state',
    hint: 'send mutating calls to the leader (GET /readyz names it) or retry once a leader is elected',
    transient: true,
  },
  TMR_API_SUBSTRATE_REFUSED: {
    area: 'api',
    status: 502,
    message: 'the substrate refused the action',
    hint: 'the message carries its reason; the journal records the refusal',
  },
  TMR_API_PAYLOAD_TOO_LARGE: {
    area: 'api',
    status: 413,
    message: 'the request body is too large',
    hint: 'a blueprint may be at most 8 MiB; other bodies are small JSON documents',
  },
  TMR_API_INTERNAL: {
    area: 'api',
    status: 500,
    message: 'an internal error; nothing was half-done on purpose, but check the journal',
    hint: 'the log has the details under the request id; report it with that id',
  },
  TMR_ACCOUNT_BAD_NAME: {
    area: 'account',
    status: 400,
    message: 'not a valid user name',
    hint: 'use 1–64 letters, digits, dots, dashes or underscores',
  },
  TMR_ACCOUNT_BAD_ROLE: {
    area: 'account',
    status: 400,
    message: 'unknown role',
    hint: 'use admin, operator, auditor, viewer or vendor:NAME',
  },
  TMR_ACCOUNT_WEAK_PASSWORD: {
    area: 'account',
    status: 400,
    message: 'the password is too weak',
    hint: 'choose a longer passphrase; a password manager can make one',
  },
  TMR_ACCOUNT_EXISTS: {
    area: 'account',
    status: 409,
    message: 'the user exists',
    hint: 'choose another name, or pass --force to reset its password and role',
  },
  TMR_ACCOUNT_DISABLED: {
    area: 'account',
    status: 403,
    message: 'the account is disabled',
    hint: 'an admin enables it again (`tomaranai user enable NAME` or POST /api/v1/users/{name}/enable)',
  },
  TMR_ACCOUNT_UNKNOWN: {
    area: 'account',
    status: 404,
    message: 'no such user',
    hint: 'create it first with `tomaranai user add`',
  },
  TMR_SERVICE_BLUEPRINT: {
    area: 'service',
    status: 422,
    message: 'the blueprint is not valid',
    hint: 'run `tomaranai validate FILE` and fix what it lists',
  },
  TMR_SERVICE_SUBSTRATE: {
    area: 'service',
    status: 400,
    message: 'unknown substrate',
    hint: 'use twin, or the http:// URL of `tomaranai twin serve`',
  },
  TMR_SERVICE_DIRECTORY_CONFIG: {
    area: 'service',
    status: 422,
    message: 'the directory login configuration is not valid',
    hint: 'fix the fields the message names (docs/security.md shows every field) and restart `tomaranai serve --directory FILE`',
  },
  TMR_SERVICE_TLS: {
    area: 'service',
    status: 400,
    message: 'HTTPS cannot be set up',
    hint: 'pass --tls-cert FILE and --tls-key FILE together, both readable PEM files',
  },
  TMR_SERVICE_AUDIT_FORWARD: {
    area: 'service',
    status: 400,
    message: 'the audit forwarding target is not usable',
    hint: 'use tcp://HOST:PORT or tls://HOST:PORT (RFC 5425, port 6514), and --audit-syslog-ca FILE for a private CA',
  },
  TMR_SERVICE_DB_URL: {
    area: 'service',
    status: 400,
    message: 'not a database URL',
    hint: 'use sqlite:PATH (the default) or postgres://USER:PASSWORD@HOST/DB',
  },
  TMR_SERVICE_DB_OPEN: {
    area: 'service',
    status: 503,
    message: 'the database cannot be opened',
    hint: 'check the path or URL, its permissions and that the server runs',
    transient: true,
  },
  TMR_SERVICE_DB_BUSY: {
    area: 'service',
    status: 409,
    message: 'another instance runs on this SQLite file',
    hint: 'stop it first, or run several instances on PostgreSQL',
  },
  TMR_NOTIFY_CONFIG: {
    area: 'notify',
    status: 422,
    message: 'the notification configuration is not valid',
    hint: 'fix the fields the message names (docs/alerts.md shows every field); `tomaranai notify check FILE` validates it',
  },
  TMR_NOTIFY_UNKNOWN_RECEIVER: {
    area: 'notify',
    status: 404,
    message: 'no receiver of that name in the notification configuration',
    hint: 'name a receiver listed under `receivers:` in the file given to --notify',
  },
  TMR_NOTIFY_DELIVERY: {
    area: 'notify',
    status: 502,
    message: 'a receiver did not accept the notification',
    hint: 'check that the receiver runs and is reachable; the journal (notify.failed) has each attempt, and delivery is retried with backoff',
    transient: true,
  },
  TMR_NOTIFY_TIMEOUT: {
    area: 'notify',
    status: 504,
    message: 'a receiver did not answer in time',
    hint: 'the receiver is slow or hung; delivery is retried with backoff and never holds the controller up (raise timeoutMs if it is merely slow)',
    transient: true,
  },
  TMR_JOURNAL_FENCED: {
    area: 'journal',
    status: 503,
    message: 'this instance does not lead: it may not append to the journal',
    hint: 'a deposed leader writes nothing; send the call to the leader (GET /readyz names it)',
    transient: true,
  },
  TMR_AUDIT_KEY_MODE: {
    area: 'journal',
    status: 500,
    message: 'the audit signing key file is not safe to use',
    hint: 'chmod 600 the key file: whoever reads it can sign a forged audit export',
  },
  TMR_DRILL_UNKNOWN_SCENARIO: {
    area: 'drill',
    status: 400,
    message: 'no such drill scenario',
    hint: 'use one of the scenarios `tomaranai drill --help` lists',
  },
  TMR_DRILL_WARMUP: {
    area: 'drill',
    status: 500,
    message: 'the hospital did not come up before the fault',
    hint: 'check the blueprint with `tomaranai plan FILE`: some VM has no host or never becomes healthy',
  },
  TMR_DRILL_TWIN_PARAMETERS: {
    area: 'drill',
    status: 400,
    message: 'the twin parameters file is not valid',
    hint: 'write it with `tomaranai calibrate --write FILE`, or fix the field the message names',
  },
  TMR_DRILL_VARIANT: {
    area: 'drill',
    status: 400,
    message: 'an attack variant or seed sweep was asked of a drill that has none',
    hint: 'use --variant with a cyber scenario, --seeds with --scenario ransomware, and --benign-days or --variant all with --seeds',
  },
  TMR_LAB_TOO_LARGE: {
    area: 'lab',
    status: 422,
    message: 'the blueprint is too large for a lab on this machine',
    hint: 'drill it on the twin; a lab runs a few small VMs (blueprints/lab.yaml)',
  },
  TMR_LAB_NAME: {
    area: 'lab',
    status: 422,
    message: 'a name cannot name a QEMU guest or a network namespace',
    hint: 'use lower-case letters, digits and dashes',
  },
  TMR_LAB_NOT_UP: {
    area: 'lab',
    status: 409,
    message: 'no lab is up',
    hint: 'run `tomaranai lab up blueprints/lab.yaml` as root',
  },
  TMR_LAB_NOT_ROOT: {
    area: 'lab',
    status: 403,
    message: 'the lab needs root',
    hint: 'run it as root (network namespaces, bridges, taps, nftables)',
  },
  TMR_LAB_MISSING_TOOL: {
    area: 'lab',
    status: 500,
    message: 'a tool the lab needs is not installed',
    hint: 'run `npm run vm:image` (it installs QEMU, nftables and the guest image)',
  },
  TMR_LAB_OTHER_BLUEPRINT: {
    area: 'lab',
    status: 409,
    message: 'a lab for another blueprint is up',
    hint: 'run `tomaranai lab down` first',
  },
  TMR_LAB_FAULT_UNSUPPORTED: {
    area: 'lab',
    status: 422,
    message: 'the lab cannot strike this fault on real VMs',
    hint: 'drill it on the twin (`tomaranai drill FILE --scenario …`); docs/drills.md lists what the lab can strike',
  },
  TMR_LAB_LEFTOVERS: {
    area: 'lab',
    status: 500,
    message: 'the lab left something behind',
    hint: 'the message names each namespace, interface, table or process; remove them, then run `tomaranai lab down` again',
  },
  TMR_FENCE_CONFIG_INVALID: {
    area: 'fence',
    status: 400,
    message: 'the fencing file is not valid',
    hint: 'fix each field the message names (docs/real-vms.md, "Power fencing through fence agents")',
  },
  TMR_FENCE_HOST_MISSING: {
    area: 'fence',
    status: 400,
    message: 'a host has no power-fencing device',
    hint: 'add the host to the fencing file: every host the blueprint names needs a device',
  },
  TMR_FENCE_AGENT_NOT_FOUND: {
    area: 'fence',
    status: 500,
    message: 'the fence agent is not installed',
    hint: 'install Debian\'s fence-agents (`apt-get install fence-agents`), or set agentDirectory in the fencing file',
  },
  TMR_FENCE_CREDENTIALS: {
    area: 'fence',
    status: 400,
    message: 'a fence device\'s credentials file cannot be used',
    hint: 'put the password on the first line of the file, owned by the service user, mode 0600',
  },
  TMR_AGENT_TLS: {
    area: 'lab',
    status: 400,
    message: 'the agent certificates cannot be used',
    hint: 'generate them with `tomaranai agent certs --out DIR --hosts a,b,…`, or give the CA, certificate and key the message names',
  },
  TMR_PLAN_EXACT_TOO_LARGE: {
    area: 'plan',
    status: 422,
    message: 'the placement is too large for the exact solver',
    hint: 'drop --exact: the heuristic plans estates of any size',
  },
  TMR_SIZE_UNKNOWN_HOST_MODEL: {
    area: 'size',
    status: 400,
    message: 'no such host model in the blueprint',
    hint: 'name one of the blueprint\'s hostModels',
  },
  TMR_SIZE_NO_FIT: {
    area: 'size',
    status: 422,
    message: 'no number of hosts of this model places everything',
    hint: 'choose a larger host model: some VM is larger than one host',
  },
  TMR_SEGMENTATION_UNKNOWN_VM: {
    area: 'segmentation',
    status: 404,
    message: 'no such VM in the policy',
    hint: 'name a VM of the blueprint',
  },
  TMR_SEGMENTATION_INVARIANT: {
    area: 'segmentation',
    status: 500,
    message: 'a segmentation policy broke one of its own invariants',
    hint: 'this is a defect: report it with the blueprint',
  },
  TMR_REPORT_READ: {
    area: 'report',
    status: 400,
    message: 'the drill file cannot be read',
    hint: 'pass the file `tomaranai drill FILE --json > drill.json` wrote',
  },
  TMR_REPORT_NOT_A_DRILL: {
    area: 'report',
    status: 400,
    message: 'the file is not a drill report',
    hint: 'pass the output of `tomaranai drill FILE --json`',
  },
  TMR_REPORT_BLUEPRINT: {
    area: 'report',
    status: 400,
    message: 'the blueprint the report names cannot be read',
    hint: 'pass --blueprint FILE',
  },
  TMR_REPORT_NO_BROWSER: {
    area: 'report',
    status: 500,
    message: 'Chromium cannot be started for the PDF',
    hint: 'install it (Debian: apt-get install -y chromium) or use --format html',
  },
  TMR_VSPHERE_INSECURE: {
    area: 'vsphere',
    status: 400,
    message: 'the vCenter URL is http:// or its certificate is not verified',
    hint: 'use https:// with --ca-file (a CA, or the server\'s own certificate) and optionally --pin-sha256; --allow-insecure only for simulators and labs',
  },
  TMR_VSPHERE_CREDENTIALS: {
    area: 'vsphere',
    status: 400,
    message: 'the vCenter credentials cannot be read',
    hint: 'pass --credentials FILE (YAML or JSON with username and password) or set TOMARANAI_VSPHERE_USERNAME and TOMARANAI_VSPHERE_PASSWORD',
  },
  TMR_VSPHERE_LOGIN: {
    area: 'vsphere',
    status: 401,
    message: 'vCenter refused the login',
    hint: 'check the user name and password in the credentials file, and that the account may read the inventory',
  },
  TMR_VSPHERE_UNREACHABLE: {
    area: 'vsphere',
    status: 503,
    message: 'vCenter did not answer',
    hint: 'check --url (https://VCENTER/sdk), the network path and the certificate options',
    transient: true,
  },
  TMR_VSPHERE_FAULT: {
    area: 'vsphere',
    status: 502,
    message: 'vCenter answered a call with a fault',
    hint: 'the message names the method and vCenter\'s fault; check the account\'s privileges and the object it names',
  },
  TMR_VSPHERE_TASK_FAILED: {
    area: 'vsphere',
    status: 502,
    message: 'a vCenter task failed',
    hint: 'the message names the task and vCenter\'s error; nothing after it was applied, so fix the cause and run apply again (it is idempotent)',
  },
  TMR_VSPHERE_NOT_IN_INVENTORY: {
    area: 'vsphere',
    status: 400,
    message: 'the blueprint names a VM, host or cluster that vCenter does not have',
    hint: 'import the estate again (`tomaranai import vsphere`) or correct the names in the blueprint',
  },
  TMR_VSPHERE_FORBIDDEN: {
    area: 'vsphere',
    status: 403,
    message: 'applying vSphere settings needs a token of a role with blueprint.apply (admin or operator)',
    hint: 'create one with `tomaranai token create USER` and pass it in TOMARANAI_TOKEN, or use --dry-run',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
export type ApiErrorCode = { [C in ErrorCode]: (typeof ERRORS)[C]['area'] extends 'api' ? C : never }[ErrorCode];

export interface ApiIssue {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

/** The one error class: a registered code, a message for this occurrence, and how to fix it. */
export class TomaranaiError extends Error {
  readonly status: number;
  readonly hint: string;
  readonly area: ErrorArea;
  readonly transient: boolean;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    hint?: string,
    readonly issues?: readonly ApiIssue[],
  ) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.message);
    this.name = 'TomaranaiError';
    this.status = spec.status;
    this.hint = hint ?? spec.hint;
    this.area = spec.area;
    this.transient = spec.transient === true;
  }

  /** The API's error body (docs/api.md). */
  body(): { error: { code: ErrorCode; message: string; hint: string; transient: boolean; issues?: readonly ApiIssue[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        hint: this.hint,
        transient: this.transient,
        ...(this.issues === undefined ? {} : { issues: this.issues }),
      },
    };
  }
}

export function isTomaranaiError(error: unknown): error is TomaranaiError {
  return error instanceof TomaranaiError;
}

/** An API error: a TMR_API_* code with this occurrence's message and, if it helps, another hint. */
export function apiError(code: ApiErrorCode, message?: string, hint?: string): TomaranaiError {
  return new TomaranaiError(code, message, hint);
}

/** The API's name for the one error class. */
export { TomaranaiError as ApiError };

/** The registry's API area: the codes only the HTTP API raises (docs/api.md lists them with their status). */
export const API_ERRORS = Object.fromEntries(Object.entries(ERRORS).filter(([, spec]) => spec.area === 'api')) as { readonly [C in ApiErrorCode]: (typeof ERRORS)[C] };
