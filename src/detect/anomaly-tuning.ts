// How the anomaly detector's shipped parameters and NAB thresholds are chosen: the candidates that
// leave-one-group-out cross-validation picks from (src/detect/nab-cv.ts), and the values it picked.
// `npm run eval:nab` re-runs the cross-validation on the shared NAB files and fails if the values
// below are not what it picks, so they cannot drift into something fitted on all 20 files.

import { DEFAULT_ANOMALY_OPTIONS, type AnomalyDetectorOptions } from './anomaly.ts';
import type { ProfileThresholds } from './nab-cv.ts';

/**
 * The axes the cross-validation chooses along; every other option keeps its designed value. Each
 * axis is a method switch or a scale, not a per-file knob: the robust rolling median/MAD ensemble
 * member (off, or one day of 5-minute samples), the discount on records set early in a stream, and
 * whether the prediction-surprise member takes part.
 */
export const ANOMALY_GRID = Object.freeze({
  robustWindowPoints: [0, 288],
  rangeYouthGain: [0, 0.2, 0.4],
  predictionWeight: [1, 0],
} as const satisfies { [K in keyof AnomalyDetectorOptions]?: readonly number[] });

type GridKey = keyof typeof ANOMALY_GRID;
export type AnomalyCandidate = Readonly<Pick<AnomalyDetectorOptions, GridKey>>;

/** Every combination of the grid's values, in a fixed order (the first axis varies slowest). */
export function anomalyCandidates(): AnomalyCandidate[] {
  let combinations: Record<string, number>[] = [{}];
  for (const [key, values] of Object.entries(ANOMALY_GRID)) {
    combinations = combinations.flatMap((partial) => values.map((value) => ({ ...partial, [key]: value })));
  }
  return combinations as unknown as AnomalyCandidate[];
}

/** The grid values of a full option set (to compare the shipped defaults with a candidate). */
export function candidateOf(options: Readonly<AnomalyDetectorOptions>): AnomalyCandidate {
  const entries = Object.keys(ANOMALY_GRID).map((key) => [key, options[key as GridKey]] as const);
  return Object.fromEntries(entries) as unknown as AnomalyCandidate;
}

/**
 * NAB thresholds shipped with DEFAULT_ANOMALY_OPTIONS, per profile: for each profile the median of
 * the θ that the 12 leave-one-group-out training sets gave the shipped candidate. Scores at or
 * above θ are alerts. Printed by `npm run eval:nab` and used by `npm run eval:nab -- --corpus`.
 */
export const SHIPPED_NAB_THRESHOLDS: ProfileThresholds = Object.freeze({
  standard: 0.48148588603610926,
  reward_low_FP_rate: 0.48148588603610926,
  reward_low_FN_rate: 0.48148588603610926,
});

/** The shipped option set, as the cross-validation candidate it must equal. */
export const SHIPPED_CANDIDATE: AnomalyCandidate = candidateOf(DEFAULT_ANOMALY_OPTIONS);
