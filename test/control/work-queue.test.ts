import { describe, expect, it } from 'vitest';
import type { InFlight } from '../../src/control/state.ts';
import { WorkQueue } from '../../src/control/work-queue.ts';

function queue() {
  const inFlight = new Map<string, InFlight>();
  return { inFlight, queue: new WorkQueue(inFlight, { baseMs: 1_000, maxMs: 30_000 }) };
}

describe('the work queue', () => {
  it('holds a key in flight until it is settled, and reports it timed out once its deadline passes', () => {
    const { inFlight, queue: work } = queue();
    work.begin('fence:h1', 0, 15_000);
    work.begin('stop:a#1', 0, 15_000);
    expect(work.has('fence:h1')).toBe(true);
    work.settle('stop:a#1');
    expect(work.nextDeadlineMs(null)).toBe(15_000);
    expect(work.nextDeadlineMs(9_000)).toBe(9_000);
    expect(work.expire(14_999)).toEqual([]);
    expect(work.expire(15_000)).toEqual([{ key: 'fence:h1', issuedAtMs: 0 }]);
    expect(inFlight.size).toBe(0);
  });

  it('backs a refused key off for 1, 2, 4 … s up to 30 s, does not call the end of a backoff a timeout, and starts afresh after a success', () => {
    const { queue: work } = queue();
    const waits = Array.from({ length: 7 }, (_, attempt) => work.refused('start:a-1:primary', attempt * 100_000));
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect(work.has('start:a-1:primary')).toBe(true);
    expect(work.expire(10_000_000)).toEqual([]);
    work.accepted('start:a-1:primary');
    expect(work.refused('start:a-1:primary', 0)).toBe(1_000);
  });

  it('frees the starts and promotions sent to a host once it is fenced, and nothing else', () => {
    const { inFlight, queue: work } = queue();
    work.begin('start:a-1:primary', 0, 300_000, 'h1');
    work.begin('promote:b-1', 0, 30_000, 'h1');
    work.begin('start:c-1:primary', 0, 300_000, 'h2');
    work.begin('migrate:d-1', 0, 120_000, 'h1');
    work.begin('fence:h1', 0, 15_000);
    work.refused('start:e-1:primary', 0);
    work.settleOnHost('h1');
    expect([...inFlight.keys()].sort()).toEqual(['fence:h1', 'migrate:d-1', 'start:c-1:primary', 'start:e-1:primary']);
  });

  it('holds custody keys until their deadline, renewed by each hold', () => {
    const { queue: work } = queue();
    work.hold('promote:a-1', 0, 3_600_000);
    work.hold('promote:a-1', 1_000, 3_601_000);
    expect(work.expire(3_600_000)).toEqual([]);
    expect(work.expire(3_601_000)).toEqual([{ key: 'promote:a-1', issuedAtMs: 1_000 }]);
  });

  it('lets one worker at a time take a key, outside the in-flight entries decide() reads', () => {
    const { inFlight, queue: work } = queue();
    expect(work.startWork('security:a-1')).toBe(true);
    expect(work.startWork('security:a-1')).toBe(false);
    expect(inFlight.size).toBe(0);
    work.endWork('security:a-1');
    expect(work.startWork('security:a-1')).toBe(true);
  });
});
