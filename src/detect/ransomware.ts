// The ransomware detector: streaming detectors over each VM's security telemetry (CPU, network,
// new and denied connections, disk write rate, write entropy, snapshot change rate), combined.
//
// What it looks for, and why:
// - Encryption is a write pattern: the bytes written become random (entropy near 8 bits per byte)
//   and touch blocks that had not changed since the last snapshot (the change rate follows the
//   write rate instead of staying a fraction of it). Either alone has innocent causes (compressed
//   images, a batch job), so the alert needs entropy *and* a rise in write or change rate, each
//   measured against the VM's own learned baseline, for two windows in a row.
// - The alert says when it noticed; the estimate of when the intrusion began comes from the past:
//   the start of the anomalous writes, then, walking back, the intrusion evidence that chains to
//   it without a long gap: a connection attempt the segmentation denied to a destination this VM
//   never tried before (lateral probing), and a change point in its new connections (the
//   attacker's session). A lone misconfiguration hours earlier does not chain, so it does not
//   drag the estimate back.
// The detector is never told when the attack began; it sees only the samples. It is pure (no
// clock, no randomness): the Clock's time arrives inside the samples.
import type { VmSecuritySample } from '../ports/index.ts';
import { CountChangePoint, MetricBaseline } from './change-point.ts';

/** The telemetry the detector reads: the Substrate port's sample, less what only the report uses. */
export type SecuritySample = Omit<VmSecuritySample, 'snapshotDeletionsRefused'>;

export interface RansomwareDetectorOptions {
  /** Samples per VM before any score: the baselines need them. */
  readonly warmupSamples: number;
  /** Samples per VM during which denied destinations are learned as habits (misconfigurations), not evidence. */
  readonly deniedLearningSamples: number;
  readonly baselineAlpha: number;
  /** Entropy z and write-or-change z both at least this, for `confirmSamples` windows: an alert. */
  readonly alertZ: number;
  readonly confirmSamples: number;
  /** Slow encryption: the excess of write evidence over elevatedZ, summed over windows (CUSUM), alerts at this. */
  readonly cumulativeAlert: number;
  /** Both at least this: the writes count as anomalous (where the anomalous writes began). */
  readonly elevatedZ: number;
  /** Non-elevated windows that end a run of anomalous writes. */
  readonly elevatedGapSamples: number;
  /** Intrusion evidence further back than this before the previous piece does not chain. */
  readonly chainGapMs: number;
  /** No evidence older than this before the anomalous writes is considered. */
  readonly lookbackMs: number;
  /** A metric whose z reaches this is reported as an anomaly of that metric. */
  readonly metricAnomalyZ: number;
  readonly cusumDrift: number;
  readonly cusumThreshold: number;
  /** Destinations remembered per VM as already denied before (bounded). */
  readonly knownDeniedMax: number;
  /** Intrusion evidence remembered per VM (bounded). */
  readonly evidenceMax: number;
}

export const DEFAULT_RANSOMWARE_OPTIONS: Readonly<RansomwareDetectorOptions> = Object.freeze({
  warmupSamples: 60,
  deniedLearningSamples: 180,
  baselineAlpha: 0.005,
  alertZ: 6,
  confirmSamples: 2,
  cumulativeAlert: 12,
  elevatedZ: 3,
  elevatedGapSamples: 2,
  chainGapMs: 60 * 60_000,
  lookbackMs: 24 * 3600_000,
  metricAnomalyZ: 5,
  cusumDrift: 1,
  cusumThreshold: 10,
  knownDeniedMax: 256,
  evidenceMax: 128,
});

export type SecurityMetric = 'cpu' | 'networkIn' | 'networkOut' | 'newFlows' | 'deniedFlows' | 'diskWrite' | 'writeEntropy' | 'snapshotChange';

/** One metric of one VM out of its learned range, with a score in [0, 1]. */
export interface MetricAnomaly {
  readonly vm: string;
  readonly atMs: number;
  readonly metric: SecurityMetric;
  readonly z: number;
  readonly score: number;
}

export interface IntrusionEvidence {
  readonly atMs: number;
  readonly kind: 'denied-new-destination' | 'new-flows-change-point' | 'anomalous-writes';
  readonly detail: string;
}

export interface RansomwareAlert {
  readonly vm: string;
  readonly atMs: number;
  /** In [0, 1]: how far beyond its baselines the writes are. */
  readonly score: number;
  readonly z: { readonly writeEntropy: number; readonly diskWrite: number; readonly snapshotChange: number };
  /** Where the anomalous writes began (start of the first anomalous window). */
  readonly anomalousWritesSinceMs: number;
  /** The earliest intrusion evidence that chains to the anomalous writes. */
  readonly estimatedIntrusionAtMs: number;
  /** The chain, earliest first (bounded). */
  readonly evidence: readonly IntrusionEvidence[];
}

export interface DetectorUpdate {
  readonly alert: RansomwareAlert | null;
  readonly anomalies: readonly MetricAnomaly[];
}

interface VmState {
  samples: number;
  readonly cpu: MetricBaseline;
  readonly networkIn: MetricBaseline;
  readonly networkOut: MetricBaseline;
  readonly diskWrite: MetricBaseline;
  readonly entropy: MetricBaseline;
  readonly change: MetricBaseline;
  readonly flows: CountChangePoint;
  readonly knownDenied: Set<string>;
  readonly evidence: IntrusionEvidence[];
  elevatedSinceMs: number | null;
  quietSamples: number;
  confirmRun: number;
  cumulative: number;
  /** After an alert, the VM stays silent until `reset` (its incident is being handled). */
  alerted: boolean;
}

const log = (value: number) => Math.log1p(Math.max(0, value));
const scoreOf = (z: number) => (z <= 0 ? 0 : 1 - Math.exp(-z / 8));

export class RansomwareDetector {
  readonly options: Readonly<RansomwareDetectorOptions>;
  private readonly vms = new Map<string, VmState>();

  constructor(options: Partial<RansomwareDetectorOptions> = {}) {
    this.options = Object.freeze({ ...DEFAULT_RANSOMWARE_OPTIONS, ...options });
  }

  private stateOf(vm: string): VmState {
    let state = this.vms.get(vm);
    if (state === undefined) {
      const alpha = this.options.baselineAlpha;
      state = {
        samples: 0,
        cpu: new MetricBaseline(alpha, 2),
        networkIn: new MetricBaseline(alpha, 0.05),
        networkOut: new MetricBaseline(alpha, 0.05),
        diskWrite: new MetricBaseline(alpha, 0.05),
        entropy: new MetricBaseline(alpha, 0.01),
        change: new MetricBaseline(alpha, 0.05),
        flows: new CountChangePoint({ drift: this.options.cusumDrift, threshold: this.options.cusumThreshold, alpha, warmupPoints: this.options.warmupSamples }),
        knownDenied: new Set(),
        evidence: [],
        elevatedSinceMs: null,
        quietSamples: 0,
        confirmRun: 0,
        cumulative: 0,
        alerted: false,
      };
      this.vms.set(vm, state);
    }
    return state;
  }

  /** The VM's incident is closed (it was restored): it may alert again, from a fresh run. */
  reset(vm: string): void {
    const state = this.vms.get(vm);
    if (state === undefined) return;
    state.alerted = false;
    state.elevatedSinceMs = null;
    state.confirmRun = 0;
    state.cumulative = 0;
    state.quietSamples = 0;
    state.evidence.length = 0;
  }

  update(sample: SecuritySample): DetectorUpdate {
    const options = this.options;
    const state = this.stateOf(sample.vm);
    state.samples += 1;
    const windowStartMs = sample.atMs - sample.windowMs;
    const warm = state.samples > options.warmupSamples;

    // Intrusion evidence, recorded whatever the writes do.
    if (sample.deniedFlows > 0) {
      for (const destination of sample.deniedDestinations) {
        if (state.knownDenied.has(destination)) continue;
        if (state.knownDenied.size < options.knownDeniedMax) state.knownDenied.add(destination);
        // During the learning period a denied destination is a habit (a misconfiguration), not evidence.
        if (state.samples > options.deniedLearningSamples) this.remember(state, { atMs: windowStartMs, kind: 'denied-new-destination', detail: `denied connection to ${destination}` });
      }
    }
    const change = state.flows.update(sample.newFlows, windowStartMs, sample.atMs);
    if (change !== null) {
      this.remember(state, { atMs: change.startedAtMs, kind: 'new-flows-change-point', detail: `new connections rose above their baseline (confirmed at ${Math.round(change.confirmedAtMs / 1000)} s)` });
    }

    const values = {
      cpu: sample.cpuPercent,
      networkIn: log(sample.networkInKiBps),
      networkOut: log(sample.networkOutKiBps),
      diskWrite: log(sample.diskWriteKiBps),
      entropy: sample.writeEntropy,
      change: log(sample.snapshotChangeKiBps),
    };
    const z = {
      cpu: state.cpu.zScore(values.cpu),
      networkIn: state.networkIn.zScore(values.networkIn),
      networkOut: state.networkOut.zScore(values.networkOut),
      diskWrite: state.diskWrite.zScore(values.diskWrite),
      entropy: state.entropy.zScore(values.entropy),
      change: state.change.zScore(values.change),
    };
    const writeEvidence = Math.min(z.entropy, Math.max(z.diskWrite, z.change));
    const elevated = warm && writeEvidence >= options.elevatedZ;

    // Baselines learn only from windows that do not look like the attack.
    if (!elevated && writeEvidence < options.elevatedZ) {
      state.cpu.learn(values.cpu);
      state.networkIn.learn(values.networkIn);
      state.networkOut.learn(values.networkOut);
      state.diskWrite.learn(values.diskWrite);
      state.entropy.learn(values.entropy);
      state.change.learn(values.change);
    }
    if (!warm) return { alert: null, anomalies: [] };

    const anomalies: MetricAnomaly[] = [];
    const report = (metric: SecurityMetric, value: number) => {
      if (value >= options.metricAnomalyZ) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric, z: value, score: scoreOf(value) });
    };
    report('cpu', z.cpu);
    report('networkIn', z.networkIn);
    report('networkOut', z.networkOut);
    report('diskWrite', z.diskWrite);
    report('writeEntropy', z.entropy);
    report('snapshotChange', z.change);
    if (sample.deniedFlows > 0) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric: 'deniedFlows', z: sample.deniedFlows, score: scoreOf(4 * sample.deniedFlows) });
    if (change !== null) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric: 'newFlows', z: options.cusumThreshold, score: scoreOf(options.cusumThreshold) });

    if (elevated) {
      if (state.elevatedSinceMs === null) state.elevatedSinceMs = windowStartMs;
      state.quietSamples = 0;
    } else if (state.elevatedSinceMs !== null && ++state.quietSamples > options.elevatedGapSamples) {
      state.elevatedSinceMs = null;
      state.quietSamples = 0;
    }
    state.confirmRun = warm && writeEvidence >= options.alertZ ? state.confirmRun + 1 : 0;
    state.cumulative = Math.max(0, state.cumulative + writeEvidence - options.elevatedZ);
    const fast = state.confirmRun >= options.confirmSamples;
    const slow = state.cumulative >= options.cumulativeAlert;
    if (state.alerted || !(fast || slow) || state.elevatedSinceMs === null) return { alert: null, anomalies };

    state.alerted = true;
    const since = state.elevatedSinceMs;
    const chain = this.chainBack(state, since);
    return {
      alert: {
        vm: sample.vm,
        atMs: sample.atMs,
        score: scoreOf(writeEvidence),
        z: { writeEntropy: z.entropy, diskWrite: z.diskWrite, snapshotChange: z.change },
        anomalousWritesSinceMs: since,
        estimatedIntrusionAtMs: chain.length > 0 ? chain[0]!.atMs : since,
        evidence: [...chain, { atMs: since, kind: 'anomalous-writes', detail: 'high-entropy writes above the write and change-rate baselines' }],
      },
      anomalies,
    };
  }

  private remember(state: VmState, evidence: IntrusionEvidence): void {
    state.evidence.push(evidence);
    if (state.evidence.length > this.options.evidenceMax) state.evidence.shift();
  }

  /** The evidence that chains back from `sinceMs` with no gap longer than chainGapMs, earliest first. */
  private chainBack(state: VmState, sinceMs: number): IntrusionEvidence[] {
    const candidates = state.evidence
      .filter((evidence) => evidence.atMs <= sinceMs && sinceMs - evidence.atMs <= this.options.lookbackMs)
      .sort((a, b) => b.atMs - a.atMs);
    const chain: IntrusionEvidence[] = [];
    let earliestMs = sinceMs;
    for (const evidence of candidates) {
      if (earliestMs - evidence.atMs > this.options.chainGapMs) break;
      chain.push(evidence);
      earliestMs = evidence.atMs;
    }
    return chain.reverse();
  }
}
