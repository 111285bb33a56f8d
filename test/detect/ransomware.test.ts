import { describe, expect, it } from 'vitest';
import { RansomwareDetector, type SecuritySample } from '../../src/detect/ransomware.ts';
import { createRandom } from '../../src/ports/random.ts';

const WINDOW_MS = 10_000;

function series(options: { seed: number; samples: number; probeFrom?: number; encryptFrom?: number; encryptKiBps?: number; noiseDenied?: { at: number; destination: string }[] }): SecuritySample[] {
  const random = createRandom(options.seed, 'test-telemetry');
  const out: SecuritySample[] = [];
  for (let index = 1; index <= options.samples; index++) {
    const atMs = index * WINDOW_MS;
    const legit = 1500 * Math.exp(0.25 * (random.next() - 0.5) * 3.4);
    const encrypted = options.encryptFrom !== undefined && index >= options.encryptFrom ? options.encryptKiBps ?? 20_000 : 0;
    const entropy = 0.55 + 0.02 * (random.next() - 0.5) * 3.4;
    const denied: string[] = [];
    if (options.probeFrom !== undefined && index >= options.probeFrom && (index - options.probeFrom) % 24 === 0) denied.push(`vm-${index}`);
    for (const noise of options.noiseDenied ?? []) if (noise.at === index) denied.push(noise.destination);
    out.push({
      vm: 'vm-a',
      atMs,
      windowMs: WINDOW_MS,
      cpuPercent: 20 + random.next() * 5,
      networkInKiBps: 500,
      networkOutKiBps: 300,
      newFlows: Math.floor(random.next() * 3),
      deniedFlows: denied.length,
      deniedDestinations: denied,
      diskWriteKiBps: legit + encrypted,
      writeEntropy: (legit * entropy + encrypted * 0.998) / (legit + encrypted),
      snapshotChangeKiBps: legit * 0.3 + encrypted * 0.97,
    });
  }
  return out;
}

function run(samples: readonly SecuritySample[]) {
  const detector = new RansomwareDetector();
  const alerts = samples.map((sample) => detector.update(sample).alert).filter((alert) => alert !== null);
  return alerts;
}

describe('RansomwareDetector', () => {
  it('stays silent on a VM that only does its usual work', () => {
    expect(run(series({ seed: 1, samples: 3000 }))).toEqual([]);
  });

  it('alerts within two windows of encryption and dates the anomalous writes to their first window', () => {
    const alerts = run(series({ seed: 2, samples: 1200, encryptFrom: 1000 }));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.atMs).toBeLessThanOrEqual(1001 * WINDOW_MS);
    expect(alerts[0]!.anomalousWritesSinceMs).toBe(999 * WINDOW_MS);
  });

  it('catches slow encryption (a few MiB/s under busy legitimate writes) through its cumulative sum', () => {
    const alerts = run(series({ seed: 3, samples: 1200, encryptFrom: 1000, encryptKiBps: 1500 }));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.atMs - 1000 * WINDOW_MS).toBeLessThanOrEqual(120_000);
  });

  it('estimates the intrusion from the first denied probe that chains to the writes, not from a lone mistake hours before', () => {
    const alerts = run(series({ seed: 4, samples: 1700, probeFrom: 700, encryptFrom: 1500, noiseDenied: [{ at: 250, destination: 'stale-address' }] }));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.estimatedIntrusionAtMs).toBe(699 * WINDOW_MS);
    expect(alerts[0]!.evidence[0]!.kind).toBe('denied-new-destination');
  });

  it('learns habitual denied destinations (misconfigurations) during its learning period', () => {
    const habit = Array.from({ length: 20 }, (_, index) => ({ at: 100 + index * 60, destination: 'ntp-legacy' }));
    const alerts = run(series({ seed: 5, samples: 1400, encryptFrom: 1300, noiseDenied: habit }));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.estimatedIntrusionAtMs).toBe(alerts[0]!.anomalousWritesSinceMs);
  });

  it('is deterministic: the same samples give the same alerts', () => {
    const samples = series({ seed: 6, samples: 1500, probeFrom: 600, encryptFrom: 1400 });
    expect(run(samples)).toEqual(run(samples));
  });
});
