// Rolling median and median absolute deviation (MAD) over the last `size` points: a baseline that
// a burst of outliers cannot drag (up to half the window), used for robust z-scores.

export class RollingMedian {
  private readonly ring: Float64Array;
  private readonly sorted: number[] = [];
  private next = 0;
  private count = 0;

  constructor(private readonly size: number) {
    if (!(Number.isInteger(size) && size >= 3)) throw new Error('RollingMedian: size must be an integer ≥ 3');
    this.ring = new Float64Array(size);
  }

  get length(): number {
    return this.count;
  }

  private static lowerBound(sorted: readonly number[], value: number): number {
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (sorted[middle]! < value) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  push(value: number): void {
    if (this.count === this.size) {
      const old = this.ring[this.next]!;
      this.sorted.splice(RollingMedian.lowerBound(this.sorted, old), 1);
    } else {
      this.count += 1;
    }
    this.ring[this.next] = value;
    this.next = (this.next + 1) % this.size;
    this.sorted.splice(RollingMedian.lowerBound(this.sorted, value), 0, value);
  }

  median(): number {
    const n = this.sorted.length;
    if (n === 0) return Number.NaN;
    const middle = n >>> 1;
    return n % 2 === 1 ? this.sorted[middle]! : (this.sorted[middle - 1]! + this.sorted[middle]!) / 2;
  }

  /** Median of |x − median| over the window, found by merging outward from the median. */
  mad(): number {
    const sorted = this.sorted;
    const n = sorted.length;
    if (n === 0) return Number.NaN;
    const centre = this.median();
    let right = RollingMedian.lowerBound(sorted, centre);
    let left = right - 1;
    const target = n >>> 1;
    let last = 0;
    for (let taken = 0; taken <= target; taken += 1) {
      const leftDistance = left >= 0 ? centre - sorted[left]! : Infinity;
      const rightDistance = right < n ? sorted[right]! - centre : Infinity;
      if (leftDistance <= rightDistance) {
        last = leftDistance;
        left -= 1;
      } else {
        last = rightDistance;
        right += 1;
      }
    }
    return last;
  }
}
