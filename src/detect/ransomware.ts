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
import { DEFAULT_FILE_SIGNAL_OPTIONS, Excursion, FILE_METRICS, FileSignals, ONSET_HORIZON_WINDOWS, type FileMetric, type FileSignalOptions } from './file-signals.ts';

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
  /** File-level signals (used when the substrate reports file activity). */
  readonly files: FileSignalOptions;
  /** The entropy-and-rate alert needs file evidence at least this share of the file threshold (when files are reported). */
  readonly corroborationShare: number;
  /** A VM is suspect (its baselines frozen) while any file accumulator reaches this share of the threshold. */
  readonly suspectShare: number;
  /** The slow-encryption accumulator drains by this much per window (it does not reset when the writes pause). */
  readonly cumulativeDrain: number;
  /** Baselines frozen longer than this resume learning (a lasting legitimate change, not an attack). */
  readonly frozenMaxMs: number;
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
  files: DEFAULT_FILE_SIGNAL_OPTIONS,
  corroborationShare: 1 / 2,
  suspectShare: 0.5,
  cumulativeDrain: 0.2,
  frozenMaxMs: 6 * 3600_000,
});

export type SecurityMetric = 'cpu' | 'networkIn' | 'networkOut' | 'newFlows' | 'deniedFlows' | 'diskWrite' | 'writeEntropy' | 'snapshotChange' | `files.${FileMetric}` | 'canaries';

/** Which rule raised an alert: decoy files touched, file-level evidence (content replaced across files outside the working set), or entropy with write rate. */
export type AlertRule = 'canary' | 'files' | 'entropy';

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
  readonly kind: 'denied-new-destination' | 'new-flows-change-point' | 'anomalous-writes' | 'file-activity';
  readonly detail: string;
}

export interface RansomwareAlert {
  readonly vm: string;
  readonly atMs: number;
  /** In [0, 1]: how far beyond its baselines the writes are. */
  readonly score: number;
  readonly z: { readonly writeEntropy: number; readonly diskWrite: number; readonly snapshotChange: number };
  readonly rule: AlertRule;
  /** File-level evidence at the alert (log-likelihood ratios; null: the substrate reports no file activity). */
  readonly files: { readonly joint: number; readonly canariesTouched: number } | null;
  /**
   * Where the anomalous writes began: the start of the rise of the files-replaced accumulator when
   * the substrate reports files, else the earliest start of the anomalous writes and the
   * slow-encryption accumulator. The restore takes the newest snapshot before it.
   */
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
  readonly cumulative: Excursion;
  readonly files: FileSignals;
  /** Since when the VM has been suspect (baselines frozen), or null. */
  suspectSinceMs: number | null;
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
        cumulative: new Excursion(2 * this.options.cumulativeAlert, ONSET_HORIZON_WINDOWS),
        files: new FileSignals(this.options.files),
        suspectSinceMs: null,
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
    state.cumulative.reset();
    state.quietSamples = 0;
    state.evidence.length = 0;
    state.files.reset();
    state.suspectSinceMs = null;
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
    const windowS = sample.windowMs / 1000;
    // File accumulators start once the baselines have learned (before, every count would surprise them).
    const files = sample.files === undefined ? null : warm ? state.files.observe(sample.files, windowStartMs, windowS) : state.files.evidence();

    // The slow-encryption accumulator drains while the writes pause; it does not reset.
    state.cumulative.add(Math.max(0, writeEvidence - options.elevatedZ) * (warm ? 1 : 0) - options.cumulativeDrain, windowStartMs);

    // Baselines learn only while the VM is not suspect; frozen for long, they resume (a lasting legitimate change).
    const suspect = elevated || writeEvidence >= options.elevatedZ || state.cumulative.value > 0 || state.files.suspect(options.suspectShare) || (files?.canariesTouched ?? 0) > 0;
    if (!suspect) state.suspectSinceMs = null;
    else state.suspectSinceMs ??= sample.atMs;
    if (!suspect || sample.atMs - state.suspectSinceMs! > options.frozenMaxMs) this.learn(state, values, sample, windowS);
    if (!warm) return { alert: null, anomalies: [] };

    const anomalies = this.anomaliesOf(state, sample, z, change !== null);
    if (elevated) {
      if (state.elevatedSinceMs === null) state.elevatedSinceMs = windowStartMs;
      state.quietSamples = 0;
    } else if (state.elevatedSinceMs !== null && ++state.quietSamples > options.elevatedGapSamples) {
      state.elevatedSinceMs = null;
      state.quietSamples = 0;
    }
    state.confirmRun = writeEvidence >= options.alertZ ? state.confirmRun + 1 : 0;
    const rule = this.ruleOf(state, files);
    if (state.alerted || rule === null) return { alert: null, anomalies };

    state.alerted = true;
    // Files replaced date the attack when the substrate reports files (a backup dump running as it
    // began must not date it); otherwise the anomalous writes and the slow-encryption accumulator do.
    const fileStart = files === null ? null : state.files.jointStartedAtMs();
    const starts = files !== null && fileStart !== null ? [fileStart] : [state.elevatedSinceMs, state.cumulative.startedAtMs];
    const since = Math.min(windowStartMs, ...starts.filter((value): value is number => value !== null));
    const chain = this.chainBack(state, since);
    const detail = rule === 'canary' ? `${files!.canariesTouched} decoy file(s) modified, renamed or deleted` : rule === 'files' ? 'files read and overwritten, or retyped, across files outside the working set' : 'high-entropy writes above the write and change-rate baselines';
    return {
      alert: {
        vm: sample.vm,
        atMs: sample.atMs,
        score: rule === 'entropy' ? scoreOf(writeEvidence) : scoreOf(Math.max(8, files?.joint ?? 0)),
        z: { writeEntropy: z.entropy, diskWrite: z.diskWrite, snapshotChange: z.change },
        rule,
        files: files === null ? null : { joint: files.joint, canariesTouched: files.canariesTouched },
        anomalousWritesSinceMs: since,
        estimatedIntrusionAtMs: chain.length > 0 ? chain[0]!.atMs : since,
        evidence: [...chain, { atMs: since, kind: rule === 'entropy' ? 'anomalous-writes' : 'file-activity', detail }],
      },
      anomalies,
    };
  }

  /**
   * The rule an alert rests on, or null. Decoys touched: at once. File evidence: content replaced
   * (overwritten after a read, or retyped) *and* reach beyond the working set (first-modified or
   * deleted files), each past the file threshold. Entropy with write or change rate, for two
   * windows or accumulated: alone only when the substrate reports no files; else with file
   * evidence at a share of the threshold (a compressed backup dump is not an attack).
   */
  private ruleOf(state: VmState, files: ReturnType<FileSignals['observe']> | null): AlertRule | null {
    const options = this.options;
    if (files !== null && files.canariesTouched > 0) return 'canary';
    const threshold = options.files.threshold;
    if (files !== null && files.joint >= threshold) return 'files';
    // The writes must be anomalous now (or within the gap): an accumulator built by an earlier burst does not alert alone.
    const writes = (state.confirmRun >= options.confirmSamples || state.cumulative.value >= options.cumulativeAlert) && state.elevatedSinceMs !== null;
    if (!writes) return null;
    const corroborated = files === null || files.joint >= options.corroborationShare * threshold;
    return corroborated ? 'entropy' : null;
  }

  private learn(state: VmState, values: Record<'cpu' | 'networkIn' | 'networkOut' | 'diskWrite' | 'entropy' | 'change', number>, sample: SecuritySample, windowS: number): void {
    state.cpu.learn(values.cpu);
    state.networkIn.learn(values.networkIn);
    state.networkOut.learn(values.networkOut);
    state.diskWrite.learn(values.diskWrite);
    state.entropy.learn(values.entropy);
    state.change.learn(values.change);
    if (sample.files !== undefined) state.files.learn(sample.files, windowS);
  }

  /** Every metric out of its range in this window, below the alert threshold or not. */
  private anomaliesOf(state: VmState, sample: SecuritySample, z: Record<'cpu' | 'networkIn' | 'networkOut' | 'diskWrite' | 'entropy' | 'change', number>, flowChange: boolean): MetricAnomaly[] {
    const options = this.options;
    const anomalies: MetricAnomaly[] = [];
    const report = (metric: SecurityMetric, value: number) => {
      if (value >= options.metricAnomalyZ) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric, z: value, score: scoreOf(value) });
    };
    report('cpu', z.cpu);
    report('networkIn', z.networkIn);
    report('networkOut', z.networkOut);
    report('diskWrite', z.diskWrite);
    report('writeEntropy', Math.abs(z.entropy));
    report('snapshotChange', z.change);
    if (sample.deniedFlows > 0) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric: 'deniedFlows', z: sample.deniedFlows, score: scoreOf(4 * sample.deniedFlows) });
    if (flowChange) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric: 'newFlows', z: options.cusumThreshold, score: scoreOf(options.cusumThreshold) });
    // File accumulators past half the threshold, as log-likelihood ratios.
    for (const metric of FILE_METRICS) {
      const value = state.files.metrics.get(metric)!.value;
      if (value >= options.suspectShare * options.files.threshold) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric: `files.${metric}`, z: value, score: Math.min(1, value / (2 * options.files.threshold)) });
    }
    if ((sample.files?.canariesTouched ?? 0) > 0) anomalies.push({ vm: sample.vm, atMs: sample.atMs, metric: 'canaries', z: sample.files!.canariesTouched, score: 1 });
    return anomalies;
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
