/**
 * Liveness by the reader's clock: a heartbeat record or a lease is alive while the reader sees it
 * change, whatever time its writer stamped on it. The old judgement (compare the writer's stamp
 * with my clock, keep the newest with Math.max) is written out here to show what it got wrong.
 */
import { describe, expect, it } from 'vitest';
import { ChangeWatch, leaseWaitMs } from '../../src/ports/liveness.ts';

const TIMEOUT_MS = 2_000;

/** A writer that beats every 500 ms with its own clock, `offsetMs` off the reader's, until `stopsAtMs`. */
function record(readerNowMs: number, offsetMs: number, stopsAtMs: number): { seq: number; atMs: number } {
  const lastBeatMs = Math.floor(Math.min(readerNowMs, stopsAtMs) / 500) * 500;
  return { seq: lastBeatMs / 500, atMs: lastBeatMs + offsetMs };
}

describe('liveness judged by the reader', () => {
  for (const offsetMs of [30_000, -30_000, 0]) {
    it(`a writer whose clock is ${offsetMs / 1000} s off is alive while it beats and silent ${TIMEOUT_MS / 1000} s after it stops`, () => {
      const watch = new ChangeWatch();
      const stopsAtMs = 60_000;
      let lostAtMs: number | null = null;
      let naiveLostAtMs: number | null = null;
      let naiveNewest = 0;
      for (let now = 0; now <= 120_000; now += 100) {
        const beat = record(now, offsetMs, stopsAtMs);
        const changedAtMs = watch.observe('host-a', `${beat.seq}:${beat.atMs}`, now);
        if (lostAtMs === null && now - changedAtMs > TIMEOUT_MS) lostAtMs = now;
        // The old way: the writer's stamp, kept with Math.max, against the reader's clock.
        naiveNewest = Math.max(naiveNewest, beat.atMs);
        if (naiveLostAtMs === null && now - naiveNewest > TIMEOUT_MS) naiveLostAtMs = now;
      }
      expect(lostAtMs).toBeGreaterThan(stopsAtMs + TIMEOUT_MS - 600);
      expect(lostAtMs).toBeLessThanOrEqual(stopsAtMs + TIMEOUT_MS + 600);
      if (offsetMs > 0) expect(naiveLostAtMs).toBeGreaterThan(stopsAtMs + offsetMs);
      // Behind: the old way calls a host that beats every 500 ms silent long before it stops.
      if (offsetMs < 0) expect(naiveLostAtMs).toBeLessThan(stopsAtMs / 10);
    });
  }

  it('a clock stepped back while a lease is renewed does not free the lease; one not renewed for a lease time is free', () => {
    const watch = new ChangeWatch();
    const leaseMs = 10_000;
    // The holder renews every second, its stamps jumping 30 s back halfway: the content still changes.
    for (let now = 0; now < 20_000; now += 1_000) {
      const stamp = now < 10_000 ? now : now - 30_000;
      expect(leaseWaitMs(watch, 'vm-1', `host-a:${stamp}`, now, leaseMs)).toBe(leaseMs);
    }
    // It stops renewing at 19 s: free a lease time later by the reader's clock.
    expect(leaseWaitMs(watch, 'vm-1', 'host-a:-11000', 25_000, leaseMs)).toBe(4_000);
    expect(leaseWaitMs(watch, 'vm-1', 'host-a:-11000', 29_000, leaseMs)).toBe(0);
  });

  it('a lease first seen is watched for a whole lease time before it counts as free', () => {
    const watch = new ChangeWatch();
    expect(leaseWaitMs(watch, 'vm-1', 'host-b:123', 5_000, 10_000)).toBe(10_000);
    expect(leaseWaitMs(watch, 'vm-1', 'host-b:123', 15_000, 10_000)).toBe(0);
  });
});
