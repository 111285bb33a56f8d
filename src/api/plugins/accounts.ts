/** Sessions (log in with a password), API tokens and user accounts. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { MeSchema } from '../../dto/index.ts';
import type { Account } from '../../service/auth/accounts.ts';
import { LoginLimiter } from '../auth/rate-limit.ts';
import { ApiError, apiError, TomaranaiError } from '../../errors/index.ts';
import { route } from '../route.ts';
import { actorOf } from '../principal.ts';
import type { PluginOptions } from './types.ts';

const Login = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) }).strict();
const TokenCreated = z.object({ token: z.string(), id: z.string(), username: z.string(), role: z.string(), expiresAtMs: z.number().nullable() });
/** At most 90 days (MAX_TOKEN_TTL_MS), which is also the default: no token lives forever. */
const CreateToken = z.object({ name: z.string().min(1).max(100), ttlHours: z.number().positive().max(24 * 90).optional() }).strict();
const CreateUser = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024), role: z.string().min(1).max(80) }).strict();
const User = z.object({ username: z.string(), role: z.string(), createdAtMs: z.number(), disabled: z.boolean(), source: z.enum(['local', 'ldap', 'oidc']).optional() });

/** An unauthenticated login body is a user name and a password: nothing a caller sends costs more to parse than this. */
const LOGIN_BODY_LIMIT_BYTES = 4 * 1024;

/**
 * A password login: a local account's own password, else (with --directory) an LDAP bind. A local
 * account's name is never looked up in the directory, so the directory cannot log in as a local
 * admin. A directory that does not answer throws TMR_API_DIRECTORY_UNAVAILABLE (not a wrong password).
 */
async function logIn(deps: PluginOptions['deps'], username: string, password: string): Promise<{ account: Account | null; method: 'local' | 'ldap'; reason: string }> {
  const local = await deps.accounts.authenticate(username, password);
  if (local !== null) return { account: local, method: 'local', reason: '' };
  const ldap = deps.directory?.ldap ?? null;
  if (ldap === null || (await deps.accounts.isLocal(username))) return { account: null, method: 'local', reason: 'unknown user or wrong password' };
  const identity = await ldap.authenticate(username, password);
  if (identity === null) return { account: null, method: 'ldap', reason: 'the directory refused the name or password' };
  const admission = await deps.directory!.admit(identity, 'ldap', deps.accounts);
  return admission.ok ? { account: admission.account, method: 'ldap', reason: '' } : { account: null, method: 'ldap', reason: admission.reason };
}

export const accountsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const limiter = deps.loginLimiter ?? new LoginLimiter(undefined, deps.wallNowMs);
  const sessionTtlMs = deps.sessionTtlMs ?? 12 * 3600_000;
  const wallNowMs = deps.wallNowMs ?? Date.now;
  // A restart does not reset the login counters: the journal holds the recent failures.
  limiter.restore(deps.journal.entries());

  route(
    app,
    { method: 'POST', url: '/sessions', summary: 'Log in: a password for a session token (rate limited)', tag: 'accounts', permission: null, body: Login, response: TokenCreated, responseStatus: 201, bodyLimitBytes: LOGIN_BODY_LIMIT_BYTES, errors: ['TMR_API_BAD_CREDENTIALS', 'TMR_API_LOGIN_RATE_LIMITED', 'TMR_API_DIRECTORY_UNAVAILABLE'] },
    async ({ body, request }) => {
      const attempt = { username: body.username, address: request.ip };
      const waitMs = limiter.retryAfterMs(attempt);
      if (waitMs > 0) {
        const error = apiError('TMR_API_LOGIN_RATE_LIMITED', `too many failed logins; try again in ${Math.ceil(waitMs / 1000)} s`) as ApiError & { retryAfterS?: number };
        error.retryAfterS = Math.ceil(waitMs / 1000);
        throw error;
      }
      const { account, method, reason } = await logIn(deps, body.username, body.password);
      if (account === null) {
        limiter.fail(attempt);
        if (deps.plane.leading) deps.plane.record('audit', 'login.failed', body.username.slice(0, 200), `address:${request.ip}`, { address: request.ip, wallAtMs: wallNowMs(), reason, method });
        throw apiError('TMR_API_BAD_CREDENTIALS');
      }
      limiter.succeed(attempt);
      const { token, info } = await deps.accounts.createToken(account.username, 'session', method === 'local' ? sessionTtlMs : Math.min(sessionTtlMs, deps.directory!.sessionTtlMs));
      if (deps.plane.leading) deps.plane.record('audit', 'login.succeeded', account.username, `user:${account.username}`, { address: request.ip, tokenId: info.id, method, role: account.role });
      request.principal = { username: account.username, role: account.role, tokenId: info.id };
      return { token, id: info.id, username: account.username, role: account.role, expiresAtMs: info.expiresAtMs };
    },
  );

  route(app, { method: 'GET', url: '/me', summary: 'Who the token belongs to', tag: 'accounts', permission: 'tokens.own', response: MeSchema }, async ({ principal }) => ({
    username: principal.username,
    role: principal.role,
    tokenId: principal.tokenId,
  }));

  route(
    app,
    { method: 'POST', url: '/tokens', summary: 'Create an API token for yourself', tag: 'accounts', permission: 'tokens.own', body: CreateToken, response: TokenCreated, responseStatus: 201 },
    async ({ body, principal }) => {
      const { token, info } = await deps.accounts.createToken(principal.username, body.name, body.ttlHours === undefined ? null : body.ttlHours * 3600_000);
      return { token, id: info.id, username: principal.username, role: principal.role, expiresAtMs: info.expiresAtMs };
    },
  );

  route(app, { method: 'DELETE', url: '/tokens/current', summary: 'Log out: revoke the token of this request', tag: 'accounts', permission: 'tokens.own' }, async ({ principal, reply }) => {
    if (principal.tokenId !== null) await deps.accounts.revokeToken(principal.tokenId);
    reply.code(204);
    return undefined;
  });

  route(app, { method: 'GET', url: '/users', summary: 'List accounts', tag: 'accounts', permission: 'users.manage', response: z.object({ users: z.array(User) }) }, async () => ({
    users: await deps.accounts.users(),
  }));

  route(
    app,
    { method: 'POST', url: '/users', summary: 'Create an account', tag: 'accounts', permission: 'users.manage', body: CreateUser, response: User, responseStatus: 201, errors: ['TMR_API_CONFLICT'] },
    async ({ body, principal }) => {
      try {
        const account = await deps.accounts.addUser(body.username, body.password, body.role);
        if (deps.plane.leading) deps.plane.record('audit', 'user.added', account.username, actorOf(principal), { role: account.role });
        return account;
      } catch (error) {
        if (error instanceof TomaranaiError && error.area === 'account') {
          if (error.code === 'TMR_ACCOUNT_EXISTS') throw apiError('TMR_API_CONFLICT', error.message, error.hint);
          throw new ApiError('TMR_API_VALIDATION', error.message, error.hint, [{ path: error.code === 'TMR_ACCOUNT_BAD_ROLE' ? 'role' : error.code === 'TMR_ACCOUNT_BAD_NAME' ? 'username' : 'password', code: error.code, message: error.message }]);
        }
        throw error;
      }
    },
  );
};
