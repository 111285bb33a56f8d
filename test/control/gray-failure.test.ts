/**
 * The gray-failure verdict alone: evidence across a host's copies over a window, not one sick
 * guest; a failure shared by the estate is nobody's host; hysteresis (a probation that doubles); and
 * a wake-up that is always in the future.
 */
import { describe, expect, it } from 'vitest';
import { GrayFailureJudge } from '../../src/control/gray-failure.ts';
import { HealthHistory } from '../../src/control/health-history.ts';
import { DEFAULT_TIMINGS } from '../../src/control/timings.ts';
import type { InstanceObservation } from '../../src/ports/index.ts';

const copy = (id: string, host: string, healthy: boolean): InstanceObservation => ({ id, vm: id, host, role: 'primary', state: 'running', healthy, synced: false, datastore: 'ds' });

function estate(failing: Record<string, number>, copiesPerHost = 4, hosts = ['h1', 'h2', 'h3', 'h4']) {
  const history = new HealthHistory(DEFAULT_TIMINGS);
  for (const host of hosts) {
    for (let index = 0; index < copiesPerHost; index++) {
      const id = `${host}-vm${index}`;
      history.observe(copy(id, host, true), 0);
      if (index < (failing[host] ?? 0)) history.observe(copy(id, host, false), 100_000);
    }
  }
  return history;
}

const up = () => 'up' as const;
const reachable = () => true;

describe('gray failure', () => {
  it('a host is degraded once at least two, and half, of its copies have failed half the window, while the others are well', () => {
    const judge = new GrayFailureJudge(DEFAULT_TIMINGS);
    const history = estate({ h2: 3 });
    expect(judge.judge(history, up, reachable, 110_000).degrade).toEqual([]);
    const verdict = judge.judge(history, up, reachable, 116_000);
    expect(verdict.degrade.map((entry) => entry.host)).toEqual(['h2']);
    expect(verdict.degrade[0]!.verdict.evidence.failing.map((entry) => entry.vm)).toEqual(['h2-vm0', 'h2-vm1', 'h2-vm2']);
  });

  it('one sick guest is not a gray host', () => {
    const judge = new GrayFailureJudge(DEFAULT_TIMINGS);
    expect(judge.judge(estate({ h2: 1 }), up, reachable, 200_000).degrade).toEqual([]);
  });

  it('copies failing on every host are a shared cause: no host is degraded, and the judge says so', () => {
    const judge = new GrayFailureJudge(DEFAULT_TIMINGS);
    expect(judge.judge(estate({ h1: 3, h2: 3, h3: 2 }), up, reachable, 200_000).degrade).toEqual([]);
    expect(judge.shared).toMatch(/shared cause/);
  });

  it('hysteresis: trusted again only after a probation, which doubles when it is degraded again; the next look is never now', () => {
    const judge = new GrayFailureJudge(DEFAULT_TIMINGS);
    const history = estate({ h2: 3 });
    const first = judge.judge(history, up, reachable, 120_000);
    judge.apply(first);
    expect(first.degrade[0]!.verdict.untilMs - 120_000).toBe(DEFAULT_TIMINGS.grayProbationMs);
    // Probation over, but its copies still fail: not yet trusted, looked at again later.
    const stillFailing = judge.judge(history, up, reachable, 120_000 + DEFAULT_TIMINGS.grayProbationMs);
    expect(stillFailing.recover).toEqual([]);
    expect(judge.nextDeadlineMs(120_000 + DEFAULT_TIMINGS.grayProbationMs)).toBeGreaterThan(120_000 + DEFAULT_TIMINGS.grayProbationMs);
    // Its copies moved away: trusted.
    for (let index = 0; index < 4; index++) history.removed(`h2-vm${index}`);
    const trusted = judge.judge(history, up, reachable, 120_000 + DEFAULT_TIMINGS.grayProbationMs + 1);
    expect(trusted.recover.map((entry) => entry.host)).toEqual(['h2']);
    judge.apply(trusted);
    const again = new HealthHistory(DEFAULT_TIMINGS);
    const t0 = 2_000_000;
    for (let index = 0; index < 3; index++) {
      again.observe(copy(`x${index}`, 'h2', true), t0);
      again.observe(copy(`x${index}`, 'h2', false), t0 + 10_000);
    }
    for (let index = 0; index < 6; index++) again.observe(copy(`y${index}`, 'h1', true), t0);
    const second = judge.judge(again, up, reachable, t0 + 40_000);
    expect(second.degrade[0]!.verdict.untilMs - (t0 + 40_000)).toBe(2 * DEFAULT_TIMINGS.grayProbationMs);
  });
});
