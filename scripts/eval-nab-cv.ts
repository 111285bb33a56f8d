// The cross-validation section of `npm run eval:nab`: runs every candidate of the anomaly
// detector's grid on the shared NAB files, cross-validates parameters and threshold leaving one
// group of series out (src/detect/nab-cv.ts), prints the in-sample and cross-validated scores, and
// checks that the shipped defaults are the cross-validated choice.

import { DEFAULT_ANOMALY_OPTIONS } from '../src/detect/anomaly.ts';
import {
  SHIPPED_CANDIDATE,
  SHIPPED_NAB_THRESHOLDS,
  anomalyCandidates,
  type AnomalyCandidate,
} from '../src/detect/anomaly-tuning.ts';
import { crossValidate, cvGroupOf, nabDirectoryGroupOf, type CvResult } from '../src/detect/nab-cv.ts';
import { NAB_PROFILES, normaliseScore, scoreCorpus, type NabScoredSeries } from '../src/detect/nab-scorer.ts';
import { runDetector, type NabSeries } from './nab-corpus.ts';

export interface CvReport {
  readonly candidates: readonly AnomalyCandidate[];
  readonly result: CvResult;
  /** The same candidates cross-validated over NAB's two directories (2 folds), for comparison. */
  readonly coarse: CvResult;
  readonly shippedIsCvChoice: boolean;
  readonly scoresByCandidate: readonly (readonly NabScoredSeries[])[];
}

function sameCandidate(a: AnomalyCandidate, b: AnomalyCandidate): boolean {
  return Object.keys(a).every((key) => a[key as keyof AnomalyCandidate] === b[key as keyof AnomalyCandidate]);
}

/** Runs the grid and both cross-validations; pure apart from the detector runs. */
export function crossValidateDetector(corpus: readonly NabSeries[]): CvReport {
  const candidates = anomalyCandidates();
  const scoresByCandidate = candidates.map((candidate) =>
    corpus.map((series) => ({ file: series.file, anomalyScores: runDetector(series, { ...DEFAULT_ANOMALY_OPTIONS, ...candidate }) })),
  );
  const result = crossValidate(scoresByCandidate, corpus.map((series) => cvGroupOf(series.file.name)));
  const coarse = crossValidate(scoresByCandidate, corpus.map((series) => nabDirectoryGroupOf(series.file.name)));
  const chosen = candidates[result.shippedCandidateIndex]!;
  const thresholdsMatch = NAB_PROFILES.every(
    (profile) => Math.abs(result.shippedThresholds[profile.name] - SHIPPED_NAB_THRESHOLDS[profile.name]) < 1e-12,
  );
  return { candidates, result, coarse, shippedIsCvChoice: sameCandidate(chosen, SHIPPED_CANDIDATE) && thresholdsMatch, scoresByCandidate };
}

function triple(values: Readonly<Record<string, number>>): string {
  return NAB_PROFILES.map((profile) => (values[profile.name] ?? Number.NaN).toFixed(1)).join(' / ');
}

function describeCandidate(candidate: AnomalyCandidate): string {
  return Object.entries(candidate)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}

/** Prints the section; returns false when the shipped defaults are not the cross-validated choice. */
export function printCrossValidation(
  corpus: readonly NabSeries[],
  published: ReadonlyMap<string, readonly NabScoredSeries[]> = new Map(),
): boolean {
  const started = performance.now();
  const report = crossValidateDetector(corpus);
  const { result, coarse, candidates } = report;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log('== 5. Cross-validation: parameters and θ chosen leaving one group of series out (standard / low FP / low FN) ==');
  console.log(
    `${candidates.length} candidates (src/detect/anomaly-tuning.ts), ${result.folds.length} groups (NAB directory + first two words of the file name); ` +
      `each fold picks the candidate and θ on the other groups only (${seconds} s)`,
  );
  for (const fold of result.folds) {
    const heldOut = fold.heldOutIndices.map((index) => report.scoresByCandidate[fold.candidateIndex]![index]!);
    const score = NAB_PROFILES.map((profile) => scoreCorpus(heldOut, profile, fold.thresholds[profile.name]).normalisedScore);
    console.log(
      `  left out ${fold.heldOutGroup.padEnd(36)} ${String(fold.heldOutIndices.length).padStart(2)} files ${String(fold.heldOutWindows).padStart(2)} windows  ` +
        `candidate ${String(fold.candidateIndex).padStart(2)}  θ ${fold.thresholds.standard.toFixed(4)}  held-out ${score.map((x) => x.toFixed(1)).join(' / ')}`,
    );
  }
  const shipped = report.scoresByCandidate[result.shippedCandidateIndex]!;
  const inSample = Object.fromEntries(NAB_PROFILES.map((profile) => [profile.name, scoreCorpus(shipped, profile).normalisedScore]));
  const atShipped = Object.fromEntries(
    NAB_PROFILES.map((profile) => [profile.name, scoreCorpus(shipped, profile, result.shippedThresholds[profile.name]).normalisedScore]),
  );
  console.log(`cross-validated (each group scored by a choice made without it):   ${triple(result.crossValidated)}`);
  const aws = result.folds.filter((fold) => fold.heldOutGroup.startsWith('realAWSCloudwatch/'));
  const awsWindows = aws.reduce((sum, fold) => sum + fold.heldOutWindows, 0);
  const awsScores = Object.fromEntries(
    NAB_PROFILES.map((profile) => [profile.name, normaliseScore(aws.reduce((sum, fold) => sum + fold.heldOutRaw[profile.name], 0), awsWindows, profile)]),
  );
  console.log(`  of which the realAWSCloudwatch groups (${awsWindows} windows):                ${triple(awsScores)}`);
  console.log(`cross-validated over NAB's 2 directories (2 folds, for comparison): ${triple(coarse.crossValidated)}`);
  const groups = corpus.map((series) => cvGroupOf(series.file.name));
  for (const [name, series] of published) {
    console.log(`${`${name} (published outputs, only θ cross-validated, same folds):`.padEnd(67)} ${triple(crossValidate([series], groups).crossValidated)}`);
  }
  console.log(`in-sample (CV choice, θ optimised on all 20 files):                 ${triple(inSample)}`);
  console.log(`CV choice at its shipped θ on all 20 files:                         ${triple(atShipped)}`);
  console.log(`CV choice: candidate ${result.shippedCandidateIndex} (${describeCandidate(candidates[result.shippedCandidateIndex]!)}), chosen by ` +
    `${result.folds.filter((fold) => fold.candidateIndex === result.shippedCandidateIndex).length}/${result.folds.length} folds`);
  console.log(
    `CV θ (median over folds): ${NAB_PROFILES.map((profile) => `${profile.name} ${result.shippedThresholds[profile.name]}`).join(', ')}`,
  );
  if (report.shippedIsCvChoice) {
    console.log('shipped defaults (DEFAULT_ANOMALY_OPTIONS, SHIPPED_NAB_THRESHOLDS) = the CV choice: yes');
  } else {
    console.log(
      `shipped defaults = the CV choice: NO — shipped ${describeCandidate(SHIPPED_CANDIDATE)} with θ ${triple(SHIPPED_NAB_THRESHOLDS)}; ` +
        'set DEFAULT_ANOMALY_OPTIONS (src/detect/anomaly.ts) and SHIPPED_NAB_THRESHOLDS (src/detect/anomaly-tuning.ts) to the CV choice above',
    );
  }
  console.log('');
  return report.shippedIsCvChoice;
}
