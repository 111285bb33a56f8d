// Leave-one-group-out cross-validation of a detector's parameters and NAB threshold.
//
// For each group of series: choose, on the other groups only, the candidate parameter set with the
// best NAB score (standard profile, each candidate at its own optimised θ) and that candidate's θ
// for each profile; then score the left-out group at those θ. The cross-validated score pools the
// left-out groups' raw scores (every file is scored exactly once, by a choice that never saw it)
// and normalises them over all windows, as NAB normalises a corpus.
//
// The parameters that ship are the candidate most folds chose, with, for each profile, the median
// of the θ that the folds' training sets gave that candidate: every single choice saw only its
// training groups, and the fold scores say how well such a choice does on a group it never saw.
// Pure: in-memory arrays, no files, no clock.

import {
  NAB_PROFILES,
  nabProfile,
  normaliseScore,
  optimiseThreshold,
  scoreCorpus,
  type NabProfileName,
  type NabScoredSeries,
} from './nab-scorer.ts';

export type ProfileThresholds = Readonly<Record<NabProfileName, number>>;

/**
 * The cross-validation group of a NAB file: its NAB directory and the first two words of its name,
 * i.e. the kind of metric and its source ("realAWSCloudwatch/ec2_cpu", "realKnownCause/nyc_taxi").
 * Series of one kind from one source share a lot; leaving the whole kind out is what tells how a
 * choice fares on a metric it has never seen.
 */
export function cvGroupOf(fileName: string): string {
  const slash = fileName.lastIndexOf('/');
  const directory = slash === -1 ? '' : fileName.slice(0, slash);
  const base = fileName.slice(slash + 1).replace(/\.csv$/, '');
  return `${directory}/${base.split('_').slice(0, 2).join('_')}`;
}

/** The NAB directory of a file ("realAWSCloudwatch"): the coarse grouping. */
export function nabDirectoryGroupOf(fileName: string): string {
  const slash = fileName.indexOf('/');
  return slash === -1 ? '' : fileName.slice(0, slash);
}

export interface CvFold {
  readonly heldOutGroup: string;
  /** Indices into the series arrays. */
  readonly trainingIndices: readonly number[];
  readonly heldOutIndices: readonly number[];
  /** The candidate chosen on the training series. */
  readonly candidateIndex: number;
  /** θ per profile, optimised on the training series for the chosen candidate. */
  readonly thresholds: ProfileThresholds;
  /** Raw NAB score of the held-out series at those θ, per profile. */
  readonly heldOutRaw: Readonly<Record<NabProfileName, number>>;
  readonly heldOutWindows: number;
}

export interface CvResult {
  readonly folds: readonly CvFold[];
  /** Pooled held-out score per profile, normalised over all windows (0 null, 100 perfect). */
  readonly crossValidated: Readonly<Record<NabProfileName, number>>;
  /** The candidate most folds chose (ties: the lowest index). */
  readonly shippedCandidateIndex: number;
  /** Per profile, the median over all folds of the θ the training series gave the shipped candidate. */
  readonly shippedThresholds: ProfileThresholds;
}

/** The folds' partition of series indices: one fold per distinct group, training = every other group. */
export function foldPartition(groups: readonly string[]): { group: string; training: number[]; heldOut: number[] }[] {
  const distinct = [...new Set(groups)].sort();
  return distinct.map((group) => ({
    group,
    training: groups.flatMap((other, index) => (other === group ? [] : [index])),
    heldOut: groups.flatMap((other, index) => (other === group ? [index] : [])),
  }));
}

function pick<T>(items: readonly T[], indices: readonly number[]): T[] {
  return indices.map((index) => items[index]!);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function thresholdsOn(series: readonly NabScoredSeries[]): ProfileThresholds {
  const entries = NAB_PROFILES.map((profile) => [profile.name, optimiseThreshold(series, profile).threshold] as const);
  return Object.fromEntries(entries) as Record<NabProfileName, number>;
}

/**
 * Cross-validates candidates. scoresByCandidate[c][i] is candidate c's output on series i (the same
 * files in the same order for every candidate); groups[i] is series i's group.
 */
export function crossValidate(scoresByCandidate: readonly (readonly NabScoredSeries[])[], groups: readonly string[]): CvResult {
  if (scoresByCandidate.length === 0) throw new Error('crossValidate: no candidates');
  for (const [index, series] of scoresByCandidate.entries()) {
    if (series.length !== groups.length) {
      throw new Error(`crossValidate: candidate ${index} has ${series.length} series for ${groups.length} groups`);
    }
  }
  const partition = foldPartition(groups);
  if (partition.length < 2) throw new Error('crossValidate: needs at least two groups to leave one out');
  const standard = nabProfile('standard');
  const folds: CvFold[] = partition.map(({ group, training, heldOut }) => {
    let candidateIndex = 0;
    let bestRaw = -Infinity;
    for (const [index, series] of scoresByCandidate.entries()) {
      const raw = optimiseThreshold(pick(series, training), standard).rawScore;
      if (raw > bestRaw) {
        bestRaw = raw;
        candidateIndex = index;
      }
    }
    const chosen = scoresByCandidate[candidateIndex]!;
    const thresholds = thresholdsOn(pick(chosen, training));
    const heldOutSeries = pick(chosen, heldOut);
    const heldOutRaw = Object.fromEntries(
      NAB_PROFILES.map((profile) => [profile.name, scoreCorpus(heldOutSeries, profile, thresholds[profile.name]).rawScore]),
    ) as Record<NabProfileName, number>;
    const heldOutWindows = heldOutSeries.reduce((sum, entry) => sum + entry.file.windows.length, 0);
    return { heldOutGroup: group, trainingIndices: training, heldOutIndices: heldOut, candidateIndex, thresholds, heldOutRaw, heldOutWindows };
  });

  const totalWindows = folds.reduce((sum, fold) => sum + fold.heldOutWindows, 0);
  const crossValidated = Object.fromEntries(
    NAB_PROFILES.map((profile) => [
      profile.name,
      normaliseScore(
        folds.reduce((sum, fold) => sum + fold.heldOutRaw[profile.name], 0),
        totalWindows,
        profile,
      ),
    ]),
  ) as Record<NabProfileName, number>;

  const votes = new Map<number, number>();
  for (const fold of folds) votes.set(fold.candidateIndex, (votes.get(fold.candidateIndex) ?? 0) + 1);
  const shippedCandidateIndex = [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
  const shipped = scoresByCandidate[shippedCandidateIndex]!;
  const perFold = folds.map((fold) => thresholdsOn(pick(shipped, fold.trainingIndices)));
  const shippedThresholds = Object.fromEntries(
    NAB_PROFILES.map((profile) => [profile.name, median(perFold.map((thresholds) => thresholds[profile.name]))]),
  ) as Record<NabProfileName, number>;
  return { folds, crossValidated, shippedCandidateIndex, shippedThresholds };
}
