/**
 * Judging another machine's heartbeat or lease by the reader's own clock. A record written by
 * another host carries that host's wall-clock time, and a host's clock can be stepped (NTP, an
 * operator, a virtualised clock): comparing its time with ours would let a clock 30 s behind make
 * a live lease look expired (a second writable copy) or a clock 30 s ahead make a live heartbeat
 * look stale (a host declared dead, its VMs killed). So the reader never compares a remote time
 * with its own: it notes, on its own monotonic clock, when the record last *changed* (each renewal
 * or beat rewrites it), and judges liveness by how long it has been unchanged — as sanlock's delta
 * leases do. A record seen for the first time counts as changed now: a reader that just started
 * waits a full lease before it calls a stale lease free.
 */
export class ChangeWitness {
  private readonly seen = new Map<string, { readonly version: string; readonly changedAtMs: number }>();

  constructor(private readonly monotonicMs: () => number = () => performance.now()) {}

  /**
   * Records what `key` holds now (any string that changes with each renewal; null: nothing) and
   * answers how many of the reader's milliseconds it has been unchanged.
   */
  observe(key: string, version: string | null): number {
    const now = this.monotonicMs();
    if (version === null) {
      this.seen.delete(key);
      return 0;
    }
    const previous = this.seen.get(key);
    if (previous === undefined || previous.version !== version) {
      this.seen.set(key, { version, changedAtMs: now });
      return 0;
    }
    return now - previous.changedAtMs;
  }

  /** How long `key` has been unchanged, without recording anything; null when never seen. */
  unchangedForMs(key: string): number | null {
    const previous = this.seen.get(key);
    return previous === undefined ? null : this.monotonicMs() - previous.changedAtMs;
  }
}
