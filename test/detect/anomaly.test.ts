import { describe, it, expect } from 'vitest';
import { AnomalyDetector, RangeNovelty, type AnomalyDetectorOptions } from '../../src/detect/anomaly.ts';
import { seededRandom } from '../../src/plan/generate.ts';

const STEP_MS = 300_000;
const START_MS = Date.UTC(2024, 0, 1);

function noisySeries(seed: number, length: number, level = 50, noise = 2): number[] {
  const random = seededRandom(seed);
  return Array.from({ length }, () => level + noise * (random() - 0.5));
}

function scoreAll(values: readonly number[], withTimestamps = true): number[] {
  const detector = new AnomalyDetector();
  return values.map((value, index) => (withTimestamps ? detector.update(value, START_MS + index * STEP_MS) : detector.update(value)));
}

function maxOf(scores: readonly number[], from: number, to: number): number {
  return Math.max(...scores.slice(from, to));
}

describe('AnomalyDetector', () => {
  it('flags a level shift within a few points and scores it above all earlier points', () => {
    const values = noisySeries(1, 3000);
    for (let index = 2000; index < values.length; index += 1) values[index]! += 10;
    const scores = scoreAll(values);
    const before = maxOf(scores, 200, 2000);
    const firstAbove = scores.findIndex((score, index) => index >= 2000 && score > before);
    expect(firstAbove).toBeGreaterThanOrEqual(2000);
    expect(firstAbove).toBeLessThan(2005);
    expect(maxOf(scores, 2000, 2005)).toBeGreaterThan(0.8);
  });

  it('flags a single spike at the spike itself', () => {
    const values = noisySeries(2, 3000);
    values[2500] = 80;
    const scores = scoreAll(values, false);
    expect(scores[2500]).toBeGreaterThan(0.8);
    expect(scores[2500]).toBeGreaterThan(maxOf(scores, 200, 2500));
  });

  it('stays quiet on stationary noise after its warm-up', () => {
    const scores = scoreAll(noisySeries(3, 5000));
    const alarms = scores.slice(750).filter((score) => score > 0.5).length;
    expect(alarms).toBeLessThan(5);
  });

  it('is deterministic: the same series gives the same scores', () => {
    const values = noisySeries(4, 2000);
    values[1500] = 100;
    expect(scoreAll(values)).toEqual(scoreAll(values));
  });

  it('returns scores in [0, 1] for wild, constant and non-finite input', () => {
    const random = seededRandom(5);
    const values: number[] = [];
    for (let index = 0; index < 4000; index += 1) {
      const choice = random();
      values.push(choice < 0.3 ? 7 : choice < 0.6 ? (random() - 0.5) * 1e12 : choice < 0.62 ? Number.NaN : random());
    }
    for (const score of [...scoreAll(values), ...scoreAll(new Array<number>(1000).fill(3))]) {
      expect(score).toBeGreaterThanOrEqual(0);
      expect(score).toBeLessThanOrEqual(1);
    }
  });

  it('learns a daily cycle from timestamps so that the cycle itself raises no alarm', () => {
    const random = seededRandom(6);
    const pointsPerDay = 288;
    const values = Array.from({ length: pointsPerDay * 10 }, (_, index) => 50 + 20 * Math.sin((2 * Math.PI * index) / pointsPerDay) + (random() - 0.5));
    const scores = scoreAll(values);
    expect(scores.slice(pointsPerDay * 3).filter((score) => score > 0.5).length).toBeLessThan(5);
  });

  it('scores a record broken after a long quiet stretch above one set while the range is still growing', () => {
    // A slow ramp sets a new maximum nearly every point; a stable series breaks its maximum once.
    const ramp = noisySeries(7, 3000, 50, 0.2).map((value, index) => value + index * 0.01);
    const stable = noisySeries(7, 3000);
    const rampScores = scoreAll(ramp, false);
    stable[2500] = 51.5; // just above the range of the noise (±1)
    const stableScores = scoreAll(stable, false);
    expect(stableScores[2500]).toBeGreaterThan(maxOf(rampScores, 1000, 3000));
    expect(stableScores[2500]).toBeGreaterThan(maxOf(stableScores, 1000, 2500));
  });
});

describe('AnomalyDetector options on the cross-validation grid', () => {
  function scoresWith(values: readonly number[], options: Partial<AnomalyDetectorOptions>): number[] {
    const detector = new AnomalyDetector(options);
    return values.map((value, index) => detector.update(value, START_MS + index * STEP_MS));
  }

  it('discounts a record set early in a stream (rangeYouthGain) but not one set late', () => {
    const values = noisySeries(8, 4000);
    values[400] = 51.1; // just above the noise (±1) while the stream is young
    values[3500] = 51.2; // the same, late
    const plain = scoresWith(values, { rangeYouthGain: 0, robustWindowPoints: 0 });
    const discounted = scoresWith(values, { rangeYouthGain: 0.4, rangeYouthReferencePoints: 3000, robustWindowPoints: 0 });
    expect(discounted[400]).toBeLessThan(plain[400]! - 0.05);
    expect(discounted[3500]).toBeCloseTo(plain[3500]!, 12);
  });

  it('lets the robust median/MAD component flag a spike inside the old range', () => {
    // A wide early excursion stretches the range; later a spike within it is only seen as unusual
    // against the recent, robust baseline.
    const values = noisySeries(9, 3000);
    for (let index = 200; index < 210; index += 1) values[index] = 90;
    values[2600] = 70;
    const withRobust = scoresWith(values, { robustWindowPoints: 288, predictionWeight: 0 });
    const without = scoresWith(values, { robustWindowPoints: 0, predictionWeight: 0 });
    expect(without[2600]).toBe(0);
    expect(withRobust[2600]).toBeGreaterThan(0.3);
  });
});

describe('RangeNovelty', () => {
  it('reports the excess relative to the span and the points since each side was extended', () => {
    const range = new RangeNovelty();
    expect(range.excess(5)).toBe(0);
    for (const value of [0, 10, 5, 5, 5]) range.learn(value);
    expect(range.excess(12)).toBeCloseTo(0.2);
    expect(range.excess(-5)).toBeCloseTo(0.5);
    expect(range.excess(7)).toBe(0);
    expect(range.quietPoints(12)).toBe(3); // maximum set by the 2nd point, 5 learned
    expect(range.quietPoints(-1)).toBe(4); // minimum set by the 1st point
    range.learn(12);
    expect(range.quietPoints(13)).toBe(0);
  });
});
