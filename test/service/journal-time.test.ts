/**
 * Journal time never goes back across a restart. A sped-up service (a demo at 10×, a test at 200×)
 * runs its clock ahead of the wall; before this, a restarted one began again at the wall's time, so
 * the journal's times went back (and a service showed a negative RTO measured across the restart).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startService } from '../../src/api/server.ts';
import { RealClock } from '../../src/runtime/real-clock.ts';

const SMALL = readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8');

describe('journal time', () => {
  it('a clock moved forward to a floor reads no less than it, and never moves back', () => {
    let wall = 1_000;
    const clock = new RealClock(10, () => wall, 5_000);
    wall += 100;
    expect(clock.nowMs()).toBe(6_000);
    clock.notBefore(50_000);
    expect(clock.nowMs()).toBe(50_000);
    clock.notBefore(10_000);
    expect(clock.nowMs()).toBe(50_000);
    wall += 10;
    expect(clock.nowMs()).toBe(50_100);
  });

  it('a sped-up service restarted on the same journal resumes after its last entry', async () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'tomaranai-time-')), 'state.db')}`;
    const options = { db, substrate: 'twin', blueprintSource: SMALL, port: 0, speed: 200, logger: false as const, scryptCost: { N: 1024, r: 8, p: 1 } };
    const first = await startService(options);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const before = first.storage.journal.length;
    const lastBefore = first.storage.journal.entries(before)[0]!.atMs;
    await first.stop();
    // 1.5 s of wall time at 200× is 300 s of journal time: well ahead of the wall now.
    expect(lastBefore).toBeGreaterThan(Date.now() + 60_000);

    const second = await startService(options);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const entries = second.storage.journal.entries(1);
    await second.stop();
    expect(entries.length).toBeGreaterThan(before);
    for (let index = 1; index < entries.length; index++) {
      expect(entries[index]!.atMs, `entry ${entries[index]!.seq} (${entries[index]!.type}) is earlier than entry ${entries[index - 1]!.seq}`).toBeGreaterThanOrEqual(entries[index - 1]!.atMs);
    }
  });
});
