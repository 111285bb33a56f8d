/**
 * Seeded randomness. One seed per run; each consumer forks its own stream by label, so a new draw
 * in one place does not shift every other stream (as Temporal's SDK does).
 */

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, bound). */
  int(bound: number): number;
  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number;
  pick<T>(items: readonly T[]): T;
  fork(label: string): Random;
}

function hash32(text: string, seed: number): number {
  let h = seed ^ 0x9e3779b9;
  for (let index = 0; index < text.length; index++) {
    h = Math.imul(h ^ text.charCodeAt(index), 0x85ebca6b);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** sfc32: small, fast, and good enough for simulation (passes PractRand to 2^40+). */
export function createRandom(seed: number, label = 'root'): Random {
  let a = hash32(label, seed);
  let b = hash32(`${label}/b`, seed);
  let c = hash32(`${label}/c`, seed);
  let d = 1;
  const nextUint = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let warm = 0; warm < 12; warm++) nextUint();
  const random: Random = {
    next: () => nextUint() / 4294967296,
    int: (bound) => Math.floor((nextUint() / 4294967296) * bound),
    exponential: (mean) => -Math.log(1 - nextUint() / 4294967296) * mean,
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor((nextUint() / 4294967296) * items.length)]!;
    },
    fork: (child) => createRandom(seed, `${label}/${child}`),
  };
  return random;
}
