/** Accounts, tokens, logins and their rate limit; no secret ever reaches the log. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/service/auth/passwords.ts';
import { harness, PASSWORD, TEST_COST, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => h?.close());

describe('authentication', () => {
  it('stores scrypt hashes that verify only the right password', async () => {
    const stored = await hashPassword('a long enough password', TEST_COST);
    expect(stored).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(stored).not.toContain('a long enough password');
    expect(await verifyPassword('a long enough password', stored)).toBe(true);
    expect(await verifyPassword('a long enough passwore', stored)).toBe(false);
  });

  it('logs in with a password, uses the session token, and logs out', async () => {
    h = await harness();
    const login = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'operator', password: PASSWORD } });
    expect(login.statusCode).toBe(201);
    const { token, role } = JSON.parse(login.body) as { token: string; role: string };
    expect(role).toBe('operator');
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(JSON.parse(me.body)).toMatchObject({ username: 'operator', role: 'operator' });
    expect((await h.app.inject({ method: 'DELETE', url: '/api/v1/tokens/current', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(204);
    const after = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(after.statusCode).toBe(401);
    expect(JSON.parse(after.body).error.code).toBe('TMR_API_TOKEN_INVALID');
  });

  it('refuses a wrong password and an unknown user alike', async () => {
    h = await harness();
    for (const payload of [{ username: 'operator', password: 'wrong password!' }, { username: 'nobody', password: PASSWORD }]) {
      const response = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload });
      expect(response.statusCode).toBe(401);
      expect(JSON.parse(response.body).error.code).toBe('TMR_API_BAD_CREDENTIALS');
    }
  });

  it('rate-limits failed logins per user, with Retry-After, and lets them in again after the window', async () => {
    let now = 1_700_000_000_000;
    h = await harness({ wallNowMs: () => now });
    for (let attempt = 0; attempt < 5; attempt++) {
      expect((await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'admin', password: `guess number ${attempt}` } })).statusCode).toBe(401);
    }
    const limited = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'admin', password: PASSWORD } });
    expect(limited.statusCode).toBe(429);
    expect(JSON.parse(limited.body).error.code).toBe('TMR_API_LOGIN_RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    now += 16 * 60_000;
    expect((await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'admin', password: PASSWORD } })).statusCode).toBe(201);
  });

  it('refuses a malformed, unknown or expired token', async () => {
    let now = 1_700_000_000_000;
    h = await harness({ wallNowMs: () => now });
    expect(JSON.parse((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: 'Basic abc' } })).body).error.code).toBe('TMR_API_TOKEN_INVALID');
    expect(JSON.parse((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: 'Bearer tmr_doesnotexist' } })).body).error.code).toBe('TMR_API_TOKEN_INVALID');
    const created = await h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: h.as('viewer'), payload: { name: 'short', ttlHours: 1 } });
    const token = JSON.parse(created.body).token as string;
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(200);
    now += 2 * 3600_000;
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
  });

  it('never writes a password or a token to the log', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    h = await harness({ logger: { level: 'trace', stream } });
    const login = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'admin', password: PASSWORD } });
    const token = JSON.parse(login.body).token as string;
    await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'admin', password: 'a wrong secret pass' } });
    await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: { authorization: `Bearer ${token}` } });
    await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: { authorization: `Bearer ${token}x` } });
    await h.app.inject({ method: 'POST', url: '/api/v1/users', headers: { authorization: `Bearer ${token}` }, payload: { username: 'nurse', password: 'another long secret', role: 'viewer' } });
    const log = lines.join('');
    expect(lines.length).toBeGreaterThan(5);
    for (const secret of [PASSWORD, 'a wrong secret pass', 'another long secret', token, token.slice(4, 24)]) expect(log).not.toContain(secret);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe('what an unauthenticated caller may send', () => {
  it('refuses a 1 MB deeply nested login body before parsing it (413, coded)', async () => {
    const h = await harness();
    try {
      const nested = `${'{"a":'.repeat(150_000)}1${'}'.repeat(150_000)}`;
      const response = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', headers: { 'content-type': 'application/json' }, payload: nested });
      expect(response.statusCode).toBe(413);
      expect(response.json().error.code).toBe('TMR_API_PAYLOAD_TOO_LARGE');
    } finally {
      await h.close();
    }
  });
});
