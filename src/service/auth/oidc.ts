/**
 * OpenID Connect login (openid-client): the authorization-code flow with PKCE, state and nonce.
 * The browser goes to the provider and comes back to /api/v1/oidc/callback; the provider's ID token
 * is checked by the library (signature, issuer, audience, expiry, nonce) and its groups claim (or
 * the userinfo's) is mapped to a role. The session token is then handed to the page that started
 * the login through a one-time handoff code that only that browser (its binding cookie) can
 * redeem, within a minute: a token never appears in a URL.
 *
 * Pending logins and handoffs live in this process's memory (a restart cancels logins in flight):
 * with several instances behind a load balancer, route /api/v1/oidc/* to one instance or stickily.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import { TomaranaiError } from '../../errors/index.ts';
import { readSecretFile, type OidcConfig } from './directory-config.ts';
import type { DirectoryIdentity } from './ldap.ts';

/** A login started must come back within this. */
const PENDING_TTL_MS = 10 * 60_000;
/** A handoff code is redeemed within this, once. */
const HANDOFF_TTL_MS = 60_000;
/** Unauthenticated callers start logins: at most this many wait at once (the oldest is dropped). */
const MAX_PENDING = 10_000;

interface Pending {
  readonly verifier: string;
  readonly nonce: string;
  readonly binding: string;
  readonly expiresAtMs: number;
}

interface Handoff<T> {
  readonly value: T;
  readonly binding: string;
  readonly expiresAtMs: number;
}

export class OidcLogin<T = unknown> {
  private configuration: Promise<client.Configuration> | null = null;
  private readonly pending = new Map<string, Pending>();
  private readonly handoffs = new Map<string, Handoff<T>>();
  private readonly clientSecret: string | null;

  constructor(
    readonly config: OidcConfig,
    private readonly wallNowMs: () => number = Date.now,
  ) {
    this.clientSecret = config.clientSecretFile === undefined ? null : readSecretFile(config.clientSecretFile, 'oidc.clientSecretFile');
  }

  /** The provider's metadata, discovered on first use (a provider down at start does not stop the service). */
  private discover(): Promise<client.Configuration> {
    if (this.configuration === null) {
      const auth = this.clientSecret === null ? client.None() : client.ClientSecretBasic(this.clientSecret);
      const found = client.discovery(new URL(this.config.issuer), this.config.clientId, undefined, auth, {
        timeout: 10,
        ...(this.config.allowHttp ? { execute: [client.allowInsecureRequests] } : {}),
      });
      this.configuration = found;
      // A failed discovery is tried again at the next login.
      found.catch(() => {
        if (this.configuration === found) this.configuration = null;
      });
    }
    return this.configuration;
  }

  /** Starts a login: the provider URL to send the browser to, and the binding to set as a cookie. */
  async begin(): Promise<{ url: string; binding: string }> {
    const configuration = await this.unavailableUnless(this.discover());
    this.sweep();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const binding = randomBytes(32).toString('base64url');
    while (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(state, { verifier, nonce, binding: digest(binding), expiresAtMs: this.wallNowMs() + PENDING_TTL_MS });
    const url = client.buildAuthorizationUrl(configuration, {
      redirect_uri: this.config.redirectUri,
      scope: this.config.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.href, binding };
  }

  /**
   * Finishes a login from the provider's redirect (the callback's query) in the browser that began
   * it. Throws TMR_API_OIDC_FAILED when the state is unknown or stale, the browser is another, the
   * provider reports an error or its answer does not check out.
   */
  async complete(query: Readonly<Record<string, string>>, binding: string | undefined): Promise<DirectoryIdentity> {
    const state = query.state ?? '';
    const pending = this.pending.get(state);
    this.pending.delete(state);
    if (pending === undefined || pending.expiresAtMs < this.wallNowMs()) throw failed('this login is unknown or has expired', 'start again from the login page');
    if (binding === undefined || !sameDigest(digest(binding), pending.binding)) throw failed('this login was started in another browser', 'start again from the login page in this browser');
    if (query.error !== undefined) throw failed(`the provider answered ${query.error.slice(0, 100)}${query.error_description ? `: ${query.error_description.slice(0, 200)}` : ''}`);
    const configuration = await this.unavailableUnless(this.discover());
    const callback = new URL(this.config.redirectUri);
    for (const [key, value] of Object.entries(query)) callback.searchParams.set(key, value);
    let claims: Record<string, unknown>;
    let accessToken: string;
    try {
      const tokens = await client.authorizationCodeGrant(configuration, callback, { pkceCodeVerifier: pending.verifier, expectedState: state, expectedNonce: pending.nonce, idTokenExpected: true });
      claims = { ...(tokens.claims() ?? {}) };
      accessToken = tokens.access_token;
    } catch (error) {
      throw failed(`the provider's answer did not check out: ${describe(error)}`);
    }
    if (claims[this.config.groupsClaim] === undefined || claims[this.config.usernameClaim] === undefined) {
      try {
        claims = { ...(await client.fetchUserInfo(configuration, accessToken, String(claims.sub))), ...claims };
      } catch (error) {
        throw failed(`the provider's userinfo could not be read: ${describe(error)}`);
      }
    }
    const login = claims[this.config.usernameClaim];
    if (typeof login !== 'string' || login.length === 0) throw failed(`the provider sent no ${this.config.usernameClaim} claim`, `map a user-name claim in the provider, or set oidc.usernameClaim`);
    const groups = claims[this.config.groupsClaim];
    const list = Array.isArray(groups) ? groups.filter((group): group is string => typeof group === 'string') : typeof groups === 'string' ? [groups] : [];
    return { login, subject: String(claims.sub), groups: list.slice(0, 1_000) };
  }

  /** Keeps a value (the session) for the browser with this binding; returns the one-time code. */
  handOff(value: T, binding: string): string {
    this.sweep();
    const code = randomBytes(24).toString('base64url');
    while (this.handoffs.size >= MAX_PENDING) this.handoffs.delete(this.handoffs.keys().next().value!);
    this.handoffs.set(code, { value, binding: digest(binding), expiresAtMs: this.wallNowMs() + HANDOFF_TTL_MS });
    return code;
  }

  /** The value for a handoff code, once, in the browser it was made for; null otherwise. */
  redeem(code: string, binding: string | undefined): T | null {
    const handoff = this.handoffs.get(code);
    if (handoff === undefined || binding === undefined || !sameDigest(digest(binding), handoff.binding)) return null;
    this.handoffs.delete(code);
    return handoff.expiresAtMs < this.wallNowMs() ? null : handoff.value;
  }

  private sweep(): void {
    const now = this.wallNowMs();
    for (const [key, value] of this.pending) if (value.expiresAtMs < now) this.pending.delete(key);
    for (const [key, value] of this.handoffs) if (value.expiresAtMs < now) this.handoffs.delete(key);
  }

  private async unavailableUnless(configuration: Promise<client.Configuration>): Promise<client.Configuration> {
    try {
      return await configuration;
    } catch (error) {
      throw new TomaranaiError('TMR_API_DIRECTORY_UNAVAILABLE', `the OpenID provider ${this.config.issuer} did not answer: ${describe(error)}`);
    }
  }
}

function digest(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

function sameDigest(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function failed(message: string, hint?: string): TomaranaiError {
  return new TomaranaiError('TMR_API_OIDC_FAILED', message, hint);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}
