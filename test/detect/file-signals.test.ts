import { describe, expect, it } from 'vitest';
import { FileSignals, PoissonCusum, DEFAULT_FILE_SIGNAL_OPTIONS } from '../../src/detect/file-signals.ts';
import { RansomwareDetector, type SecuritySample } from '../../src/detect/ransomware.ts';
import type { VmFileActivity } from '../../src/ports/index.ts';
import { createRandom, type Random } from '../../src/ports/random.ts';

const WINDOW_MS = 10_000;
const WINDOW_S = 10;

function poisson(random: Random, mean: number): number {
  let k = 0;
  let p = Math.exp(-mean);
  let cumulative = p;
  const u = random.next();
  while (u > cumulative && k < 1000) {
    k += 1;
    p *= mean / k;
    cumulative += p;
  }
  return k;
}

const quietFiles = (random: Random): VmFileActivity => ({
  modified: poisson(random, 1),
  created: poisson(random, 0.3),
  renamed: poisson(random, 0.02),
  deleted: poisson(random, 0.2),
  magicChanged: 0,
  overwrittenAfterRead: poisson(random, 0.03),
  firstTimeModified: poisson(random, 0.01),
  firstTimeReplaced: poisson(random, 0.005),
  canariesTouched: 0,
  writtenKiB: 1000,
});

/** A VM whose file activity is `files(index)` and whose writes are steady (entropy 0.55). */
function samples(count: number, files: (index: number, random: Random) => VmFileActivity, seed = 1): SecuritySample[] {
  const random = createRandom(seed, 'file-signals-test');
  return Array.from({ length: count }, (_, offset) => {
    const index = offset + 1;
    return {
      vm: 'vm-a',
      atMs: index * WINDOW_MS,
      windowMs: WINDOW_MS,
      cpuPercent: 20,
      networkInKiBps: 500,
      networkOutKiBps: 300,
      newFlows: 1,
      deniedFlows: 0,
      deniedDestinations: [],
      diskWriteKiBps: 1500 * (0.9 + 0.2 * random.next()),
      writeEntropy: 0.55 + 0.02 * (random.next() - 0.5),
      snapshotChangeKiBps: 450,
      files: files(index, random),
    };
  });
}

function alertsOf(stream: readonly SecuritySample[]) {
  const detector = new RansomwareDetector();
  return stream.map((sample) => detector.update(sample).alert).filter((alert) => alert !== null);
}

describe('PoissonCusum', () => {
  it('drains in quiet windows instead of resetting, and remembers where its excursion began', () => {
    const cusum = new PoissonCusum(DEFAULT_FILE_SIGNAL_OPTIONS);
    for (let index = 0; index < 100; index++) cusum.learn(0, WINDOW_S);
    cusum.observe(3, 1000 * WINDOW_MS, WINDOW_S);
    const afterBurst = cusum.value;
    expect(afterBurst).toBeGreaterThan(0);
    // Five minutes of nothing (an intermittent attacker's pause): lower, not gone.
    for (let index = 1; index <= 30; index++) cusum.observe(0, (1000 + index) * WINDOW_MS, WINDOW_S);
    expect(cusum.value).toBeGreaterThan(0);
    expect(cusum.value).toBeLessThan(afterBurst);
    expect(cusum.startedAtMs).toBe(1000 * WINDOW_MS);
  });
});

describe('file signals in the ransomware detector', () => {
  it('stays silent through a week of ordinary file activity on one VM', () => {
    expect(alertsOf(samples(7 * 8640, (_, random) => quietFiles(random)))).toEqual([]);
  });

  it('stays silent through a nightly batch job that reads and rewrites its own working set (no first-time files)', () => {
    const batch = (index: number, random: Random): VmFileActivity => {
      const files = quietFiles(random);
      const inBatch = index % 8640 > 1000 && index % 8640 < 1300;
      return inBatch ? { ...files, modified: files.modified + 80, overwrittenAfterRead: files.overwrittenAfterRead + 75 } : files;
    };
    expect(alertsOf(samples(3 * 8640, batch))).toEqual([]);
  });

  it('one window with many replaced files (a converted folder) is not enough: the joint accumulator takes a share per window', () => {
    const signals = new FileSignals();
    const random = createRandom(3, 'one-window');
    for (let index = 0; index < 500; index++) signals.learn(quietFiles(random), WINDOW_S);
    const evidence = signals.observe({ ...quietFiles(random), firstTimeReplaced: 500 }, 0, WINDOW_S);
    expect(evidence.joint).toBeLessThan(DEFAULT_FILE_SIGNAL_OPTIONS.threshold);
    expect(evidence.joint).toBeGreaterThan(0);
  });

  it('catches a slow encryption with entropy matched to the VM (one file every 30 s) within minutes, and dates it no later than its first file', () => {
    const startIndex = 2000;
    const slow = (index: number, random: Random): VmFileActivity => {
      const files = quietFiles(random);
      const attacked = index >= startIndex && (index - startIndex) % 3 === 0;
      return attacked ? { ...files, modified: files.modified + 1, overwrittenAfterRead: files.overwrittenAfterRead + 1, firstTimeModified: files.firstTimeModified + 1, firstTimeReplaced: files.firstTimeReplaced + 1 } : files;
    };
    const alerts = alertsOf(samples(2600, slow));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.rule).toBe('files');
    expect(alerts[0]!.atMs - startIndex * WINDOW_MS).toBeLessThanOrEqual(5 * 60_000);
    expect(alerts[0]!.anomalousWritesSinceMs).toBeLessThanOrEqual((startIndex - 1) * WINDOW_MS);
  });

  it('alerts on the first decoy file touched', () => {
    const alerts = alertsOf(samples(800, (index, random) => ({ ...quietFiles(random), canariesTouched: index === 700 ? 1 : 0 })));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.rule).toBe('canary');
    expect(alerts[0]!.atMs).toBe(700 * WINDOW_MS);
  });

  it('does not let a compressed backup dump (high-entropy writes, no files replaced) raise the entropy alert when files are reported', () => {
    const detector = new RansomwareDetector();
    const stream = samples(1500, (_, random) => quietFiles(random));
    const alerts = stream
      .map((sample, index) => (index >= 1200 && index < 1400 ? { ...sample, diskWriteKiBps: sample.diskWriteKiBps * 6, writeEntropy: 0.96, snapshotChangeKiBps: 8000 } : sample))
      .map((sample) => detector.update(sample).alert)
      .filter((alert) => alert !== null);
    expect(alerts).toEqual([]);
  });
});
