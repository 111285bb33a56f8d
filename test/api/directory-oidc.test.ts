/**
 * OpenID Connect login against a real provider (oidc-provider, started here): the code flow with
 * PKCE, state and nonce, groups from the provider mapped to roles, the session handed to the page
 * through a one-time code bound to the browser, and the ways it must fail: another browser's
 * callback or handoff, a replayed callback or handoff, a forged code, a user in no mapped group,
 * a provider that is down.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryLogin } from '../../src/service/auth/directory.ts';
import { parseDirectoryConfig } from '../../src/service/auth/directory-config.ts';
import { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, signInAtProvider, startProvider, type TestProvider } from '../support/oidc-provider.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { harness, type Harness } from './harness.ts';

let provider: TestProvider;
let h: Harness | null = null;
const secretFile = join(mkdtempSync(join(tmpdir(), 'tomaranai-oidc-')), 'client.secret');

beforeAll(async () => {
  provider = await startProvider();
  provider.accounts.set('nurse', ['icu-operators', 'staff']);
  provider.accounts.set('cook', ['cafeteria']);
  provider.accounts.set('vendorsan', ['vendor-a']);
  writeFileSync(secretFile, `${CLIENT_SECRET}\n`, { mode: 0o600 });
});
afterAll(async () => provider.close());
afterEach(async () => {
  await h?.close();
  h = null;
});

function directory(issuer = provider.issuer): DirectoryLogin {
  return new DirectoryLogin(
    parseDirectoryConfig(`
oidc:
  issuer: ${issuer}
  clientId: ${CLIENT_ID}
  clientSecretFile: ${secretFile}
  redirectUri: ${REDIRECT_URI}
  allowHttp: true
roles:
  - { group: icu-operators, role: operator }
  - { group: vendor-a, role: "vendor:vendor-a" }
sessionHours: 4
`),
  );
}

const cookieOf = (response: LightMyRequestResponse) => {
  const set = response.headers['set-cookie'];
  const line = (Array.isArray(set) ? set : [set ?? '']).find((candidate) => candidate.startsWith('tmr_oidc='))!;
  return line.split(';')[0]!;
};
const location = (response: LightMyRequestResponse) => String(response.headers.location);

/** Starts a login in "a browser": the provider URL and that browser's binding cookie. */
async function begin(h: Harness): Promise<{ url: string; cookie: string }> {
  const response = await h.app.inject({ method: 'GET', url: '/api/v1/oidc/login' });
  expect(response.statusCode, response.body).toBe(302);
  return { url: location(response), cookie: cookieOf(response) };
}

async function callback(h: Harness, providerRedirect: string, cookie: string): Promise<URLSearchParams> {
  const url = new URL(providerRedirect);
  const response = await h.app.inject({ method: 'GET', url: `${url.pathname}${url.search}`, headers: { cookie } });
  expect(response.statusCode).toBe(302);
  const back = location(response);
  expect(back.startsWith('/#/oidc?')).toBe(true);
  return new URLSearchParams(back.slice('/#/oidc?'.length));
}

const handoff = (h: Harness, code: string, cookie: string | null) =>
  h.app.inject({ method: 'POST', url: '/api/v1/oidc/handoff', payload: { code }, headers: cookie === null ? {} : { cookie } });

describe('OpenID Connect login against a real provider', () => {
  it('a user signs in at the provider and comes back with a session whose role its groups map to; journaled', async () => {
    h = await harness({ directory: directory() });
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/auth/methods' })).json()).toEqual({ password: true, ldap: false, oidc: true });
    const { url, cookie } = await begin(h);
    expect(new URL(url).searchParams.get('code_challenge_method')).toBe('S256');
    const back = await callback(h, await signInAtProvider(url, 'nurse'), cookie);
    expect(back.get('error')).toBeNull();
    const session = await handoff(h, back.get('handoff')!, cookie);
    expect(session.statusCode, session.body).toBe(201);
    expect(session.json()).toMatchObject({ username: 'nurse', role: 'operator' });
    expect(session.json().expiresAtMs - Date.now()).toBeLessThanOrEqual(4 * 3600_000 + 1000);
    const me = await h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${session.json().token}` } });
    expect(me.json()).toMatchObject({ username: 'nurse', role: 'operator' });
    expect(h.journal.entries().find((entry) => entry.type === 'login.succeeded' && entry.subject === 'nurse')?.data).toMatchObject({ method: 'oidc', role: 'operator' });
    // The handoff code works once.
    expect((await handoff(h, back.get('handoff')!, cookie)).statusCode).toBe(401);
  });

  it('a vendor group maps to its vendor role', async () => {
    h = await harness({ directory: directory() });
    const { url, cookie } = await begin(h);
    const back = await callback(h, await signInAtProvider(url, 'vendorsan'), cookie);
    expect((await handoff(h, back.get('handoff')!, cookie)).json()).toMatchObject({ role: 'vendor:vendor-a' });
  });

  it('another browser cannot finish the login or take the session: the callback and the handoff are bound to the browser that began', async () => {
    h = await harness({ directory: directory() });
    const victim = await begin(h);
    const attacker = await begin(h);
    const redirect = await signInAtProvider(victim.url, 'nurse');
    // The victim's provider redirect replayed in the attacker's browser.
    expect((await callback(h, redirect, attacker.cookie)).get('error')).toBe('TMR_API_OIDC_FAILED');
    // The state was used up: the victim's own browser cannot replay it either.
    expect((await callback(h, redirect, victim.cookie)).get('error')).toBe('TMR_API_OIDC_FAILED');
    const fresh = await begin(h);
    const back = await callback(h, await signInAtProvider(fresh.url, 'nurse'), fresh.cookie);
    expect((await handoff(h, back.get('handoff')!, attacker.cookie)).statusCode).toBe(401);
    expect((await handoff(h, back.get('handoff')!, null)).statusCode).toBe(401);
    const failures = h.journal.entries().filter((entry) => entry.type === 'login.failed' && entry.data.method === 'oidc');
    expect(failures.map((entry) => entry.data.reason)).toEqual(expect.arrayContaining(['this login was started in another browser', 'this login is unknown or has expired']));
  });

  it('a forged authorization code and a user in no mapped group are refused and journaled', async () => {
    h = await harness({ directory: directory() });
    const { url, cookie } = await begin(h);
    const redirect = new URL(await signInAtProvider(url, 'nurse'));
    redirect.searchParams.set('code', 'forged-code');
    expect((await callback(h, redirect.href, cookie)).get('error')).toBe('TMR_API_OIDC_FAILED');
    const cook = await begin(h);
    expect((await callback(h, await signInAtProvider(cook.url, 'cook'), cook.cookie)).get('error')).toBe('TMR_API_BAD_CREDENTIALS');
    expect(h.journal.entries().some((entry) => entry.type === 'login.failed' && entry.subject === 'cook' && /none of its 1 directory group/.test(String(entry.data.reason)))).toBe(true);
    expect((await h.accounts.users()).map((account) => account.username)).not.toContain('cook');
  });

  it('a provider that does not answer gives 503 TMR_API_DIRECTORY_UNAVAILABLE at login; without oidc configured, 404', async () => {
    h = await harness({ directory: directory('http://127.0.0.1:9') });
    const down = await h.app.inject({ method: 'GET', url: '/api/v1/oidc/login' });
    expect(down.statusCode).toBe(503);
    expect(down.json().error.code).toBe('TMR_API_DIRECTORY_UNAVAILABLE');
    await h.close();
    h = await harness();
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/oidc/login' })).statusCode).toBe(404);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/auth/methods' })).json()).toEqual({ password: true, ldap: false, oidc: false });
  });
});
