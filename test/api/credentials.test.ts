/**
 * The credential lifecycle (issue 14, point 4). Before: nobody could list or revoke another user's
 * tokens, disable or delete a user; a password reset left old sessions working; a session could
 * mint a token that never expires; none of it was journaled.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TOKEN_TTL_MS } from '../../src/service/auth/accounts.ts';
import { harness, PASSWORD, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function session(h: Harness, username: string, password = PASSWORD): Promise<string> {
  const response = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username, password } });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().token as string;
}

const works = async (h: Harness, token: string) => (await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: bearer(token) })).statusCode === 200;

describe('credential lifecycle', () => {
  it("an admin lists an account's tokens without their secrets and revokes one; it stops working", async () => {
    h = await harness();
    const mine = await session(h, 'operator');
    const list = await h.app.inject({ method: 'GET', url: '/api/v1/users/operator/tokens', headers: h.as('admin') });
    expect(list.statusCode).toBe(200);
    const tokens = list.json().tokens as { id: string; name: string }[];
    expect(list.body).not.toContain(mine);
    const sessionToken = tokens.find((token) => token.name === 'session')!;
    const revoked = await h.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${sessionToken.id}`, headers: h.as('admin') });
    expect(revoked.statusCode).toBe(204);
    expect(await works(h, mine)).toBe(false);
    const entry = h.journal.entries().find((candidate) => candidate.type === 'token.revoked')!;
    expect(entry).toMatchObject({ subject: 'operator', actor: 'user:admin', data: { tokenId: sessionToken.id, address: '127.0.0.1' } });
  });

  it("a non-admin may revoke its own tokens, and is told nothing of another's", async () => {
    h = await harness();
    const theirs = (await h.app.inject({ method: 'GET', url: '/api/v1/tokens', headers: h.as('operator') })).json().tokens as { id: string }[];
    const response = await h.app.inject({ method: 'DELETE', url: `/api/v1/tokens/${theirs[0]!.id}`, headers: h.as('viewer') });
    expect(response.statusCode).toBe(404);
    expect(await works(h, h.tokens.operator)).toBe(true);
  });

  it('a disabled account cannot log in and its tokens are refused at once; enabled, they work again', async () => {
    h = await harness();
    const token = h.tokens.auditor;
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/users/auditor/disable', headers: h.as('admin'), payload: { reason: 'left the hospital' } })).statusCode).toBe(204);
    expect(await works(h, token)).toBe(false);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'auditor', password: PASSWORD } })).statusCode).toBe(401);
    const users = (await h.app.inject({ method: 'GET', url: '/api/v1/users', headers: h.as('admin') })).json().users as { username: string; disabled: boolean }[];
    expect(users.find((user) => user.username === 'auditor')!.disabled).toBe(true);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/users/auditor/enable', headers: h.as('admin'), payload: { reason: 'came back' } })).statusCode).toBe(204);
    expect(await works(h, token)).toBe(true);
    expect(h.journal.entries().filter((entry) => entry.type === 'user.disabled' || entry.type === 'user.enabled').map((entry) => entry.type)).toEqual(['user.disabled', 'user.enabled']);
  });

  it('an admin cannot disable or delete its own account', async () => {
    h = await harness();
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/users/admin/disable', headers: h.as('admin'), payload: { reason: 'oops' } })).statusCode).toBe(409);
    expect((await h.app.inject({ method: 'DELETE', url: '/api/v1/users/admin', headers: h.as('admin'), payload: { reason: 'oops' } })).statusCode).toBe(409);
  });

  it('a deleted account is gone with every token it had', async () => {
    h = await harness();
    const token = h.tokens['vendor:vendor-b'];
    expect((await h.app.inject({ method: 'DELETE', url: '/api/v1/users/vendor-vendor-b', headers: h.as('admin'), payload: { reason: 'contract ended' } })).statusCode).toBe(204);
    expect(await works(h, token)).toBe(false);
    expect((await h.app.inject({ method: 'DELETE', url: '/api/v1/users/vendor-vendor-b', headers: h.as('admin'), payload: { reason: 'again' } })).statusCode).toBe(404);
  });

  it("a password reset revokes the account's sessions (its API tokens stay until revoked apart)", async () => {
    h = await harness();
    const old = await session(h, 'operator');
    const reset = await h.app.inject({ method: 'PUT', url: '/api/v1/users/operator/password', headers: h.as('admin'), payload: { password: 'a brand new long password', reason: 'suspected leak' } });
    expect(reset.statusCode, reset.body).toBe(200);
    expect(reset.json().revoked).toBeGreaterThanOrEqual(1);
    expect(await works(h, old)).toBe(false);
    expect(await works(h, h.tokens.operator)).toBe(true);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'operator', password: PASSWORD } })).statusCode).toBe(401);
    await session(h, 'operator', 'a brand new long password');
    const all = await h.app.inject({ method: 'DELETE', url: '/api/v1/users/operator/tokens', headers: h.as('admin'), payload: { reason: 'rotate everything' } });
    expect(all.json().revoked).toBeGreaterThanOrEqual(2);
    expect(await works(h, h.tokens.operator)).toBe(false);
  });

  it('changing your own password needs the current one and logs your sessions out', async () => {
    h = await harness();
    const mine = await session(h, 'viewer');
    expect((await h.app.inject({ method: 'PUT', url: '/api/v1/me/password', headers: bearer(mine), payload: { currentPassword: 'wrong', newPassword: 'a new long passphrase' } })).statusCode).toBe(401);
    const changed = await h.app.inject({ method: 'PUT', url: '/api/v1/me/password', headers: bearer(mine), payload: { currentPassword: PASSWORD, newPassword: 'a new long passphrase' } });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(await works(h, mine)).toBe(false);
    const entry = h.journal.entries().find((candidate) => candidate.type === 'user.password-changed')!;
    expect(entry).toMatchObject({ subject: 'viewer', actor: 'user:viewer', data: { by: 'self', address: '127.0.0.1' } });
  });

  it('no token lives forever: the default and the longest lifetime is 90 days', async () => {
    h = await harness();
    const created = await h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: h.as('viewer'), payload: { name: 'forever?' } });
    expect(created.statusCode).toBe(201);
    const { expiresAtMs } = created.json() as { expiresAtMs: number };
    expect(expiresAtMs).toBeGreaterThan(Date.now() + MAX_TOKEN_TTL_MS - 60_000);
    expect(expiresAtMs).toBeLessThanOrEqual(Date.now() + MAX_TOKEN_TTL_MS);
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: h.as('viewer'), payload: { name: 'long', ttlHours: 24 * 365 } })).statusCode).toBe(400);
  });
});
