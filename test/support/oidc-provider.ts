/**
 * A real OpenID Connect provider for the directory-login tests: panva's oidc-provider (an
 * OpenID-certified implementation) on a free port, with one confidential client (PKCE required)
 * and accounts whose `groups` claim the test sets. Its development login form accepts any password
 * for a known account; `browse` plays the browser through it with a small cookie jar.
 */
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'tomaranai';
export const CLIENT_SECRET = 'a-test-client-secret-of-enough-length';
export const REDIRECT_URI = 'http://tomaranai.test/api/v1/oidc/callback';

export interface TestProvider {
  readonly issuer: string;
  /** Account id → its groups claim (absent: the account does not exist). */
  readonly accounts: Map<string, string[]>;
  close(): Promise<void>;
}

export async function startProvider(redirectUris: readonly string[] = [REDIRECT_URI]): Promise<TestProvider> {
  const accounts = new Map<string, string[]>();
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  const issuer = `http://127.0.0.1:${address.port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [...redirectUris], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
    claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'groups'] },
    scopes: ['openid', 'profile', 'email'],
    pkce: { required: () => true },
    cookies: { keys: ['a-test-cookie-signing-key'] },
    async findAccount(_context, id) {
      const groups = accounts.get(id);
      if (groups === undefined) return undefined;
      return { accountId: id, claims: async () => ({ sub: `sub-${id}`, preferred_username: id, name: id, groups }) };
    },
  });
  // Quiet: the development interactions warn on every start.
  provider.on('server_error', () => undefined);
  server.on('request', provider.callback());
  return {
    issuer,
    accounts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A browser's cookies, per origin (enough for two servers on one test). */
export class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>();

  header(url: string): string {
    return [...(this.jars.get(new URL(url).host) ?? new Map<string, string>())].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  take(url: string, setCookies: readonly string[]): void {
    const jar = this.jars.get(new URL(url).host) ?? new Map<string, string>();
    for (const line of setCookies) {
      const [pair] = line.split(';');
      const index = pair!.indexOf('=');
      const name = pair!.slice(0, index).trim();
      const value = pair!.slice(index + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) jar.delete(name);
      else jar.set(name, value);
    }
    this.jars.set(new URL(url).host, jar);
  }
}

/**
 * Follows the provider's redirects and forms (login with `login`, then consent) the way a browser
 * would, from the authorization URL until the provider sends the browser to the redirect URI;
 * returns that URL.
 */
export async function signInAtProvider(authorizationUrl: string, login: string, jar = new CookieJar()): Promise<string> {
  let url = authorizationUrl;
  let method = 'GET';
  let body: string | undefined;
  for (let step = 0; step < 20; step++) {
    if (url.startsWith(REDIRECT_URI)) return url;
    const response = await fetch(url, { method, redirect: 'manual', headers: { cookie: jar.header(url), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) }, ...(body ? { body } : {}) });
    jar.take(url, response.headers.getSetCookie());
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get('location')!, url).href;
      method = 'GET';
      body = undefined;
      continue;
    }
    const page = await response.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
    if (response.status !== 200 || action === undefined) throw new Error(`the provider answered ${response.status}: ${page.slice(0, 300)}`);
    const prompt = /name="prompt" value="([^"]+)"/.exec(page)?.[1];
    url = new URL(action.replace(/&amp;/g, '&'), url).href;
    method = 'POST';
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any' } : { prompt: prompt ?? 'consent' }).toString();
  }
  throw new Error('the provider did not send the browser back within 20 steps');
}
