// Leave-one-group-out cross-validation of a detector's parameters and NAB threshold.
//
// For each group of series: choose, on the other groups only, the candidate parameter set with the
// best NAB score by cross-validation among those groups (each scored at the θ the others give; by
// plain fit when only one group is left to train on), and that candidate's θ for each profile
// optimised on all of them; then score the left-out group at those θ. The cross-validated score pools the
// left-out groups' raw scores (every file is scored exactly once, by a choice that never saw it)
// and normalises them over all windows, as NAB normalises a corpus.
//
// The parameters that ship are the candidate most folds chose, with, for each profile, the median
// of the θ that the folds' training sets gave that candidate: every single choice saw only its
// training groups, and the fold scores say how well such a choice does on a group it never saw.
// Pure: in-memory arrays, no files, no clock.

import {
  NAB_NO_DETECTION_THRESHOLD,
  NAB_PROFILES,
  nabProfile,
  normaliseScore,
  rowWeights,
  scoreCorpus,
  scoreFile,
  type NabRowWeights,
  type NabProfile,
  type NabProfileName,
  type NabScoredSeries,
  type NabThresholdChoice,
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

/**
 * One candidate's scorable rows of every file, sorted once by descending score, so that NAB's
 * threshold optimisation on any subset of files is one sweep that skips the other files' rows
 * (instead of a sort per fold). Gives exactly optimiseThreshold's answer on that subset.
 */
export class SortedRows {
  private readonly score: Float64Array;
  private readonly unitWeight: Float64Array;
  private readonly window: Int32Array;
  private readonly fileOf: Int32Array;
  private readonly windowCountByFile: Int32Array;
  private readonly windowCount: number;

  constructor(series: readonly NabScoredSeries[]) {
    let total = 0;
    for (const { file } of series) total += file.rowCount;
    const score = new Float64Array(total);
    const unitWeight = new Float64Array(total);
    const window = new Int32Array(total);
    const fileOf = new Int32Array(total);
    let count = 0;
    let windowOffset = 0;
    this.windowCountByFile = Int32Array.from(series, (entry) => entry.file.windows.length);
    series.forEach(({ file, anomalyScores }, fileIndex) => {
      if (anomalyScores.length !== file.rowCount) throw new Error(`${file.name}: ${anomalyScores.length} scores for ${file.rowCount} rows`);
      const weights = rowWeights(file);
      for (let row = weights.probationRows; row < file.rowCount; row += 1) {
        const windowIndex = weights.windowIndexByRow[row]!;
        score[count] = anomalyScores[row]!;
        unitWeight[count] = weights.unitWeightByRow[row]!;
        window[count] = windowIndex === -1 ? -1 : windowOffset + windowIndex;
        fileOf[count] = fileIndex;
        count += 1;
      }
      windowOffset += file.windows.length;
    });
    this.windowCount = windowOffset;
    const order = new Uint32Array(count);
    for (let entry = 0; entry < count; entry += 1) order[entry] = entry;
    order.sort((a, b) => score[b]! - score[a]!);
    this.score = Float64Array.from(order, (entry) => score[entry]!);
    this.unitWeight = Float64Array.from(order, (entry) => unitWeight[entry]!);
    this.window = Int32Array.from(order, (entry) => window[entry]!);
    this.fileOf = Int32Array.from(order, (entry) => fileOf[entry]!);
  }

  /** NAB's optimised θ (and raw score) over the files whose indices are given. */
  optimise(fileIndices: readonly number[], profile: NabProfile): NabThresholdChoice {
    const included = new Uint8Array(this.windowCountByFile.length);
    let windows = 0;
    for (const index of fileIndices) {
      included[index] = 1;
      windows += this.windowCountByFile[index]!;
    }
    const bestByWindow = new Float64Array(this.windowCount).fill(-profile.falseNegativeWeight);
    let currentRaw = -profile.falseNegativeWeight * windows;
    let best: NabThresholdChoice = { threshold: NAB_NO_DETECTION_THRESHOLD, rawScore: currentRaw };
    let pendingScore = Number.NaN;
    for (let position = 0; position < this.score.length; position += 1) {
      if (included[this.fileOf[position]!] === 0) continue;
      const score = this.score[position]!;
      // The previous included row was the last of its score: that θ is a candidate.
      if (score !== pendingScore && !Number.isNaN(pendingScore) && currentRaw > best.rawScore) {
        best = { threshold: pendingScore, rawScore: currentRaw };
      }
      pendingScore = score;
      const windowIndex = this.window[position]!;
      if (windowIndex === -1) {
        currentRaw += this.unitWeight[position]! * profile.falsePositiveWeight;
      } else {
        const weight = this.unitWeight[position]! * profile.truePositiveWeight;
        if (weight > bestByWindow[windowIndex]!) {
          currentRaw += weight - bestByWindow[windowIndex]!;
          bestByWindow[windowIndex] = weight;
        }
      }
    }
    if (!Number.isNaN(pendingScore) && currentRaw > best.rawScore) best = { threshold: pendingScore, rawScore: currentRaw };
    return best;
  }
}

function thresholdsOn(sorted: SortedRows, fileIndices: readonly number[]): ProfileThresholds {
  const entries = NAB_PROFILES.map((profile) => [profile.name, sorted.optimise(fileIndices, profile).threshold] as const);
  return Object.fromEntries(entries) as Record<NabProfileName, number>;
}

/**
 * How a candidate does on the training series by cross-validation among them (standard profile):
 * each training group scored at the θ optimised on the other training groups. Choosing candidates
 * by this rather than by their fit to all the training series prefers a candidate whose θ carries
 * over from one group of series to another, which is what an unseen series needs.
 */
function innerCrossValidatedRaw(
  sorted: SortedRows,
  series: readonly NabScoredSeries[],
  weightsByFile: readonly NabRowWeights[],
  training: readonly number[],
  groups: readonly string[],
): number {
  const standard = nabProfile('standard');
  let raw = 0;
  for (const innerGroup of new Set(training.map((index) => groups[index]!))) {
    const innerTraining = training.filter((index) => groups[index] !== innerGroup);
    const threshold = sorted.optimise(innerTraining, standard).threshold;
    for (const index of training) {
      if (groups[index] !== innerGroup) continue;
      const entry = series[index]!;
      raw += scoreFile(entry.file, entry.anomalyScores, standard, threshold, weightsByFile[index]).rawScore;
    }
  }
  return raw;
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
  const sortedByCandidate = scoresByCandidate.map((series) => new SortedRows(series));
  const weightsByFile = scoresByCandidate[0]!.map((entry) => rowWeights(entry.file));
  const folds: CvFold[] = partition.map(({ group, training, heldOut }) => {
    const innerGroups = groups.filter((_, index) => training.includes(index));
    const selection = (index: number): number =>
      new Set(innerGroups).size >= 2
        ? innerCrossValidatedRaw(sortedByCandidate[index]!, scoresByCandidate[index]!, weightsByFile, training, groups)
        : sortedByCandidate[index]!.optimise(training, standard).rawScore;
    let candidateIndex = 0;
    let bestRaw = -Infinity;
    for (let index = 0; index < scoresByCandidate.length; index += 1) {
      const raw = selection(index);
      if (raw > bestRaw) {
        bestRaw = raw;
        candidateIndex = index;
      }
    }
    const chosen = scoresByCandidate[candidateIndex]!;
    const thresholds = thresholdsOn(sortedByCandidate[candidateIndex]!, training);
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
  const shipped = sortedByCandidate[shippedCandidateIndex]!;
  const perFold = folds.map((fold) => thresholdsOn(shipped, fold.trainingIndices));
  const shippedThresholds = Object.fromEntries(
    NAB_PROFILES.map((profile) => [profile.name, median(perFold.map((thresholds) => thresholds[profile.name]))]),
  ) as Record<NabProfileName, number>;
  return { folds, crossValidated, shippedCandidateIndex, shippedThresholds };
}
