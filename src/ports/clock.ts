/** Time for the core: the twin's scheduler is one Clock, real time (runtime/real-clock.ts) another. */
export type TimerHandle = { readonly id: number };

/** Time for the core. The twin's scheduler is one Clock, real time is another. */
export interface Clock {
  nowMs(): number;
  /** Runs `callback` once the clock reaches `atMs` (at once, asynchronously, if it already has). */
  at(atMs: number, callback: () => void): TimerHandle;
  cancel(handle: TimerHandle): void;
}
