/**
 * The seeds of a storm run: a pure function of a base seed, so a CI run of 10,000 storms is the same
 * 10,000 storms every time, and each one replays alone with `tomaranai storm FILE --seed S`.
 */

/** The `index`-th seed of the run whose base seed is `baseSeed` (murmur3's finaliser over both). */
export function stormSeed(baseSeed: number, index: number): number {
  let h = (Math.imul(baseSeed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The first `count` seeds of the run of `baseSeed`, in order. */
export function stormSeeds(baseSeed: number, count: number): number[] {
  return Array.from({ length: count }, (_, index) => stormSeed(baseSeed, index));
}
