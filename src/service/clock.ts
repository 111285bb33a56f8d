/**
 * The service's Clock: wall time in Unix milliseconds, so journal times mean the same across
 * restarts and instances. `speed` > 1 (tests, demos) runs it faster from `originMs` on, together
 * with a twin on the same clock.
 */
import type { Clock, TimerHandle } from '../control/ports.ts';

export class WallClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;
  private readonly originWallMs: number;

  constructor(
    private readonly speed = 1,
    private readonly wallNowMs: () => number = Date.now,
    private readonly originMs = wallNowMs(),
  ) {
    if (!(speed > 0)) throw new Error('WallClock: speed must be positive');
    this.originWallMs = wallNowMs();
  }

  nowMs(): number {
    return this.originMs + (this.wallNowMs() - this.originWallMs) * this.speed;
  }

  at(atMs: number, callback: () => void): TimerHandle {
    const id = this.nextId++;
    const delayMs = Math.max(0, (atMs - this.nowMs()) / this.speed);
    const timer = setTimeout(() => {
      this.timers.delete(id);
      callback();
    }, delayMs);
    this.timers.set(id, timer);
    return { id };
  }

  cancel(handle: TimerHandle): void {
    const timer = this.timers.get(handle.id);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(handle.id);
  }

  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
