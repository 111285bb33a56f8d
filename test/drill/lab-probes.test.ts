/**
 * How the real drill counts acknowledged writes lost and tells an outage from a slow answer,
 * without VMs: a write is lost only if a run of the guest acknowledged it and the disk does not hold
 * that run's record of it. (Counting from racing HTTP answers, a copy that kept running and went
 * silent twice was charged every write between the two silences: 240 "lost" on a busy machine.)
 */
import { describe, expect, it } from 'vitest';
import { parseSeq, writesNotOnDisk } from '../../src/drill/lab/probes.ts';

/** A disk whose sectors 1..n were written by the runs given as [boot, fromSeq, toSeq]. */
function disk(...spans: [string, number, number][]): Map<number, string> {
  const records = new Map<number, string>();
  for (const [boot, from, to] of spans) for (let seq = from; seq <= to; seq++) records.set(seq, boot);
  return records;
}

describe('acknowledged writes lost, counted on the disk', () => {
  it('a failover to a standby that resumed after the newest record loses nothing', () => {
    const records = disk(['aaaa', 1, 500], ['bbbb', 501, 800]);
    expect(writesNotOnDisk([{ boot: 'aaaa', firstSeq: 10, maxSeq: 500 }, { boot: 'bbbb', firstSeq: 503, maxSeq: 800 }], records)).toEqual({ writes: 0, resumedAfter: 500 });
  });

  it('a restart that resumed below what the old run acknowledged loses exactly the overwritten records', () => {
    // The old run acknowledged 500, but the new one found only 480 on the disk and wrote over 481–500.
    const records = disk(['aaaa', 1, 480], ['bbbb', 481, 700]);
    expect(writesNotOnDisk([{ boot: 'aaaa', firstSeq: 10, maxSeq: 500 }, { boot: 'bbbb', firstSeq: 482, maxSeq: 700 }], records)).toEqual({ writes: 20, resumedAfter: 480 });
  });

  it("a new run's first answer, the record it resumed after, is not charged to it", () => {
    // The standby promoted at 500 answers "500 bbbb" before it writes 501: 500 is aaaa's record.
    const records = disk(['aaaa', 1, 500], ['bbbb', 501, 800]);
    expect(writesNotOnDisk([{ boot: 'aaaa', firstSeq: 10, maxSeq: 500 }, { boot: 'bbbb', firstSeq: 500, maxSeq: 800 }], records)).toEqual({ writes: 0, resumedAfter: 500 });
    // Even when none of bbbb's records survived (a third run resumed below them after they were lost).
    const overwritten = disk(['aaaa', 1, 500], ['cccc', 501, 600]);
    const runs = [
      { boot: 'aaaa', firstSeq: 10, maxSeq: 500 },
      { boot: 'bbbb', firstSeq: 500, maxSeq: 503 },
      { boot: 'cccc', firstSeq: 500, maxSeq: 600 },
    ];
    expect(writesNotOnDisk(runs, overwritten)).toEqual({ writes: 3, resumedAfter: 500 });
  });

  it('a run that went silent twice but kept running has lost nothing, however many writes lay between', () => {
    const records = disk(['aaaa', 1, 900]);
    expect(writesNotOnDisk([{ boot: 'aaaa', firstSeq: 10, maxSeq: 900 }], records).writes).toBe(0);
  });

  it('an acknowledged record missing from the disk counts even with no later run', () => {
    const records = disk(['aaaa', 1, 95]);
    expect(writesNotOnDisk([{ boot: 'aaaa', firstSeq: 1, maxSeq: 100 }], records).writes).toBe(5);
  });

  it('a run whose every record was overwritten is charged from the first write it was seen acknowledging', () => {
    const records = disk(['aaaa', 1, 300], ['cccc', 301, 400]);
    const runs = [
      { boot: 'aaaa', firstSeq: 5, maxSeq: 300 },
      { boot: 'bbbb', firstSeq: 310, maxSeq: 330 },
      { boot: 'cccc', firstSeq: 301, maxSeq: 400 },
    ];
    expect(writesNotOnDisk(runs, records)).toEqual({ writes: 21, resumedAfter: 300 });
  });

  it("reads /seq as the newest durable record and the run that wrote it (or the number alone, from an older image)", () => {
    expect(parseSeq('1234 9f8e7d6c')).toEqual({ seq: 1234, boot: '9f8e7d6c' });
    expect(parseSeq('17\n')).toEqual({ seq: 17, boot: null });
    expect(parseSeq('<html>busy</html>')).toBeNull();
    expect(parseSeq(null)).toBeNull();
  });
});
