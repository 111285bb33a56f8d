// File-level signals for the ransomware detector: per-VM count baselines of what changes among
// its files (modified, renamed, deleted, type/magic changed, overwritten after being read, first
// modified outside the working set, decoys touched), each watched by a one-sided Poisson CUSUM —
// a long-horizon accumulator that does not reset when the attacker pauses (it only drains at the
// rate the alternative expects) — and that remembers when its current excursion began.
//
// The CUSUM is the sequential likelihood-ratio test of "this VM's rate of such files is λ0 (its
// own baseline)" against "it rose by at least a factor `rateRatio` and by `minExcessPerMin` files a
// minute": nothing in it knows an attack's pace, share of each file or entropy; the threshold
// is a log-likelihood ratio (its false-alarm rate under the baseline is about e^-threshold per
// excursion). Pure: no clock, no randomness.
import type { VmFileActivity } from '../ports/index.ts';

export type FileMetric = 'modified' | 'renamed' | 'deleted' | 'magicChanged' | 'overwrittenAfterRead' | 'firstTimeModified' | 'firstTimeReplaced';

/** Windows an accumulator remembers to date the start of its rise (an hour of 10 s windows). */
export const ONSET_HORIZON_WINDOWS = 360;

export const FILE_METRICS: readonly FileMetric[] = ['modified', 'renamed', 'deleted', 'magicChanged', 'overwrittenAfterRead', 'firstTimeModified', 'firstTimeReplaced'];

export interface FileSignalOptions {
  /** The alternative rate: at least `rateRatio` × the baseline and the baseline + `minExcessPerMin`. */
  readonly rateRatio: number;
  readonly minExcessPerMin: number;
  /** The smallest baseline rate assumed (files per minute): a metric never seen is not infinitely surprising. */
  readonly floorPerMin: number;
  /** Log-likelihood ratio at which a metric's excursion counts as established. */
  readonly threshold: number;
  /** The accumulator is capped at `cap` × threshold, so a legitimate burst is forgotten within the hour. */
  readonly cap: number;
  /** Weight of a new window in the baseline once warmed up. */
  readonly alpha: number;
  /**
   * The joint accumulator takes at most this share of the threshold from one window, so a
   * one-window coincidence (log rotation during a batch job) cannot establish it alone.
   */
  readonly jointWindowShare: number;
}

export const DEFAULT_FILE_SIGNAL_OPTIONS: Readonly<FileSignalOptions> = Object.freeze({
  rateRatio: 3,
  minExcessPerMin: 0.5,
  floorPerMin: 0.02,
  // A CUSUM's false alarms under its baseline come about e^-threshold per window: at 8,640 windows of
  // 10 s a day, 16 gives about 1e-3 per VM-day for one accumulator (the target is 1e-2 for all).
  threshold: 16,
  cap: 2,
  alpha: 0.002,
  jointWindowShare: 1 / 3,
});

/**
 * A capped one-sided accumulator, and where its rise began. The usual change-point estimate of a
 * CUSUM is where it last left zero; but legitimate noise before an attack keeps it a little above
 * zero for a while, and dating the attack from there restores from hours too early. With a
 * horizon, the estimate is the latest window within the horizon that began no more than
 * `tolerance` above the accumulator's lowest point there (zero included) — unless that is the
 * oldest remembered, when the rise may be older than the horizon and the last zero is kept.
 */
export class Excursion {
  private sum = 0;
  private zeroAfterMs: number | null = null;
  private readonly before: number[] = [];
  private readonly at: number[] = [];
  private next = 0;

  constructor(
    private readonly cap: number,
    /** Windows remembered for the estimate (0: the last zero only). */
    private readonly horizon = 0,
    /** How far above its lowest point the accumulator may be where the rise is dated. */
    private readonly tolerance = 0.5,
  ) {}

  get value(): number {
    return this.sum;
  }

  /** Where the current rise began (null: at zero). */
  get startedAtMs(): number | null {
    if (this.sum === 0) return null;
    const size = this.before.length;
    if (size === 0) return this.zeroAfterMs;
    let lowest = Number.POSITIVE_INFINITY;
    for (const value of this.before) lowest = Math.min(lowest, value);
    // The latest window that began within `tolerance` of the lowest point: a drained tail of
    // legitimate noise does not date the attack, a dip between an attacker's files does.
    let best = -1;
    for (let age = 0; age < size; age++) {
      const index = (this.next - 1 - age + 2 * size) % size;
      if (this.before[index]! <= lowest + this.tolerance) {
        best = index;
        break;
      }
    }
    const oldest = size < this.horizon ? -1 : this.next % size;
    return best === -1 || best === oldest ? this.zeroAfterMs : this.at[best]!;
  }

  add(increment: number, windowStartMs: number): void {
    const before = this.sum;
    if (before === 0) {
      this.zeroAfterMs = windowStartMs;
      this.before.length = 0;
      this.at.length = 0;
      this.next = 0;
    }
    if (this.horizon > 0) {
      if (this.before.length < this.horizon) {
        this.before.push(before);
        this.at.push(windowStartMs);
        this.next = this.before.length % this.horizon;
      } else {
        this.before[this.next] = before;
        this.at[this.next] = windowStartMs;
        this.next = (this.next + 1) % this.horizon;
      }
    }
    this.sum = Math.min(this.cap, Math.max(0, before + increment));
  }

  reset(): void {
    this.sum = 0;
    this.zeroAfterMs = null;
    this.before.length = 0;
    this.at.length = 0;
    this.next = 0;
  }
}

/** One count metric's baseline and CUSUM. */
export class PoissonCusum {
  private ratePerS = 0;
  private windows = 0;
  private readonly excursion: Excursion;

  constructor(private readonly options: FileSignalOptions) {
    this.excursion = new Excursion(options.cap * options.threshold);
  }

  get value(): number {
    return this.excursion.value;
  }

  /** Where the current excursion began (null: none). */
  get startedAtMs(): number | null {
    return this.excursion.startedAtMs;
  }

  get baselinePerMin(): number {
    return Math.max(this.ratePerS * 60, this.options.floorPerMin);
  }

  /** Adds one window's count; returns the log-likelihood ratio it contributed. */
  observe(count: number, windowStartMs: number, windowS: number): number {
    const { rateRatio, minExcessPerMin, threshold, cap } = this.options;
    const lambda0 = (this.baselinePerMin / 60) * windowS;
    const lambda1 = Math.max(lambda0 * rateRatio, lambda0 + (minExcessPerMin / 60) * windowS);
    const llr = count * Math.log(lambda1 / lambda0) - (lambda1 - lambda0);
    this.excursion.add(llr, windowStartMs);
    return llr;
  }

  learn(count: number, windowS: number): void {
    this.windows += 1;
    const weight = Math.max(this.options.alpha, 1 / this.windows);
    this.ratePerS += weight * (count / windowS - this.ratePerS);
  }

  reset(): void {
    this.excursion.reset();
  }
}

/** Which file evidence stands, and since when. */
export interface FileEvidence {
  /**
   * Files outside the working set whose content was replaced (firstTimeReplaced), accumulated as a
   * log-likelihood ratio with at most `jointWindowShare` of the threshold from any one window:
   * what ransomware and wipers do to files, file after file.
   */
  readonly joint: number;
  readonly canariesTouched: number;
}

/** A VM's file metrics: their CUSUMs and baselines. */
export class FileSignals {
  readonly metrics: ReadonlyMap<FileMetric, PoissonCusum>;
  /** Files first modified whose content was replaced, per file: the joint evidence. */
  private readonly replaced: PoissonCusum;
  private readonly joint: Excursion;

  constructor(readonly options: FileSignalOptions = DEFAULT_FILE_SIGNAL_OPTIONS) {
    this.metrics = new Map(FILE_METRICS.map((metric) => [metric, new PoissonCusum(options)]));
    this.replaced = new PoissonCusum(options);
    this.joint = new Excursion(options.cap * options.threshold, ONSET_HORIZON_WINDOWS);
  }

  observe(files: VmFileActivity, windowStartMs: number, windowS: number): FileEvidence {
    for (const metric of FILE_METRICS) this.metrics.get(metric)!.observe(files[metric], windowStartMs, windowS);
    const llr = this.replaced.observe(files.firstTimeReplaced, windowStartMs, windowS);
    const { threshold, jointWindowShare } = this.options;
    this.joint.add(Math.min(llr, jointWindowShare * threshold), windowStartMs);
    return this.evidence(files.canariesTouched);
  }

  evidence(canariesTouched = 0): FileEvidence {
    return { joint: this.joint.value, canariesTouched };
  }

  /** Where the joint accumulator's rise began (null: at zero). */
  jointStartedAtMs(): number | null {
    return this.joint.startedAtMs;
  }

  /** Any metric at least `share` of the way to the threshold: the VM is suspect. */
  suspect(share: number): boolean {
    for (const cusum of this.metrics.values()) if (cusum.value >= share * this.options.threshold) return true;
    return false;
  }

  learn(files: VmFileActivity, windowS: number): void {
    for (const metric of FILE_METRICS) this.metrics.get(metric)!.learn(files[metric], windowS);
    this.replaced.learn(files.firstTimeReplaced, windowS);
  }

  reset(): void {
    for (const cusum of this.metrics.values()) cusum.reset();
    this.replaced.reset();
    this.joint.reset();
  }
}
