// The general streaming anomaly detector: one metric, one point at a time, only the past.
//
// Design, and why (evaluated with NAB scoring, see scripts/eval-nab.ts):
// 1. Range novelty. NAB-style anomalies on infrastructure metrics are very often values outside
//    everything seen so far (a CPU pegged at 100 %, a disk that stops writing). The excess over
//    the running [min, max], relative to its span, is the strongest single signal we found.
// 2. Smoothed range novelty. The same test on an exponentially smoothed copy of the series catches
//    sustained level shifts that stay inside the raw range because earlier spikes widened it.
//    Both range tests also weigh how long that side of the range has been quiet: a record broken
//    after thousands of points without one is far more telling than one set while the range is
//    still growing (early in a stream, or during a ramp). The level grows with the log of the
//    points since the side was last extended, the surprise of a record under a stable process,
//    in proportion to the excess up to 1 % of the span (a record broken by a hair means little).
//    Records set while the stream is young (fewer than rangeYouthReferencePoints points) count
//    for less, by rangeYouthGain per unit of log: early on, records come whatever happens.
// 3. Prediction surprise. Several cheap predictors (slow level, last value, time-of-week and
//    time-of-day profiles when timestamps are given) each track their recent absolute error; the
//    one with the smallest error is trusted, and its normalised error is turned into a tail
//    probability under the detector's own decayed history of such errors. This self-calibration
//    is what lets one threshold serve metrics of any scale (the idea of NAB's anomaly likelihood).
//    Whether this component takes part (predictionWeight) is chosen by cross-validation (on).
// 4. Robust local baseline. A rolling median and MAD over the last day (288 five-minute points)
//    give robust z-scores of the value and of its difference from the previous value, each turned
//    into a tail probability like 3.: a change against the recent past that one old outlier,
//    having stretched the range, would hide from 1. and 2. Cross-validation leaves it off
//    (robustWindowPoints 0): on the shared NAB files it cost more in false alarms than it found.
// 5. Alert suppression. NAB, like an on-call engineer, values the first alert of an episode and
//    charges for every further one outside the anomaly window, so after an alert lesser scores are
//    damped for a while unless the episode escalates.
// The detector is the maximum of these calibrated levels (an ensemble in which any member can
// alert). Memory is constant (a few thousand numbers); each update is O(1) apart from 48-bin scans
// and the rolling windows' sorted insertions (O(window)).
// The code is pure: no clock, no randomness, so the same input always gives the same scores.

export interface AnomalyDetectorOptions {
  /** Scores are 0 for this many first points: no statistic means anything yet. */
  readonly warmupPoints: number;
  /** Smoothing factor of the slow level predictor. */
  readonly levelAlpha: number;
  /** Smoothing factor of each predictor's absolute error (model choice and normalisation). */
  readonly modelErrorAlpha: number;
  /** Smoothing factor of the sustained-surprise average. */
  readonly sustainedAlpha: number;
  /** Smoothing factor of the copy of the series used for smoothed range novelty. */
  readonly smoothAlpha: number;
  /** Half-life, in points, of the surprise histograms. */
  readonly histogramHalfLifePoints: number;
  /** A tail probability of 1/referenceCount maps to a combined level of 1. */
  readonly referenceCount: number;
  /** Range novelty level = rangeOffset + rangeGain * excess (excess relative to the span). */
  readonly rangeOffset: number;
  readonly rangeGain: number;
  /**
   * Range novelty level also gains rangeQuietGain * ln((1 + quiet) / rangeQuietReferencePoints),
   * where quiet is the number of points since that side of the range was last extended.
   */
  readonly rangeQuietGain: number;
  readonly rangeQuietReferencePoints: number;
  /** The quiet term counts fully from this excess (relative to the span) up, proportionally below. */
  readonly rangeQuietFullExcess: number;
  /**
   * Range novelty level loses rangeYouthGain * ln(rangeYouthReferencePoints / n) while fewer than
   * rangeYouthReferencePoints points n have been seen (0: off).
   */
  readonly rangeYouthGain: number;
  readonly rangeYouthReferencePoints: number;
  /** Each seasonal bucket averages over about this many past visits. */
  readonly seasonalMemoryVisits: number;
  /** A score at or above this opens a suppression period. */
  readonly alertScore: number;
  readonly suppressionPoints: number;
  /** Scores during suppression that do not escalate are multiplied by this. */
  readonly suppressionFactor: number;
  /** Weight of the prediction-surprise level (point and sustained) in the combination (0: off). */
  readonly predictionWeight: number;
  /** Window of the rolling median/MAD robust z-scores on values and on differences (0: off). */
  readonly robustWindowPoints: number;
}

// One parameter set for every metric. The options on the grid of src/detect/anomaly-tuning.ts
// (robustWindowPoints, rangeYouthGain, suppressionPoints) are the choice of leave-one-group-out
// cross-validation on the shared NAB files, which `npm run eval:nab` re-runs and checks; the rest
// are the detector's design values, unchanged since it was first scored on NAB.
export const DEFAULT_ANOMALY_OPTIONS: Readonly<AnomalyDetectorOptions> = Object.freeze({
  warmupPoints: 150,
  levelAlpha: 0.01,
  modelErrorAlpha: 0.002,
  sustainedAlpha: 0.1,
  smoothAlpha: 0.05,
  histogramHalfLifePoints: 5000,
  referenceCount: 5000,
  rangeOffset: 0.8,
  rangeGain: 5,
  rangeQuietGain: 0.15,
  rangeQuietReferencePoints: 100,
  rangeQuietFullExcess: 0.01,
  rangeYouthGain: 0.4,
  rangeYouthReferencePoints: 3000,
  seasonalMemoryVisits: 3,
  alertScore: 0.45,
  suppressionPoints: 300,
  suppressionFactor: 0.5,
  predictionWeight: 1,
  robustWindowPoints: 0,
});

const HISTOGRAM_BIN_COUNT = 48;
const HISTOGRAM_BINS_PER_LOG_UNIT = 6;
// Weights grow instead of decaying so that an update touches one bin; they are rescaled long
// before they could overflow.
const HISTOGRAM_RESCALE_LIMIT = 1e100;

/** Tail probability of a non-negative statistic under its own exponentially decayed history. */
export class TailEstimator {
  private readonly weightByBin = new Float64Array(HISTOGRAM_BIN_COUNT);
  private totalWeight = 0;
  private increment = 1;
  private readonly growth: number;

  constructor(halfLifePoints: number) {
    if (!(halfLifePoints > 0)) throw new Error('TailEstimator: halfLifePoints must be positive');
    this.growth = Math.pow(2, 1 / halfLifePoints);
  }

  private bin(statistic: number): number {
    const index = Math.floor(Math.log1p(statistic) * HISTOGRAM_BINS_PER_LOG_UNIT);
    if (!(index > 0)) return 0;
    return index >= HISTOGRAM_BIN_COUNT ? HISTOGRAM_BIN_COUNT - 1 : index;
  }

  /** -ln P(history ≥ statistic), counting the new point itself so that it is never infinite. */
  surprise(statistic: number): number {
    let atLeast = 0;
    for (let bin = this.bin(statistic); bin < HISTOGRAM_BIN_COUNT; bin += 1) atLeast += this.weightByBin[bin]!;
    return -Math.log((atLeast + this.increment) / (this.totalWeight + this.increment));
  }

  observe(statistic: number): void {
    this.weightByBin[this.bin(statistic)]! += this.increment;
    this.totalWeight += this.increment;
    this.increment *= this.growth;
    if (this.increment > HISTOGRAM_RESCALE_LIMIT) {
      for (let bin = 0; bin < HISTOGRAM_BIN_COUNT; bin += 1) this.weightByBin[bin]! /= this.increment;
      this.totalWeight /= this.increment;
      this.increment = 1;
    }
  }
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const WEEK_MS = 7 * DAY_MS;
const SEASONAL_BUCKET_MS = HOUR_MS / 2;
const SEASONAL_VISITS_BEFORE_USE = 2;

/** Average value per half-hour of the day or of the week. */
class SeasonalProfile {
  private readonly sumByBucket: Float64Array;
  private readonly weightByBucket: Float64Array;
  private readonly lastPeriodByBucket: Float64Array;
  private readonly visitsByBucket: Uint8Array;

  constructor(private readonly periodMs: number) {
    const bucketCount = periodMs / SEASONAL_BUCKET_MS;
    this.sumByBucket = new Float64Array(bucketCount);
    this.weightByBucket = new Float64Array(bucketCount);
    this.lastPeriodByBucket = new Float64Array(bucketCount).fill(Number.NaN);
    this.visitsByBucket = new Uint8Array(bucketCount);
  }

  private bucket(timestampMs: number): number {
    const phaseMs = ((timestampMs % this.periodMs) + this.periodMs) % this.periodMs;
    return Math.floor(phaseMs / SEASONAL_BUCKET_MS);
  }

  /** NaN until the bucket has been seen in two different periods: one visit predicts nothing. */
  predict(timestampMs: number): number {
    const bucket = this.bucket(timestampMs);
    if (this.visitsByBucket[bucket]! < SEASONAL_VISITS_BEFORE_USE) return Number.NaN;
    return this.sumByBucket[bucket]! / this.weightByBucket[bucket]!;
  }

  learn(timestampMs: number, value: number, decay: number): void {
    const bucket = this.bucket(timestampMs);
    const period = Math.floor(timestampMs / this.periodMs);
    if (period !== this.lastPeriodByBucket[bucket]) {
      this.lastPeriodByBucket[bucket] = period;
      if (this.visitsByBucket[bucket]! < 255) this.visitsByBucket[bucket]! += 1;
    }
    this.sumByBucket[bucket] = this.sumByBucket[bucket]! * decay + value;
    this.weightByBucket[bucket] = this.weightByBucket[bucket]! * decay + 1;
  }
}

/** Running [min, max] of a series, how far a new value falls outside it and since when. */
export class RangeNovelty {
  private minimum = Infinity;
  private maximum = -Infinity;
  private learnedCount = 0;
  private maximumSetAt = 0;
  private minimumSetAt = 0;

  /** Distance outside the range in units of its span; 0 inside it or before the span exists. */
  excess(value: number): number {
    const span = this.maximum - this.minimum;
    if (!(span > 0)) return 0;
    return Math.max(value - this.maximum, this.minimum - value, 0) / span;
  }

  /** Points learned since the side of the range that value lies beyond was last extended. */
  quietPoints(value: number): number {
    return this.learnedCount - (value > this.maximum ? this.maximumSetAt : this.minimumSetAt);
  }

  learn(value: number): void {
    this.learnedCount += 1;
    if (value < this.minimum) {
      this.minimum = value;
      this.minimumSetAt = this.learnedCount;
    }
    if (value > this.maximum) {
      this.maximum = value;
      this.maximumSetAt = this.learnedCount;
    }
  }
}

import { RollingMedian } from './robust-window.ts';

// Predictor slots, in the order their errors are kept.
const LEVEL = 0;
const LAST_VALUE = 1;
const WEEKLY = 2;
const DAILY = 3;
const PREDICTOR_COUNT = 4;
// The smoothed copy of the series needs a few points before its range means anything.
const SMOOTH_RANGE_START_POINTS = 30;
const STEP_ESTIMATE_ALPHA = 0.05;

export class AnomalyDetector {
  private readonly options: Readonly<AnomalyDetectorOptions>;
  private readonly logReferenceCount: number;
  private readonly logQuietReference: number;
  private pointCount = 0;
  private previousValue = 0;
  private previousTimestampMs = Number.NaN;
  private stepEstimateMs = Number.NaN;
  private level = 0;
  private smooth = 0;
  private sustainedSurprise = 0;
  private suppressionRemainingPoints = 0;
  private suppressionPeakScore = 0;
  private readonly predictions = new Float64Array(PREDICTOR_COUNT);
  private readonly absErrorByPredictor = new Float64Array(PREDICTOR_COUNT);
  private readonly predictorReady = new Uint8Array(PREDICTOR_COUNT);
  private readonly weekly = new SeasonalProfile(WEEK_MS);
  private readonly daily = new SeasonalProfile(DAY_MS);
  private readonly valueRange = new RangeNovelty();
  private readonly smoothRange = new RangeNovelty();
  private readonly pointTail: TailEstimator;
  private readonly sustainedTail: TailEstimator;
  private readonly robustValues: RollingMedian | null;
  private readonly robustDiffs: RollingMedian | null;
  private readonly robustValueTail: TailEstimator;
  private readonly robustDiffTail: TailEstimator;

  constructor(options: Partial<AnomalyDetectorOptions> = {}) {
    this.options = Object.freeze({ ...DEFAULT_ANOMALY_OPTIONS, ...options });
    this.pointTail = new TailEstimator(this.options.histogramHalfLifePoints);
    this.sustainedTail = new TailEstimator(this.options.histogramHalfLifePoints);
    const window = this.options.robustWindowPoints;
    this.robustValues = window > 0 ? new RollingMedian(window) : null;
    this.robustDiffs = window > 0 ? new RollingMedian(window) : null;
    this.robustValueTail = new TailEstimator(this.options.histogramHalfLifePoints);
    this.robustDiffTail = new TailEstimator(this.options.histogramHalfLifePoints);
    this.logReferenceCount = Math.log(this.options.referenceCount);
    this.logQuietReference = Math.log(this.options.rangeQuietReferencePoints);
  }

  /**
   * Feeds one point and returns its anomaly score in [0, 1]. Timestamps (epoch ms, ascending) are
   * optional; with them the detector also learns daily and weekly patterns. Non-finite values are
   * scored 0 and not learned, so a gap in the metric cannot poison the state.
   */
  update(value: number, timestampMs?: number): number {
    if (!Number.isFinite(value)) return 0;
    const options = this.options;
    this.pointCount += 1;
    const hasTime = timestampMs !== undefined && Number.isFinite(timestampMs);
    if (this.pointCount === 1) {
      this.start(value, hasTime ? timestampMs : Number.NaN);
      return 0;
    }
    if (hasTime) this.trackStep(timestampMs);

    const z = this.normalisedError(value, hasTime ? timestampMs : Number.NaN);
    const hasPredictor = !Number.isNaN(z);
    const pointZ = hasPredictor ? z : 0;
    this.sustainedSurprise += options.sustainedAlpha * (pointZ - this.sustainedSurprise);
    this.smooth += options.smoothAlpha * (value - this.smooth);

    const tailLevel =
      options.predictionWeight > 0
        ? (options.predictionWeight * Math.max(this.pointTail.surprise(pointZ), this.sustainedTail.surprise(this.sustainedSurprise))) /
          this.logReferenceCount
        : 0;
    const rangeExcess = this.valueRange.excess(value);
    const smoothExcess = this.pointCount > SMOOTH_RANGE_START_POINTS ? this.smoothRange.excess(this.smooth) : 0;
    const rangeLevel = this.rangeLevel(value, rangeExcess, smoothExcess);
    const robustLevel = this.robustLevel(value) / this.logReferenceCount;
    const combined = Math.max(tailLevel, rangeLevel, robustLevel);

    this.learn(value, hasTime ? timestampMs : Number.NaN, hasPredictor, pointZ);

    if (this.pointCount < options.warmupPoints) return 0;
    return this.suppress(combined / (1 + combined));
  }

  private robustLevel(value: number): number {
    const values = this.robustValues;
    const diffs = this.robustDiffs;
    if (values === null || diffs === null) return 0;
    const diff = value - this.previousValue;
    let level = 0;
    if (values.length >= 20) {
      const floor = 1e-9 * (Math.abs(values.median()) + 1);
      const zValue = Math.abs(value - values.median()) / (1.4826 * values.mad() + floor);
      const zDiff = Math.abs(diff - diffs.median()) / (1.4826 * diffs.mad() + floor);
      level = Math.max(this.robustValueTail.surprise(zValue), this.robustDiffTail.surprise(zDiff));
      this.robustValueTail.observe(zValue);
      this.robustDiffTail.observe(zDiff);
    }
    values.push(value);
    diffs.push(diff);
    return level;
  }

  /** 0 inside both ranges; otherwise grows with the excess and with how long that side was quiet. */
  private rangeLevel(value: number, rangeExcess: number, smoothExcess: number): number {
    const novelty = Math.max(rangeExcess, smoothExcess);
    if (!(novelty > 0)) return 0;
    const options = this.options;
    const quietPoints = rangeExcess >= smoothExcess ? this.valueRange.quietPoints(value) : this.smoothRange.quietPoints(this.smooth);
    // Scaled by the excess so that a record broken by a hair (bounded noise does that now and then)
    // does not alarm however long the quiet was.
    const quietLevel =
      options.rangeQuietGain *
      (Math.log1p(quietPoints) - this.logQuietReference) *
      Math.min(1, novelty / options.rangeQuietFullExcess);
    // Early in a stream records are common whatever happens (under exchangeability the newest of n
    // points is a record with probability 2/n), so a young stream's records count for less.
    const youthLevel = options.rangeYouthGain * Math.max(0, Math.log(options.rangeYouthReferencePoints / this.pointCount));
    return Math.max(0, options.rangeOffset + options.rangeGain * novelty + quietLevel - youthLevel);
  }

  private start(value: number, timestampMs: number): void {
    this.previousValue = value;
    this.level = value;
    this.smooth = value;
    this.valueRange.learn(value);
    this.previousTimestampMs = timestampMs;
  }

  private trackStep(timestampMs: number): void {
    if (!Number.isNaN(this.previousTimestampMs)) {
      const stepMs = timestampMs - this.previousTimestampMs;
      if (stepMs > 0) {
        this.stepEstimateMs = Number.isNaN(this.stepEstimateMs)
          ? stepMs
          : this.stepEstimateMs + STEP_ESTIMATE_ALPHA * (stepMs - this.stepEstimateMs);
      }
    }
  }

  /** |error| / typical |error| of the predictor that has been most accurate lately; NaN if none is ready. */
  private normalisedError(value: number, timestampMs: number): number {
    const predictions = this.predictions;
    predictions[LEVEL] = this.level;
    predictions[LAST_VALUE] = this.previousValue;
    predictions[WEEKLY] = Number.isNaN(timestampMs) ? Number.NaN : this.weekly.predict(timestampMs);
    predictions[DAILY] = Number.isNaN(timestampMs) ? Number.NaN : this.daily.predict(timestampMs);
    let bestAbsError = Infinity;
    let bestPrediction = Number.NaN;
    for (let predictor = 0; predictor < PREDICTOR_COUNT; predictor += 1) {
      const prediction = predictions[predictor]!;
      if (Number.isNaN(prediction) || this.predictorReady[predictor] === 0) continue;
      const absError = this.absErrorByPredictor[predictor]!;
      if (absError < bestAbsError) {
        bestAbsError = absError;
        bestPrediction = prediction;
      }
    }
    if (Number.isNaN(bestPrediction)) return Number.NaN;
    // A perfectly predicted constant metric has zero error; the floor keeps the first change
    // finite but very surprising.
    const floor = 1e-9 * (Math.abs(this.level) + 1);
    return Math.abs(value - bestPrediction) / (bestAbsError + floor);
  }

  private learn(value: number, timestampMs: number, hasPredictor: boolean, pointZ: number): void {
    const options = this.options;
    if (hasPredictor) {
      this.pointTail.observe(pointZ);
      this.sustainedTail.observe(this.sustainedSurprise);
    }
    for (let predictor = 0; predictor < PREDICTOR_COUNT; predictor += 1) {
      const prediction = this.predictions[predictor]!;
      if (Number.isNaN(prediction)) continue;
      const absError = Math.abs(value - prediction);
      if (this.predictorReady[predictor] === 0) {
        this.absErrorByPredictor[predictor] = absError;
        this.predictorReady[predictor] = 1;
      } else {
        this.absErrorByPredictor[predictor]! += options.modelErrorAlpha * (absError - this.absErrorByPredictor[predictor]!);
      }
    }
    this.level += options.levelAlpha * (value - this.level);
    if (!Number.isNaN(timestampMs)) {
      // Decay per sample so that a bucket remembers about seasonalMemoryVisits visits whatever
      // the sampling interval.
      const samplesPerBucket = Number.isNaN(this.stepEstimateMs) ? 1 : Math.max(1, SEASONAL_BUCKET_MS / this.stepEstimateMs);
      const decay = 1 - 1 / (samplesPerBucket * options.seasonalMemoryVisits);
      this.weekly.learn(timestampMs, value, decay);
      this.daily.learn(timestampMs, value, decay);
      this.previousTimestampMs = timestampMs;
    }
    this.previousValue = value;
    this.valueRange.learn(value);
    if (this.pointCount > SMOOTH_RANGE_START_POINTS) this.smoothRange.learn(this.smooth);
  }

  private suppress(score: number): number {
    const options = this.options;
    if (this.suppressionRemainingPoints > 0) {
      this.suppressionRemainingPoints -= 1;
      if (score <= this.suppressionPeakScore) return score * options.suppressionFactor;
      this.suppressionPeakScore = score;
      return score;
    }
    if (score >= options.alertScore) {
      this.suppressionRemainingPoints = options.suppressionPoints;
      this.suppressionPeakScore = score;
    }
    return score;
  }
}
