import { describe, it, expect } from 'vitest';
import { RollingMedian } from '../../src/detect/robust-window.ts';

function bruteMedian(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >>> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

describe('RollingMedian', () => {
  it('matches a brute-force median and MAD over the last `size` points', () => {
    const window = new RollingMedian(7);
    const history: number[] = [];
    let state = 12345;
    for (let step = 0; step < 200; step += 1) {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      const value = (state % 1000) / 10 + (step % 50 === 0 ? 500 : 0);
      window.push(value);
      history.push(value);
      const recent = history.slice(-7);
      const median = bruteMedian(recent);
      expect(window.median()).toBe(median);
      const deviations = recent.map((x) => Math.abs(x - median)).sort((a, b) => a - b);
      // For an odd window the MAD is the middle deviation.
      if (recent.length % 2 === 1) expect(window.mad()).toBeCloseTo(deviations[recent.length >>> 1]!, 9);
      expect(window.length).toBe(recent.length);
    }
  });

  it('is not dragged by a burst of outliers shorter than half the window', () => {
    const window = new RollingMedian(9);
    for (let step = 0; step < 9; step += 1) window.push(10 + (step % 3));
    for (let step = 0; step < 4; step += 1) window.push(1e6);
    expect(window.median()).toBeLessThan(13);
  });

  it('refuses a window too small for a median', () => {
    expect(() => new RollingMedian(2)).toThrow(/size must be an integer ≥ 3/);
  });
});
