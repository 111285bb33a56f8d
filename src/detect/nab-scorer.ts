// Pure implementation of the Numenta Anomaly Benchmark (NAB) scoring method, following the
// scorer at NAB commit ea702d75 (see shared/data/nab/README.md, steps 1-7). Everything here works
// on in-memory arrays so that tests, the evaluation script and any future caller share one
// definition of "the NAB score"; reading files is the caller's business.

export type NabProfileName = 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate';

export interface NabProfile {
  readonly name: NabProfileName;
  readonly truePositiveWeight: number;
  readonly falsePositiveWeight: number;
  readonly falseNegativeWeight: number;
}

// The cost matrices of NAB's config/profiles.json. The true-negative weight is listed there but
// the scorer never uses it, so it is left out here.
export const NAB_PROFILES: readonly NabProfile[] = Object.freeze([
  Object.freeze({ name: 'standard', truePositiveWeight: 1, falsePositiveWeight: 0.11, falseNegativeWeight: 1 }),
  Object.freeze({ name: 'reward_low_FP_rate', truePositiveWeight: 1, falsePositiveWeight: 0.22, falseNegativeWeight: 1 }),
  Object.freeze({ name: 'reward_low_FN_rate', truePositiveWeight: 1, falsePositiveWeight: 0.11, falseNegativeWeight: 2 }),
] as const satisfies readonly NabProfile[]);

export function nabProfile(name: NabProfileName): NabProfile {
  const profile = NAB_PROFILES.find((candidate) => candidate.name === name);
  if (profile === undefined) throw new Error(`unknown NAB profile ${name}`);
  return profile;
}

/** An anomaly window as inclusive row indices into one file. */
export interface NabWindow {
  readonly startIndex: number;
  readonly endIndex: number;
}

/** What the scorer needs to know about one data file: its length and its anomaly windows. */
export interface NabFile {
  readonly name: string;
  readonly rowCount: number;
  readonly windows: readonly NabWindow[];
}

export const NAB_PROBATION_FRACTION = 0.15;
export const NAB_WINDOW_FRACTION = 0.1;
// NAB caps the probation at probationPercent * 5000 rows, i.e. 750 rows for 15 %.
const PROBATION_CAP_BASE_ROWS = 5000;
// Thresholds are swept from just above the largest possible score, meaning "never detect".
export const NAB_NO_DETECTION_THRESHOLD = 1.1;

export function probationRowCount(rowCount: number, probationFraction: number = NAB_PROBATION_FRACTION): number {
  return Math.min(Math.floor(probationFraction * rowCount), probationFraction * PROBATION_CAP_BASE_ROWS);
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * NAB's scaled sigmoid: +0.987 at -1, 0 at 0, -0.987 at +1, and exactly -1 beyond +3 (the code
 * clamps there so that a false positive far from any window costs the full false-positive weight).
 */
export function scaledSigmoid(relativePosition: number): number {
  if (relativePosition > 3) return -1;
  return 2 * sigmoid(-5 * relativePosition) - 1;
}

/**
 * Windows from labelled anomaly rows, as NAB's labeller builds them: a budget of 10 % of the rows
 * split equally among the anomalies, each window centred on its anomaly and clipped at the file's
 * ends, overlapping windows merged.
 */
export function windowsFromAnomalyIndices(
  rowCount: number,
  anomalyIndices: readonly number[],
  windowFraction: number = NAB_WINDOW_FRACTION,
): NabWindow[] {
  if (anomalyIndices.length === 0) return [];
  const windowLengthRows = Math.trunc((windowFraction * rowCount) / anomalyIndices.length);
  const halfRows = Math.trunc(windowLengthRows / 2);
  const sorted = [...anomalyIndices].sort((a, b) => a - b);
  const merged: NabWindow[] = [];
  for (const anomalyIndex of sorted) {
    const window = {
      startIndex: Math.max(anomalyIndex - halfRows, 0),
      endIndex: Math.min(anomalyIndex + halfRows, rowCount - 1),
    };
    const previous = merged[merged.length - 1];
    if (previous !== undefined && window.startIndex <= previous.endIndex) {
      merged[merged.length - 1] = { startIndex: previous.startIndex, endIndex: Math.max(previous.endIndex, window.endIndex) };
    } else {
      merged.push(window);
    }
  }
  return merged;
}

/** NAB writes window bounds with a ".000000" suffix that the data rows do not carry. */
export function normaliseNabTimestamp(timestamp: string): string {
  const trimmed = timestamp.trim();
  return trimmed.endsWith('.000000') ? trimmed.slice(0, -'.000000'.length) : trimmed;
}

/** Turns windows given as timestamp bounds (combined_windows.json) into row-index windows. */
export function windowsFromTimestampBounds(
  timestamps: readonly string[],
  bounds: readonly (readonly [string, string])[],
): NabWindow[] {
  const indexByTimestamp = new Map<string, number>();
  timestamps.forEach((timestamp, index) => indexByTimestamp.set(normaliseNabTimestamp(timestamp), index));
  return bounds.map(([start, end]) => {
    const startIndex = indexByTimestamp.get(normaliseNabTimestamp(start));
    const endIndex = indexByTimestamp.get(normaliseNabTimestamp(end));
    if (startIndex === undefined || endIndex === undefined) {
      throw new Error(`window bound ${start}..${end} matches no row`);
    }
    if (endIndex < startIndex) throw new Error(`window ${start}..${end} ends before it starts`);
    return { startIndex, endIndex };
  });
}

/**
 * Per-row weights before the profile is applied. Inside a window the value is the scaled sigmoid
 * normalised to 1 at the window's first row; outside it is the (negative) false-positive factor.
 * Keeping the profile out lets one pass serve all three profiles.
 */
export interface NabRowWeights {
  /** Multiply by the true-positive weight for rows in a window, by the false-positive weight otherwise. */
  readonly unitWeightByRow: Float64Array;
  /** Index of the window a row lies in, or -1. */
  readonly windowIndexByRow: Int32Array;
  readonly probationRows: number;
}

export function rowWeights(file: NabFile): NabRowWeights {
  const unitWeightByRow = new Float64Array(file.rowCount);
  const windowIndexByRow = new Int32Array(file.rowCount).fill(-1);
  const windows = [...file.windows].sort((a, b) => a.startIndex - b.startIndex);
  const sigmoidAtWindowStart = scaledSigmoid(-1);
  for (let windowIndex = 0; windowIndex < windows.length; windowIndex += 1) {
    const window = windows[windowIndex]!;
    const widthRows = window.endIndex - window.startIndex + 1;
    for (let row = window.startIndex; row <= window.endIndex; row += 1) {
      windowIndexByRow[row] = windowIndex;
      unitWeightByRow[row] = scaledSigmoid(-(window.endIndex - row + 1) / widthRows) / sigmoidAtWindowStart;
    }
  }
  let previousWindow: NabWindow | undefined;
  let nextWindowPointer = 0;
  for (let row = 0; row < file.rowCount; row += 1) {
    while (nextWindowPointer < windows.length && windows[nextWindowPointer]!.endIndex < row) {
      previousWindow = windows[nextWindowPointer];
      nextWindowPointer += 1;
    }
    if (windowIndexByRow[row] !== -1) continue;
    if (previousWindow === undefined) {
      unitWeightByRow[row] = -1;
    } else {
      // A one-row window would divide by zero here; NAB never makes one, and treating it as
      // "far away" keeps the value finite.
      const widthRows = previousWindow.endIndex - previousWindow.startIndex + 1;
      const position = widthRows > 1 ? Math.abs(row - previousWindow.endIndex) / (widthRows - 1) : Infinity;
      unitWeightByRow[row] = scaledSigmoid(position);
    }
  }
  return { unitWeightByRow, windowIndexByRow, probationRows: probationRowCount(file.rowCount) };
}

export interface NabFileScore {
  readonly name: string;
  readonly rawScore: number;
  readonly windowsDetected: number;
  readonly windowsMissed: number;
  /** Detections outside every window (after probation). */
  readonly falsePositiveRows: number;
}

function assertScoresMatch(file: NabFile, anomalyScores: ArrayLike<number>): void {
  if (anomalyScores.length !== file.rowCount) {
    throw new Error(`${file.name}: ${anomalyScores.length} scores for ${file.rowCount} rows`);
  }
}

/** Raw score of one file at threshold θ: rows after probation with score ≥ θ are detections. */
export function scoreFile(
  file: NabFile,
  anomalyScores: ArrayLike<number>,
  profile: NabProfile,
  threshold: number,
  weights: NabRowWeights = rowWeights(file),
): NabFileScore {
  assertScoresMatch(file, anomalyScores);
  const windowCount = file.windows.length;
  const bestByWindow = new Float64Array(windowCount).fill(-profile.falseNegativeWeight);
  const detected = new Uint8Array(windowCount);
  let falsePositiveSum = 0;
  let falsePositiveRows = 0;
  for (let row = weights.probationRows; row < file.rowCount; row += 1) {
    if (!(anomalyScores[row]! >= threshold)) continue;
    const windowIndex = weights.windowIndexByRow[row]!;
    const unitWeight = weights.unitWeightByRow[row]!;
    if (windowIndex === -1) {
      falsePositiveSum += unitWeight * profile.falsePositiveWeight;
      falsePositiveRows += 1;
    } else {
      detected[windowIndex] = 1;
      bestByWindow[windowIndex] = Math.max(bestByWindow[windowIndex]!, unitWeight * profile.truePositiveWeight);
    }
  }
  let windowSum = 0;
  let windowsDetected = 0;
  for (let windowIndex = 0; windowIndex < windowCount; windowIndex += 1) {
    windowSum += bestByWindow[windowIndex]!;
    windowsDetected += detected[windowIndex]!;
  }
  return {
    name: file.name,
    rawScore: windowSum + falsePositiveSum,
    windowsDetected,
    windowsMissed: windowCount - windowsDetected,
    falsePositiveRows,
  };
}

export interface NabScoredSeries {
  readonly file: NabFile;
  readonly anomalyScores: ArrayLike<number>;
}

export interface NabThresholdChoice {
  readonly threshold: number;
  readonly rawScore: number;
}

/**
 * NAB's threshold optimisation: one θ for the whole corpus. Rows of all files are visited in
 * descending score order and the corpus raw score is tracked as θ drops past each distinct score;
 * the best θ wins (ties go to the highest θ, as Python's max over the descending sweep does).
 */
export function optimiseThreshold(series: readonly NabScoredSeries[], profile: NabProfile): NabThresholdChoice {
  let totalRows = 0;
  let totalWindows = 0;
  for (const entry of series) {
    assertScoresMatch(entry.file, entry.anomalyScores);
    totalRows += entry.file.rowCount;
    totalWindows += entry.file.windows.length;
  }
  const scoreByEntry = new Float64Array(totalRows);
  const weightByEntry = new Float64Array(totalRows);
  const windowByEntry = new Int32Array(totalRows);
  let entryCount = 0;
  let windowOffset = 0;
  for (const { file, anomalyScores } of series) {
    const weights = rowWeights(file);
    for (let row = weights.probationRows; row < file.rowCount; row += 1) {
      const windowIndex = weights.windowIndexByRow[row]!;
      const unitWeight = weights.unitWeightByRow[row]!;
      scoreByEntry[entryCount] = anomalyScores[row]!;
      windowByEntry[entryCount] = windowIndex === -1 ? -1 : windowOffset + windowIndex;
      weightByEntry[entryCount] = unitWeight * (windowIndex === -1 ? profile.falsePositiveWeight : profile.truePositiveWeight);
      entryCount += 1;
    }
    windowOffset += file.windows.length;
  }
  const order = new Uint32Array(entryCount);
  for (let entry = 0; entry < entryCount; entry += 1) order[entry] = entry;
  order.sort((a, b) => scoreByEntry[b]! - scoreByEntry[a]!);

  const bestByWindow = new Float64Array(totalWindows).fill(-profile.falseNegativeWeight);
  let currentRaw = -profile.falseNegativeWeight * totalWindows;
  let best: NabThresholdChoice = { threshold: NAB_NO_DETECTION_THRESHOLD, rawScore: currentRaw };
  for (let position = 0; position < entryCount; position += 1) {
    const entry = order[position]!;
    const windowIndex = windowByEntry[entry]!;
    const weight = weightByEntry[entry]!;
    if (windowIndex === -1) {
      currentRaw += weight;
    } else if (weight > bestByWindow[windowIndex]!) {
      currentRaw += weight - bestByWindow[windowIndex]!;
      bestByWindow[windowIndex] = weight;
    }
    const score = scoreByEntry[entry]!;
    const nextEntry = order[position + 1];
    const isLastOfItsScore = nextEntry === undefined || scoreByEntry[nextEntry]! !== score;
    if (isLastOfItsScore && currentRaw > best.rawScore) best = { threshold: score, rawScore: currentRaw };
  }
  return best;
}

/** 100 for a perfect detector, 0 for one that never fires; negative when false positives dominate. */
export function normaliseScore(rawScore: number, windowCount: number, profile: NabProfile): number {
  const nullScore = -profile.falseNegativeWeight * windowCount;
  const perfectScore = profile.truePositiveWeight * windowCount;
  if (perfectScore === nullScore) return 0;
  return (100 * (rawScore - nullScore)) / (perfectScore - nullScore);
}

export interface NabCorpusScore {
  readonly profile: NabProfileName;
  readonly threshold: number;
  readonly rawScore: number;
  readonly normalisedScore: number;
  readonly windowCount: number;
  readonly perFile: readonly NabFileScore[];
}

/** Scores a corpus at a given θ, or at the θ NAB's optimisation picks when none is given. */
export function scoreCorpus(series: readonly NabScoredSeries[], profile: NabProfile, threshold?: number): NabCorpusScore {
  const chosenThreshold = threshold ?? optimiseThreshold(series, profile).threshold;
  const perFile = series.map(({ file, anomalyScores }) => scoreFile(file, anomalyScores, profile, chosenThreshold));
  const rawScore = perFile.reduce((sum, fileScore) => sum + fileScore.rawScore, 0);
  const windowCount = series.reduce((sum, entry) => sum + entry.file.windows.length, 0);
  return {
    profile: profile.name,
    threshold: chosenThreshold,
    rawScore,
    normalisedScore: normaliseScore(rawScore, windowCount, profile),
    windowCount,
    perFile,
  };
}
