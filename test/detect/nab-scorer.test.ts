import { describe, it, expect } from 'vitest';
import {
  NAB_PROFILES,
  nabProfile,
  normaliseScore,
  optimiseThreshold,
  probationRowCount,
  rowWeights,
  scaledSigmoid,
  scoreCorpus,
  scoreFile,
  windowsFromAnomalyIndices,
  type NabFile,
} from '../../src/detect/nab-scorer.ts';
import { loadNabCorpus, loadPublishedAnomalyScores, loadPublishedScores, resolveNabDirectory } from '../../scripts/eval-nab.ts';

const nabDirectory = resolveNabDirectory();
const corpus = loadNabCorpus(nabDirectory);
const standard = nabProfile('standard');

describe('NAB scaled sigmoid', () => {
  it('runs from about +0.987 at -1 through 0 at 0 to about -0.987 at +1', () => {
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661, 5);
    expect(scaledSigmoid(0)).toBe(0);
    expect(scaledSigmoid(1)).toBeCloseTo(-0.98661, 5);
  });
  it('is exactly -1 beyond three window lengths, and not at three', () => {
    expect(scaledSigmoid(3.0001)).toBe(-1);
    expect(scaledSigmoid(3)).toBeGreaterThan(-1);
  });
});

describe('NAB windows and probation', () => {
  it('caps probation at 750 rows and otherwise takes 15 %', () => {
    expect(probationRowCount(4032)).toBe(604);
    expect(probationRowCount(22695)).toBe(750);
  });
  it('centres windows on anomalies, clips them at the file ends and merges overlaps', () => {
    expect(windowsFromAnomalyIndices(1000, [500])).toEqual([{ startIndex: 450, endIndex: 550 }]);
    expect(windowsFromAnomalyIndices(1000, [10])).toEqual([{ startIndex: 0, endIndex: 60 }]);
    expect(windowsFromAnomalyIndices(1000, [990])).toEqual([{ startIndex: 940, endIndex: 999 }]);
    expect(windowsFromAnomalyIndices(1000, [500, 520])).toEqual([{ startIndex: 475, endIndex: 545 }]);
    expect(windowsFromAnomalyIndices(1000, [])).toEqual([]);
  });
  it('weighs the first window row fully, the last near zero, and false alarms by distance', () => {
    const file: NabFile = { name: 'synthetic', rowCount: 100, windows: [{ startIndex: 40, endIndex: 59 }] };
    const weights = rowWeights(file);
    expect(weights.unitWeightByRow[40]).toBeCloseTo(1, 12);
    expect(weights.unitWeightByRow[59]).toBeGreaterThan(0);
    expect(weights.unitWeightByRow[59]).toBeLessThan(0.3);
    expect(weights.unitWeightByRow[39]).toBe(-1);
    // A false alarm just after a window is barely punished; far from it, fully.
    expect(weights.unitWeightByRow[60]).toBeLessThan(0);
    expect(weights.unitWeightByRow[60]).toBeGreaterThan(-0.2);
    expect(weights.unitWeightByRow[99]).toBeLessThan(-0.999);
  });
  it('counts only the earliest detection in a window and ignores detections in probation', () => {
    const file: NabFile = { name: 'synthetic', rowCount: 100, windows: [{ startIndex: 40, endIndex: 59 }] };
    const scores = new Float64Array(100);
    scores[5] = 1; // in probation: neither true nor false positive
    scores[45] = 1;
    scores[50] = 1;
    const result = scoreFile(file, scores, standard, 0.5);
    expect(result.windowsDetected).toBe(1);
    expect(result.falsePositiveRows).toBe(0);
    expect(result.rawScore).toBeCloseTo(rowWeights(file).unitWeightByRow[45]!, 12);
  });
  it('normalises never-firing to 0 and a perfect detector to 100', () => {
    const file: NabFile = { name: 'synthetic', rowCount: 100, windows: [{ startIndex: 40, endIndex: 59 }] };
    const silent = new Float64Array(100);
    const perfect = new Float64Array(100);
    perfect[40] = 1;
    for (const profile of NAB_PROFILES) {
      expect(scoreCorpus([{ file, anomalyScores: silent }], profile, 0.5).normalisedScore).toBeCloseTo(0, 12);
      expect(scoreCorpus([{ file, anomalyScores: perfect }], profile, 0.5).normalisedScore).toBeCloseTo(100, 12);
      expect(normaliseScore(-profile.falseNegativeWeight, 1, profile)).toBe(0);
    }
  });
  it('picks the threshold that maximises the corpus score', () => {
    const file: NabFile = { name: 'synthetic', rowCount: 100, windows: [{ startIndex: 40, endIndex: 59 }] };
    const scores = new Float64Array(100);
    scores[41] = 0.6;
    scores[80] = 0.9; // a false positive that outranks the hit
    const choice = optimiseThreshold([{ file, anomalyScores: scores }], standard);
    expect(choice.threshold).toBe(0.6);
    expect(choice.rawScore).toBeCloseTo(scoreFile(file, scores, standard, 0.6).rawScore, 12);
  });
});

describe('NAB scorer against NAB\'s published results', () => {
  for (const detector of ['numenta', 'ARTime']) {
    it(`reproduces ${detector}'s published per-file raw scores at its published threshold`, () => {
      for (const profile of NAB_PROFILES) {
        const published = loadPublishedScores(nabDirectory, detector, profile.name);
        let rawSum = 0;
        let windowCount = 0;
        for (const series of corpus) {
          const entry = published.get(series.file.name)!;
          const anomalyScores = loadPublishedAnomalyScores(nabDirectory, detector, series.file.name);
          const ours = scoreFile(series.file, anomalyScores, profile, entry.threshold);
          expect(Math.abs(ours.rawScore - entry.rawScore)).toBeLessThan(1e-6);
          rawSum += ours.rawScore;
          windowCount += series.file.windows.length;
        }
        const expected = { numenta: { standard: 62.25 }, ARTime: { standard: 63.99 } }[detector]!;
        if (profile.name === 'standard') expect(normaliseScore(rawSum, windowCount, profile)).toBeCloseTo(expected.standard, 1);
      }
    });
  }
});
