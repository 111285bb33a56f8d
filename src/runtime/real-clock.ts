/**
 * Real time as a Clock, for the controller (and the twin, when it runs as a live service).
 * `speed` > 1 runs the clock faster than the wall (a demo or an accelerated twin). The clock reads
 * `originMs` at its creation: 0 (the default) makes journal times read in seconds from the start,
 * like the simulation's; the service passes the wall time, so times mean the same across restarts
 * and instances.
 */
import type { Clock, TimerHandle } from '../ports/index.ts';

export class RealClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextId = 1;
  private readonly startedWallMs: number;

  constructor(
    private readonly speed = 1,
    private readonly wallNowMs: () => number = () => performance.now(),
    private originMs = 0,
  ) {
    if (!(speed > 0)) throw new Error('RealClock: speed must be positive');
    this.startedWallMs = wallNowMs();
  }

  nowMs(): number {
    return this.originMs + (this.wallNowMs() - this.startedWallMs) * this.speed;
  }

  /**
   * Moves the clock forward to `floorMs` if it reads less: time never goes back for the readers
   * of what it stamped. A sped-up service that restarts resumes from its journal's last time, not
   * from the wall (it ran ahead of the wall before). Pending timers fire late, never early.
   */
  notBefore(floorMs: number): void {
    const behind = floorMs - this.nowMs();
    if (behind > 0) this.originMs += behind;
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

  /** Cancels every pending timer (graceful shutdown). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
