// Streaming building blocks for the security detectors: a baseline that learns a metric's level
// and spread (and can say how far a new value is from it), and a one-sided CUSUM change-point
// detector that remembers where the change *began*, not only when it became certain. Pure: no
// clock, no randomness; the same samples give the same answers.

/** Exponentially weighted mean and variance of a metric, with a floor on the spread. */
export class MetricBaseline {
  private mean = 0;
  private variance = 0;
  private count = 0;

  constructor(
    /** Weight of a new point once warmed up (≈ 1 / memory in points). */
    private readonly alpha: number,
    /** The smallest standard deviation assumed, so a constant metric does not make every change infinite. */
    private readonly spreadFloor: number,
  ) {
    if (!(alpha > 0 && alpha < 1)) throw new Error('MetricBaseline: alpha must be in (0, 1)');
    if (!(spreadFloor > 0)) throw new Error('MetricBaseline: spreadFloor must be positive');
  }

  get points(): number {
    return this.count;
  }

  get level(): number {
    return this.mean;
  }

  /** How many standard deviations `value` lies above the learned level (negative: below). */
  zScore(value: number): number {
    if (this.count === 0) return 0;
    return (value - this.mean) / Math.max(Math.sqrt(this.variance), this.spreadFloor);
  }

  learn(value: number): void {
    if (!Number.isFinite(value)) return;
    this.count += 1;
    // A running average for the first points, exponential afterwards: early points are not
    // over-weighted and the level follows slow drift later.
    const weight = Math.max(this.alpha, 1 / this.count);
    const delta = value - this.mean;
    this.mean += weight * delta;
    this.variance = (1 - weight) * (this.variance + weight * delta * delta);
  }
}

export interface ChangePoint {
  /** Where the excursion that crossed the threshold began. */
  readonly startedAtMs: number;
  /** When it crossed the threshold. */
  readonly confirmedAtMs: number;
}

/**
 * One-sided CUSUM on counts (new connections per window): S = max(0, S + z − drift), where z is
 * the count standardised under a Poisson baseline learned while S is zero. When S leaves zero the
 * start of the window is remembered; when S reaches `threshold` the change is confirmed and
 * reported with that start. The baseline does not learn during an excursion, so a slow attacker
 * cannot teach it his own rate.
 */
export class CountChangePoint {
  private readonly baseline: MetricBaseline;
  private sum = 0;
  private startedAtMs: number | null = null;
  private confirmed = false;

  constructor(
    private readonly options: { readonly drift: number; readonly threshold: number; readonly alpha: number; readonly warmupPoints: number },
  ) {
    this.baseline = new MetricBaseline(options.alpha, 1);
  }

  /** Feeds one window's count; returns a change point the first time an excursion is confirmed. */
  update(count: number, windowStartMs: number, windowEndMs: number): ChangePoint | null {
    if (this.baseline.points < this.options.warmupPoints) {
      this.baseline.learn(count);
      return null;
    }
    const rate = this.baseline.level;
    const z = (count - rate) / Math.sqrt(rate + 0.25);
    const next = Math.max(0, this.sum + z - this.options.drift);
    if (this.sum === 0 && next > 0) this.startedAtMs = windowStartMs;
    this.sum = next;
    if (this.sum === 0) {
      this.startedAtMs = null;
      this.confirmed = false;
      this.baseline.learn(count);
      return null;
    }
    if (!this.confirmed && this.sum >= this.options.threshold && this.startedAtMs !== null) {
      this.confirmed = true;
      return { startedAtMs: this.startedAtMs, confirmedAtMs: windowEndMs };
    }
    return null;
  }
}
