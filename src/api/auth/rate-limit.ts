/**
 * Login rate limiting: failures are counted per user name and per client address in a sliding
 * window; past the limit, logins for that key are refused until the oldest failure leaves the
 * window. The table is bounded, so a flood of names cannot grow it without end.
 */

export interface LoginLimits {
  readonly failuresAllowed: number;
  readonly windowMs: number;
  readonly keysKept: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = Object.freeze({ failuresAllowed: 5, windowMs: 15 * 60_000, keysKept: 10_000 });

export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly limits: LoginLimits = DEFAULT_LOGIN_LIMITS,
    private readonly wallNowMs: () => number = Date.now,
  ) {}

  /** Milliseconds until a login for any of these keys may be tried, or 0 when it may now. */
  retryAfterMs(keys: readonly string[]): number {
    const now = this.wallNowMs();
    let wait = 0;
    for (const key of keys) {
      const list = this.recent(key, now);
      if (list.length >= this.limits.failuresAllowed) wait = Math.max(wait, list[0]! + this.limits.windowMs - now);
    }
    return wait;
  }

  fail(keys: readonly string[]): void {
    const now = this.wallNowMs();
    for (const key of keys) {
      const list = this.recent(key, now);
      list.push(now);
      if (list.length > this.limits.failuresAllowed) list.shift();
      this.failures.delete(key);
      this.failures.set(key, list);
    }
    while (this.failures.size > this.limits.keysKept) this.failures.delete(this.failures.keys().next().value!);
  }

  succeed(keys: readonly string[]): void {
    for (const key of keys) this.failures.delete(key);
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((atMs) => now - atMs < this.limits.windowMs);
  }
}
