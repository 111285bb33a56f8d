/**
 * Stateless noise for the twin's telemetry: a deterministic uniform, Gaussian or Poisson draw for
 * (seed, VM, window, stream), so telemetry needs no state and no draw shifts another.
 */

/** A deterministic uniform in [0, 1) for (seed, vm, window, stream). */
export function noise(seed: number, vm: string, windowIndex: number, stream: number): number {
  let h = (seed ^ Math.imul(windowIndex, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  for (let index = 0; index < vm.length; index++) h = Math.imul(h ^ vm.charCodeAt(index), 0x01000193) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

export function gaussian(seed: number, vm: string, windowIndex: number, stream: number): number {
  const u = Math.max(1e-12, noise(seed, vm, windowIndex, stream));
  const v = noise(seed, vm, windowIndex, stream + 100);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Inverse CDF of a Poisson draw; means above 50 use a rounded normal (the twin's counts need no more). */
export function poisson(mean: number, uniform: number): number {
  if (mean <= 0) return 0;
  if (mean > 50) {
    // The normal quantile by its logistic approximation: plenty for a twin's counts.
    const z = Math.log(uniform / (1 - uniform)) / 1.702;
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * z));
  }
  let k = 0;
  let p = Math.exp(-mean);
  let cumulative = p;
  while (uniform > cumulative && k < 1000) {
    k += 1;
    p *= mean / k;
    cumulative += p;
  }
  return k;
}
