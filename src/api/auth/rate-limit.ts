/**
 * Login protection. Failures are counted in a sliding window per (user, client address) pair and
 * per client address:
 *
 * - a pair is refused after 5 failures in 15 minutes: someone guessing one account's password from
 *   one place is stopped, while the account's owner, logging in from their own address, is not — a
 *   stranger cannot lock a user out from everywhere (the per-user lock this replaced could);
 * - an address is refused after 50 failures in 15 minutes across all names: password spraying from
 *   one place is stopped. Behind a reverse proxy, the address is the client's only when the proxy
 *   is trusted (`serve --trust-proxy ADDRESS`); otherwise every client would share the proxy's.
 *
 * Failed logins are journaled (`login.failed`, with the address) by the leader, and a restarted
 * service folds the journal's recent failures back in: a restart does not reset the counters. The
 * table is bounded, so a flood of names and addresses cannot grow it without end.
 */
import { eventsOf, type JournalEntry } from '../../ports/index.ts';

export interface LoginLimits {
  /** Failures per (user, address) pair within the window before that pair is refused. */
  readonly failuresPerPair: number;
  /** Failures per address, across user names, within the window before that address is refused. */
  readonly failuresPerAddress: number;
  readonly windowMs: number;
  readonly keysKept: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = Object.freeze({ failuresPerPair: 5, failuresPerAddress: 50, windowMs: 15 * 60_000, keysKept: 10_000 });

export interface LoginAttempt {
  readonly username: string;
  readonly address: string;
}

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly wallNowMs: () => number = Date.now,
  ) {}

  /** Milliseconds until this attempt may be tried, or 0 when it may now. */
  retryAfterMs(attempt: LoginAttempt): number {
    const now = this.wallNowMs();
    let wait = 0;
    for (const [key, allowed] of this.keys(attempt)) {
      const list = this.recent(key, now);
      if (list.length >= allowed) wait = Math.max(wait, list[list.length - allowed]! + this.limits.windowMs - now);
    }
    return wait;
  }

  fail(attempt: LoginAttempt, atMs: number = this.wallNowMs()): void {
    for (const [key, allowed] of this.keys(attempt)) {
      const list = this.recent(key, atMs);
      list.push(atMs);
      while (list.length > allowed) list.shift();
      this.failures.delete(key);
      this.failures.set(key, list);
    }
    while (this.failures.size > this.limits.keysKept) this.failures.delete(this.failures.keys().next().value!);
  }

  /** A successful login clears its pair (the address's count stays: spraying may still be going on). */
  succeed(attempt: LoginAttempt): void {
    this.failures.delete(pairKey(attempt));
  }

  /** Folds the journal's failed logins within the window back in (a restarted service). */
  restore(entries: readonly JournalEntry[]): void {
    const now = this.wallNowMs();
    for (const entry of eventsOf(entries, 'login.failed')) {
      if (now - entry.data.wallAtMs < this.limits.windowMs) this.fail({ username: entry.subject, address: entry.data.address }, entry.data.wallAtMs);
    }
  }

  private keys(attempt: LoginAttempt): [string, number][] {
    return [
      [pairKey(attempt), this.limits.failuresPerPair],
      [`address:${attempt.address}`, this.limits.failuresPerAddress],
    ];
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((atMs) => now - atMs < this.limits.windowMs);
  }
}

function pairKey(attempt: LoginAttempt): string {
  return `pair:${attempt.username}\u0000${attempt.address}`;
}
