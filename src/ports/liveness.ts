/**
 * Liveness judged by the reader's own clock. A heartbeat or a lease that another host keeps
 * rewriting is alive for as long as *I* see it change: the reader records when, on its own
 * monotonic clock, it last saw the record's content change, and never compares a time the writer
 * stamped on it with its own (the writer's clock may be stepped: ahead, it would keep a dead host
 * alive, and a lease held; behind, it would make a live host look silent). This is how the delta
 * leases of sanlock and Chubby's sessions work. A record first seen counts as changing now: a
 * reader that has just started waits a whole timeout before it calls anything silent or free.
 * No I/O: the reader passes its clock's reading in.
 */

export class ChangeWatch<K = string> {
  private readonly seen = new Map<K, { value: string; changedAtMs: number }>();

  /** Records what the reader sees of `key` now; returns when, on the reader's clock, it last saw it change. */
  observe(key: K, value: string, readerNowMs: number): number {
    const last = this.seen.get(key);
    if (last === undefined || last.value !== value) {
      this.seen.set(key, { value, changedAtMs: readerNowMs });
      return readerNowMs;
    }
    return last.changedAtMs;
  }

  /** When the reader last saw `key` change (undefined: never seen). */
  changedAtMs(key: K): number | undefined {
    return this.seen.get(key)?.changedAtMs;
  }

  forget(key: K): void {
    this.seen.delete(key);
  }
}

/**
 * A lease another holder keeps renewing (its content changes with every renewal): held while the
 * reader has seen it change within `leaseMs`, on the reader's clock, whatever expiry the holder
 * wrote into it. Returns how long the reader must still wait before it may take it (0: free).
 */
export function leaseWaitMs(watch: ChangeWatch, key: string, content: string, readerNowMs: number, leaseMs: number): number {
  const changedAtMs = watch.observe(key, content, readerNowMs);
  return Math.max(0, changedAtMs + leaseMs - readerNowMs);
}
