import { describe, it, expect } from 'vitest';
import { SortedRows, crossValidate, cvGroupOf, foldPartition, nabDirectoryGroupOf } from '../../src/detect/nab-cv.ts';
import { NAB_PROFILES, optimiseThreshold, nabProfile, type NabFile, type NabScoredSeries } from '../../src/detect/nab-scorer.ts';
import { loadNabCorpus, loadPublishedAnomalyScores, resolveNabDirectory } from '../../scripts/eval-nab.ts';

const standard = nabProfile('standard');

/** A 1000-row file with one window (rows 500–599) and the given scores at the given rows. */
function series(name: string, scoresAt: Record<number, number>): NabScoredSeries {
  const file: NabFile = { name, rowCount: 1000, windows: [{ startIndex: 500, endIndex: 599 }] };
  const anomalyScores = new Float64Array(1000);
  for (const [row, score] of Object.entries(scoresAt)) anomalyScores[Number(row)] = score;
  return { file, anomalyScores };
}

describe('cross-validation groups', () => {
  it('groups a file by its NAB directory and the first two words of its name', () => {
    expect(cvGroupOf('realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv')).toBe('realAWSCloudwatch/ec2_cpu');
    expect(cvGroupOf('realKnownCause/nyc_taxi.csv')).toBe('realKnownCause/nyc_taxi');
    expect(cvGroupOf('realKnownCause/rogue_agent_key_hold.csv')).toBe(cvGroupOf('realKnownCause/rogue_agent_key_updown.csv'));
    expect(nabDirectoryGroupOf('realKnownCause/nyc_taxi.csv')).toBe('realKnownCause');
  });

  it('never trains a fold on a file of the group it leaves out (shared NAB files)', () => {
    const corpus = loadNabCorpus(resolveNabDirectory());
    const groups = corpus.map((entry) => cvGroupOf(entry.file.name));
    const partition = foldPartition(groups);
    expect(partition.length).toBe(12);
    const heldOutOnce = new Array<number>(corpus.length).fill(0);
    for (const fold of partition) {
      for (const index of fold.training) expect(groups[index]).not.toBe(fold.group);
      for (const index of fold.heldOut) {
        expect(groups[index]).toBe(fold.group);
        heldOutOnce[index]! += 1;
      }
      expect(fold.training.length + fold.heldOut.length).toBe(corpus.length);
    }
    expect(heldOutOnce.every((count) => count === 1)).toBe(true);
  });
});

describe('SortedRows', () => {
  it('gives optimiseThreshold\'s θ and raw score on any subset of files (published ARTime scores)', () => {
    const directory = resolveNabDirectory();
    const corpus = loadNabCorpus(directory);
    const series = corpus.map((entry) => ({ file: entry.file, anomalyScores: loadPublishedAnomalyScores(directory, 'ARTime', entry.file.name) }));
    const sorted = new SortedRows(series);
    const subsets = [corpus.map((_, index) => index), [0, 3, 7, 19], [12], [1, 2, 5, 8, 13, 14, 15, 16]];
    for (const subset of subsets) {
      for (const profile of NAB_PROFILES) {
        const expected = optimiseThreshold(subset.map((index) => series[index]!), profile);
        const actual = sorted.optimise(subset, profile);
        expect(actual.threshold).toBe(expected.threshold);
        expect(actual.rawScore).toBeCloseTo(expected.rawScore, 9);
      }
    }
  });
});

describe('crossValidate', () => {
  // Group A: the window is hit at score 0.6 and a false alarm scores 0.3. Group B: the window is
  // hit at 0.9 and thirty false alarms score 0.6. Trained on A alone θ is 0.6; on A and B together
  // it is 0.9. So a fold that leaves B out but peeks at it picks 0.9.
  const a = series('g/a_one_1.csv', { 520: 0.6, 300: 0.3 });
  const b = series('h/b_two_1.csv', {
    510: 0.9,
    ...Object.fromEntries(Array.from({ length: 30 }, (_, k) => [700 + k * 5, 0.6])),
  });
  const groups = ['g/a_one', 'h/b_two'];

  it('chooses each fold\'s threshold on the training groups only', () => {
    expect(optimiseThreshold([a, b], standard).threshold).toBe(0.9);
    const result = crossValidate([[a, b]], groups);
    const leaveBOut = result.folds.find((fold) => fold.heldOutGroup === 'h/b_two')!;
    expect(leaveBOut.trainingIndices).toEqual([0]);
    expect(leaveBOut.thresholds.standard).toBe(0.6);
    // Scored at 0.6, B's thirty false alarms count against it: a leaky fold would hide them.
    expect(leaveBOut.heldOutRaw.standard).toBeLessThan(0);
  });

  it('chooses each fold\'s candidate on the training groups only', () => {
    // Candidate 1 is silent on A (misses its window) but perfect on B; candidate 0 the reverse.
    const silentA = series('g/a_one_1.csv', {});
    const perfectB = series('h/b_two_1.csv', { 500: 0.9 });
    const silentB = series('h/b_two_1.csv', {});
    const result = crossValidate([[a, silentB], [silentA, perfectB]], groups);
    expect(result.folds.find((fold) => fold.heldOutGroup === 'h/b_two')!.candidateIndex).toBe(0);
    expect(result.folds.find((fold) => fold.heldOutGroup === 'g/a_one')!.candidateIndex).toBe(1);
    // Each group is scored by the candidate that is silent on it: both windows missed.
    expect(result.crossValidated.standard).toBeCloseTo(0, 9);
  });

  it('ships the candidate most folds chose and the median of its fold thresholds', () => {
    const c = series('k/c_three_1.csv', { 530: 0.7 });
    const result = crossValidate([[a, b, c]], ['g/a_one', 'h/b_two', 'k/c_three']);
    expect(result.shippedCandidateIndex).toBe(0);
    const foldThresholds = result.folds.map((fold) => fold.thresholds.standard).sort();
    expect(result.shippedThresholds.standard).toBe(foldThresholds[1]);
  });

  it('refuses a single group and mismatched candidates', () => {
    expect(() => crossValidate([[a]], ['g/a_one'])).toThrow(/two groups/);
    expect(() => crossValidate([[a, b], [a]], groups)).toThrow(/candidate 1 has 1 series for 2 groups/);
  });
});

describe('crossValidate on the shared NAB files', () => {
  it('gives a fold the same candidate and θ whatever its held-out group\'s scores are (no leak)', () => {
    const directory = resolveNabDirectory();
    const corpus = loadNabCorpus(directory);
    const groups = corpus.map((entry) => cvGroupOf(entry.file.name));
    // The published detectors' outputs stand in for four candidates.
    const candidates = ['ARTime', 'numenta', 'contextOSE', 'windowedGaussian'].map((detector) =>
      corpus.map((entry) => ({ file: entry.file, anomalyScores: loadPublishedAnomalyScores(directory, detector, entry.file.name) })),
    );
    const original = crossValidate(candidates, groups);
    for (const heldOutGroup of ['realAWSCloudwatch/ec2_cpu', 'realKnownCause/nyc_taxi', 'realKnownCause/rogue_agent']) {
      const before = original.folds.find((fold) => fold.heldOutGroup === heldOutGroup)!;
      // On the held-out group, make a candidate the fold did not choose find every window at the
      // first row, and every other candidate alarm on every row outside the windows: if that group
      // fed the choice or the θ, the fold would now choose differently.
      const boosted = (before.candidateIndex + 1) % candidates.length;
      const altered = candidates.map((series, candidate) =>
        series.map((entry, index) => {
          if (groups[index] !== heldOutGroup) return entry;
          const scores = new Float64Array(entry.file.rowCount).fill(candidate === boosted ? 0 : 0.999);
          for (const window of entry.file.windows) {
            scores.fill(0, window.startIndex, window.endIndex + 1);
            if (candidate === boosted) scores[window.startIndex] = 0.999;
          }
          return { file: entry.file, anomalyScores: scores };
        }),
      );
      const after = crossValidate(altered, groups).folds.find((fold) => fold.heldOutGroup === heldOutGroup)!;
      expect(after.candidateIndex).toBe(before.candidateIndex);
      expect(after.thresholds).toEqual(before.thresholds);
    }
  });
});

describe('the shipped anomaly detector on the shared NAB files', () => {
  it('ships the cross-validated choice of parameters and thresholds, and scores the same on every run', async () => {
    const { crossValidateDetector } = await import('../../scripts/eval-nab-cv.ts');
    const { runDetector } = await import('../../scripts/eval-nab.ts');
    const corpus = loadNabCorpus(resolveNabDirectory());
    const report = crossValidateDetector(corpus);
    expect(report.shippedIsCvChoice).toBe(true);
    // Every fold's choice is scored only on its held-out files, each file exactly once.
    const scoredFiles = report.result.folds.flatMap((fold) => fold.heldOutIndices).sort((x, y) => x - y);
    expect(scoredFiles).toEqual(corpus.map((_, index) => index));
    const first = runDetector(corpus[0]!);
    expect(Array.from(runDetector(corpus[0]!))).toEqual(Array.from(first));
  }, 180_000);
});
