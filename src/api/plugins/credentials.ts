/**
 * The credential lifecycle (issue 14, point 4): an admin lists and revokes anyone's tokens and
 * sessions, disables, enables and deletes accounts and resets passwords; everyone lists and
 * revokes their own tokens and changes their own password. A password change revokes the
 * account's sessions. Every change is journaled with its actor and the client's address.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { apiError, TomaranaiError } from '../../errors/index.ts';
import { allows } from '../../service/auth/roles.ts';
import type { JournalEvents, JournalEventType } from '../../ports/index.ts';
import { actorOf, type Principal } from '../principal.ts';
import { route } from '../route.ts';
import { NAME, REASON } from '../schemas.ts';
import type { PluginOptions } from './types.ts';

const Token = z.object({ id: z.string(), username: z.string(), name: z.string(), createdAtMs: z.number(), expiresAtMs: z.number().nullable(), revoked: z.boolean() });
const Username = z.object({ username: NAME });
const TokenId = z.object({ id: z.string().min(1).max(100) });
const NewPassword = z.object({ password: z.string().min(1).max(1024), reason: REASON }).strict();
const OwnPassword = z.object({ currentPassword: z.string().min(1).max(1024), newPassword: z.string().min(1).max(1024) }).strict();
const Reason = z.object({ reason: REASON }).strict();
const Revoked = z.object({ revoked: z.number() });

export const credentialsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const accounts = deps.accounts;
  /** Journals a credential change (the leader only writes the journal; a follower's change is logged). */
  const journal = <T extends JournalEventType>(type: T, subject: string, principal: Principal, data: JournalEvents[T]) => {
    if (deps.plane.leading) deps.plane.record('audit', type, subject, actorOf(principal), data);
    else app.log.info({ event: type, subject, actor: actorOf(principal) }, 'credential change on a follower: not journaled here');
  };
  const address = (request: FastifyRequest) => request.ip;
  /** Account errors answered as the API's: unknown → 404, weak password → 400. */
  const mapped = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof TomaranaiError && error.code === 'TMR_ACCOUNT_UNKNOWN') throw apiError('TMR_API_NOT_FOUND', error.message, error.hint);
      if (error instanceof TomaranaiError && error.code === 'TMR_ACCOUNT_WEAK_PASSWORD') throw apiError('TMR_API_VALIDATION', error.message, error.hint);
      throw error;
    }
  };

  route(app, { method: 'GET', url: '/tokens', summary: 'Your own tokens and sessions (never their secrets)', tag: 'accounts', permission: 'tokens.own', response: z.object({ tokens: z.array(Token) }) }, async ({ principal }) => ({
    tokens: await accounts.tokens(principal.username),
  }));

  route(
    app,
    { method: 'DELETE', url: '/tokens/:id', summary: 'Revoke a token or session: your own, or anyone\'s for an admin', tag: 'accounts', permission: 'tokens.own', params: TokenId, errors: ['TMR_API_NOT_FOUND', 'TMR_API_FORBIDDEN'] },
    async ({ params, principal, request, reply }) => {
      const token = (await accounts.tokens(null)).find((candidate) => candidate.id === params.id);
      const admin = allows(principal.role, 'users.manage');
      // Another account's token is not even said to exist to a non-admin.
      if (token === undefined || (token.username !== principal.username && !admin)) throw apiError('TMR_API_NOT_FOUND', `no token ${params.id} of yours`);
      await accounts.revokeToken(token.id);
      journal('token.revoked', token.username, principal, { tokenId: token.id, name: token.name, address: address(request) });
      reply.code(204);
      return undefined;
    },
  );

  route(
    app,
    { method: 'PUT', url: '/me/password', summary: 'Change your own password; your sessions are revoked (log in again)', tag: 'accounts', permission: 'tokens.own', body: OwnPassword, response: Revoked, errors: ['TMR_API_BAD_CREDENTIALS', 'TMR_API_VALIDATION'] },
    async ({ body, principal, request }) => {
      if ((await accounts.authenticate(principal.username, body.currentPassword)) === null) throw apiError('TMR_API_BAD_CREDENTIALS', 'the current password is wrong');
      const { sessionsRevoked } = await mapped(() => accounts.setPassword(principal.username, body.newPassword));
      journal('user.password-changed', principal.username, principal, { by: 'self', sessionsRevoked, address: address(request) });
      return { revoked: sessionsRevoked };
    },
  );

  route(
    app,
    { method: 'GET', url: '/users/:username/tokens', summary: "An account's tokens and sessions (never their secrets)", tag: 'accounts', permission: 'users.manage', params: Username, response: z.object({ tokens: z.array(Token) }) },
    async ({ params }) => ({ tokens: await accounts.tokens(params.username) }),
  );

  route(
    app,
    { method: 'DELETE', url: '/users/:username/tokens', summary: "Revoke every token and session of an account", tag: 'accounts', permission: 'users.manage', params: Username, body: Reason, response: Revoked },
    async ({ params, body, principal, request }) => {
      const revoked = await accounts.revokeTokensOf(params.username);
      journal('tokens.revoked', params.username, principal, { count: revoked, reason: body.reason, address: address(request) });
      return { revoked };
    },
  );

  route(
    app,
    { method: 'PUT', url: '/users/:username/password', summary: "Reset an account's password; its sessions are revoked", tag: 'accounts', permission: 'users.manage', params: Username, body: NewPassword, response: Revoked, errors: ['TMR_API_NOT_FOUND', 'TMR_API_VALIDATION'] },
    async ({ params, body, principal, request }) => {
      const { sessionsRevoked } = await mapped(() => accounts.setPassword(params.username, body.password));
      journal('user.password-changed', params.username, principal, { by: 'admin', sessionsRevoked, reason: body.reason, address: address(request) });
      return { revoked: sessionsRevoked };
    },
  );

  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    route(
      app,
      { method: 'POST', url: `/users/:username/${verb}`, summary: disabled ? 'Disable an account: its logins, tokens and sessions are refused at once' : 'Enable a disabled account', tag: 'accounts', permission: 'users.manage', params: Username, body: Reason, errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT'] },
      async ({ params, body, principal, request, reply }) => {
        if (disabled && params.username === principal.username) throw apiError('TMR_API_CONFLICT', 'you cannot disable your own account', 'ask another admin');
        await mapped(() => accounts.setDisabled(params.username, disabled));
        journal(disabled ? 'user.disabled' : 'user.enabled', params.username, principal, { reason: body.reason, address: address(request) });
        reply.code(204);
        return undefined;
      },
    );
  }

  route(
    app,
    { method: 'DELETE', url: '/users/:username', summary: 'Delete an account; every token and session it had is revoked', tag: 'accounts', permission: 'users.manage', params: Username, body: Reason, errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT'] },
    async ({ params, body, principal, request, reply }) => {
      if (params.username === principal.username) throw apiError('TMR_API_CONFLICT', 'you cannot delete your own account', 'ask another admin');
      await mapped(() => accounts.deleteUser(params.username));
      journal('user.deleted', params.username, principal, { reason: body.reason, address: address(request) });
      reply.code(204);
      return undefined;
    },
  );
};
