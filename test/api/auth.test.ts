/** Accounts, tokens, logins and their rate limit; no secret ever reaches the log. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword, verifyPassword } from '../../src/service/auth/passwords.ts';
import { buildApp } from '../../src/api/app.ts';
import { createSigner, newSigningKeyPem } from '../../src/service/audit.ts';
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

  it('rate-limits failed logins per user and address, with Retry-After, and lets them in again after the window', async () => {
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

describe('login protection', () => {
  const login = (h: Harness, username: string, password: string, remoteAddress: string, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username, password }, remoteAddress, headers });

  it('a stranger guessing from one address does not lock the user out from their own', async () => {
    const h = await harness();
    try {
      for (let attempt = 0; attempt < 8; attempt++) await login(h, 'admin', `guess ${attempt}`, '203.0.113.9');
      expect((await login(h, 'admin', PASSWORD, '203.0.113.9')).statusCode).toBe(429);
      expect((await login(h, 'admin', PASSWORD, '198.51.100.7')).statusCode).toBe(201);
    } finally {
      await h.close();
    }
  });

  it('stops password spraying: 50 failures from one address across names refuse that address', async () => {
    const h = await harness();
    try {
      for (let attempt = 0; attempt < 50; attempt++) expect((await login(h, `nobody-${attempt}`, 'guess', '203.0.113.10')).statusCode).toBe(401);
      expect((await login(h, 'viewer', PASSWORD, '203.0.113.10')).statusCode).toBe(429);
      expect((await login(h, 'viewer', PASSWORD, '203.0.113.11')).statusCode).toBe(201);
    } finally {
      await h.close();
    }
  });

  it('journals failed and successful logins with the address, and a restarted service still refuses the locked pair', async () => {
    const h = await harness();
    try {
      for (let attempt = 0; attempt < 5; attempt++) await login(h, 'operator', `guess ${attempt}`, '203.0.113.12');
      expect((await login(h, 'operator', PASSWORD, '198.51.100.8')).statusCode).toBe(201);
      const failed = h.journal.entries().filter((entry) => entry.type === 'login.failed');
      expect(failed).toHaveLength(5);
      expect(failed[0]!.data.address).toBe('203.0.113.12');
      expect(failed[0]!.subject).toBe('operator');
      expect(h.journal.entries().some((entry) => entry.type === 'login.succeeded' && entry.data.address === '198.51.100.8')).toBe(true);
      // A new app on the same journal (a restart): the counters come back from it.
      const restarted = await buildApp({ plane: h.plane, accounts: h.accounts, journal: h.journal, signer: createSigner(newSigningKeyPem()), logger: false });
      try {
        const again = await restarted.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'operator', password: PASSWORD }, remoteAddress: '203.0.113.12' });
        expect(again.statusCode).toBe(429);
      } finally {
        await restarted.close();
      }
    } finally {
      await h.close();
    }
  });

  it('takes the client address from X-Forwarded-For only from a trusted proxy', async () => {
    const h = await harness();
    try {
      const trusting = await buildApp({ plane: h.plane, accounts: h.accounts, journal: h.journal, signer: createSigner(newSigningKeyPem()), logger: false, trustProxy: ['127.0.0.1'] });
      try {
        const via = (client: string, password: string) => trusting.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username: 'auditor', password }, remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': client } });
        for (let attempt = 0; attempt < 5; attempt++) await via('203.0.113.20', `guess ${attempt}`);
        expect((await via('203.0.113.20', PASSWORD)).statusCode).toBe(429);
        // Another client behind the same proxy is not locked out with the first.
        expect((await via('198.51.100.21', PASSWORD)).statusCode).toBe(201);
      } finally {
        await trusting.close();
      }
      // Not trusted: a forged header changes nothing, the proxy's address is the client's.
      for (let attempt = 0; attempt < 5; attempt++) await login(h, 'auditor', `guess ${attempt}`, '203.0.113.30', { 'x-forwarded-for': `198.51.100.${attempt}` });
      expect((await login(h, 'auditor', PASSWORD, '203.0.113.30', { 'x-forwarded-for': '198.51.100.99' })).statusCode).toBe(429);
    } finally {
      await h.close();
    }
  });
});

describe('what the HTTP parser cannot read', () => {
  it('answers a request that is not HTTP with a coded 400, not a bare one', async () => {
    const { connect } = await import('node:net');
    const h = await harness();
    try {
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const port = (h.app.server.address() as { port: number }).port;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => socket.write('GARBAGE \u0001\u0002 NOT-HTTP\r\n\r\n'));
        let text = '';
        socket.on('data', (chunk) => (text += String(chunk)));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request/);
      expect(answer).toContain('"code":"TMR_API_MALFORMED_HTTP"');
    } finally {
      await h.close();
    }
  });
});

describe('security headers', () => {
  it('sends helmet\'s headers on every response and no-store on the API, no HSTS over plain HTTP', async () => {
    const h = await harness();
    try {
      for (const url of ['/healthz', '/api/v1/services', '/']) {
        const response = await h.app.inject({ method: 'GET', url, headers: h.as('viewer') });
        expect(response.headers['x-content-type-options'], url).toBe('nosniff');
        expect(response.headers['content-security-policy'], url).toContain("default-src 'self'");
        expect(response.headers['x-frame-options'], url).toBe('SAMEORIGIN');
        expect(response.headers['strict-transport-security'], url).toBeUndefined();
      }
      expect((await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: h.as('viewer') })).headers['cache-control']).toBe('no-store');
    } finally {
      await h.close();
    }
  });
});
