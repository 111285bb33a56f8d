/**
 * Directory login over HTTP: which login methods this service offers, and the OpenID Connect
 * round trip (login → provider → callback → one-time handoff to the page). LDAP logins go through
 * POST /sessions like local ones (accounts.ts).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { apiError, TomaranaiError } from '../../errors/index.ts';
import type { HandedSession } from '../../service/auth/directory.ts';
import { LoginLimiter } from '../auth/rate-limit.ts';
import { route } from '../route.ts';
import type { PluginOptions } from './types.ts';

const BINDING_COOKIE = 'tmr_oidc';
const COOKIE_PATH = '/api/v1/oidc';
const Methods = z.object({ password: z.literal(true), ldap: z.boolean(), oidc: z.boolean() });
const TokenCreated = z.object({ token: z.string(), id: z.string(), username: z.string(), role: z.string(), expiresAtMs: z.number().nullable() });
const Callback = z.record(z.string().max(100), z.string().max(4096));

export const directoryPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const wallNowMs = deps.wallNowMs ?? Date.now;
  const limiter = deps.loginLimiter ?? new LoginLimiter(undefined, wallNowMs);
  const oidc = deps.directory?.oidc ?? null;
  const secure = deps.tls !== undefined;

  route(app, { method: 'GET', url: '/auth/methods', summary: 'How one may log in here: password (local or LDAP), OpenID Connect', tag: 'accounts', permission: null, response: Methods }, async () => ({
    password: true as const,
    ldap: deps.directory?.ldap != null,
    oidc: oidc !== null,
  }));

  route(
    app,
    { method: 'GET', url: '/oidc/login', summary: "Log in with the hospital's OpenID provider: redirects there", tag: 'accounts', permission: null, errors: ['TMR_API_NOT_FOUND', 'TMR_API_DIRECTORY_UNAVAILABLE'] },
    async ({ reply }) => {
      if (oidc === null) throw apiError('TMR_API_NOT_FOUND', 'OpenID Connect login is not configured here', 'log in with a password, or configure oidc in serve --directory');
      const { url, binding } = await oidc.begin();
      reply.setCookie(BINDING_COOKIE, binding, { path: COOKIE_PATH, httpOnly: true, sameSite: 'lax', secure, maxAge: 600 });
      return reply.redirect(url, 302);
    },
  );

  route(
    app,
    { method: 'GET', url: '/oidc/callback', summary: 'Where the OpenID provider sends the browser back; redirects to the dashboard with a one-time handoff code', tag: 'accounts', permission: null, query: Callback, errors: ['TMR_API_NOT_FOUND'] },
    async ({ query, request, reply }) => {
      if (oidc === null) throw apiError('TMR_API_NOT_FOUND', 'OpenID Connect login is not configured here');
      const attempt = { username: '(openid)', address: request.ip };
      if (limiter.retryAfterMs(attempt) > 0) return back(reply, 'error', 'TMR_API_LOGIN_RATE_LIMITED');
      try {
        const identity = await oidc.complete(query, request.cookies[BINDING_COOKIE]);
        const admission = await deps.directory!.admit(identity, 'oidc', deps.accounts);
        if (!admission.ok) {
          fail(request, admission.username, admission.reason);
          limiter.fail(attempt);
          return back(reply, 'error', 'TMR_API_BAD_CREDENTIALS');
        }
        const { token, info } = await deps.accounts.createToken(admission.account.username, 'session', deps.directory!.sessionTtlMs);
        if (deps.plane.leading) deps.plane.record('audit', 'login.succeeded', admission.account.username, `user:${admission.account.username}`, { address: request.ip, tokenId: info.id, method: 'oidc', role: admission.account.role });
        const session: HandedSession = { token, id: info.id, username: admission.account.username, role: admission.account.role, expiresAtMs: info.expiresAtMs };
        return back(reply, 'handoff', oidc.handOff(session, request.cookies[BINDING_COOKIE]!));
      } catch (error) {
        if (!(error instanceof TomaranaiError)) throw error;
        fail(request, '(openid)', error.message);
        if (error.code === 'TMR_API_OIDC_FAILED') limiter.fail(attempt);
        return back(reply, 'error', error.code);
      }
    },
  );

  route(
    app,
    { method: 'POST', url: '/oidc/handoff', summary: 'Redeem the one-time handoff code for the session token (same browser, within a minute)', tag: 'accounts', permission: null, body: z.object({ code: z.string().min(1).max(100) }).strict(), response: TokenCreated, responseStatus: 201, bodyLimitBytes: 1024, errors: ['TMR_API_OIDC_FAILED'] },
    async ({ body, request, reply }) => {
      const session = oidc?.redeem(body.code, request.cookies[BINDING_COOKIE]) ?? null;
      if (session === null) throw apiError('TMR_API_OIDC_FAILED', 'this handoff code is unknown, used, expired or for another browser', 'log in again');
      reply.clearCookie(BINDING_COOKIE, { path: COOKIE_PATH });
      request.principal = { username: session.username, role: session.role, tokenId: session.id };
      return session;
    },
  );

  function fail(request: FastifyRequest, username: string, reason: string): void {
    if (deps.plane.leading) deps.plane.record('audit', 'login.failed', username.slice(0, 200), `address:${request.ip}`, { address: request.ip, wallAtMs: wallNowMs(), reason: reason.slice(0, 500), method: 'oidc' });
  }
};

/** Back to the dashboard, which finishes the login (#/oidc?handoff=…) or shows why not (#/oidc?error=CODE). */
function back(reply: FastifyReply, key: 'handoff' | 'error', value: string): FastifyReply {
  return reply.redirect(`/#/oidc?${key}=${encodeURIComponent(value)}`, 302);
}
