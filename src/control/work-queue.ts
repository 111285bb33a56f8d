/**
 * The controller's work queue, in the manner of a Kubernetes controller's: keys, not events. A
 * key names one thing acted on (a host to fence, a VM's primary to start, an instance to stop, a
 * VM to migrate); while its entry is in flight nothing else acts on that thing, and every entry
 * has a deadline, so work that never completes is noticed. A refused action stays in the queue
 * for a backoff that doubles with every refusal in a row. Keys held for a security case (custody)
 * keep decide() away from a VM under investigation.
 *
 * The in-flight entries are the controller state's `inFlight` map itself: decide() and the
 * drills read it; only this queue writes it.
 */
import type { InstanceRole } from '../ports/index.ts';
import type { InFlight } from './state.ts';

export type WorkKey = `fence:${string}` | `start:${string}:${InstanceRole}` | `stop:${string}` | `promote:${string}` | `migrate:${string}`;

/** A key a worker is busy with, outside the in-flight entries decide() reads: a security case's step. */
export type WorkerKey = `security:${string}`;

export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

export class WorkQueue {
  /** Refusals in a row per key, for its backoff; cleared by a success. */
  private readonly refusals = new Map<WorkKey, number>();
  /** Keys a worker is busy with (a security case's step, whose reads and calls may be asynchronous). */
  private readonly processing = new Set<WorkerKey>();

  constructor(
    private readonly inFlight: Map<string, InFlight>,
    private readonly backoff: Backoff,
  ) {}

  has(key: WorkKey): boolean {
    return this.inFlight.has(key);
  }

  /** The work on `key` is sent at `nowMs` and given up at `deadlineMs`; `host` is the host it acts on, if one. */
  begin(key: WorkKey, nowMs: number, deadlineMs: number, host?: string): void {
    this.inFlight.set(key, host === undefined ? { issuedAtMs: nowMs, deadlineMs } : { issuedAtMs: nowMs, deadlineMs, host });
  }

  /**
   * `host` is fenced: a start or promotion sent to it can no longer complete, so its key is free now
   * rather than at its deadline (a boot cut by a power loss once held a priority-1 restart 215 s).
   */
  settleOnHost(host: string): void {
    for (const [key, flight] of this.inFlight) {
      if (flight.host === host && (key.startsWith('start:') || key.startsWith('promote:')) && !this.refusals.has(key as WorkKey)) this.inFlight.delete(key);
    }
  }

  /** The substrate showed the result (or the thing is gone): the key is free. */
  settle(key: WorkKey): void {
    this.inFlight.delete(key);
  }

  /** The substrate accepted: the next refusal of this key starts its backoff afresh. */
  accepted(key: WorkKey): void {
    this.refusals.delete(key);
  }

  /** The substrate refused: the key stays busy for its backoff, which is returned. */
  refused(key: WorkKey, nowMs: number): number {
    const count = (this.refusals.get(key) ?? 0) + 1;
    this.refusals.set(key, count);
    // The exponent is bounded only so that it cannot overflow; maxMs is the real bound.
    const waitMs = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(count - 1, 30));
    this.inFlight.set(key, { issuedAtMs: nowMs, deadlineMs: nowMs + waitMs });
    return waitMs;
  }

  /** Holds `key` (a custody key) until `untilMs`, renewed by every pass while the case runs. */
  hold(key: WorkKey, nowMs: number, untilMs: number): void {
    this.inFlight.set(key, { issuedAtMs: nowMs, deadlineMs: untilMs });
  }

  /**
   * Drops every entry whose deadline has come; returns those that were work in flight (not a
   * backoff after a refusal), with when they were sent: they timed out.
   */
  expire(nowMs: number): { key: string; issuedAtMs: number }[] {
    const timedOut: { key: string; issuedAtMs: number }[] = [];
    for (const [key, flight] of this.inFlight) {
      if (flight.deadlineMs > nowMs) continue;
      this.inFlight.delete(key);
      if (!this.refusals.has(key as WorkKey)) timedOut.push({ key, issuedAtMs: flight.issuedAtMs });
    }
    return timedOut;
  }

  /** The earliest deadline in the queue (a pass is due then), or `atMs` if that is earlier. */
  nextDeadlineMs(atMs: number | null): number | null {
    let next = atMs;
    for (const flight of this.inFlight.values()) if (next === null || flight.deadlineMs < next) next = flight.deadlineMs;
    return next;
  }

  /** Marks a worker busy with `key`; false when one already is. */
  startWork(key: WorkerKey): boolean {
    if (this.processing.has(key)) return false;
    this.processing.add(key);
    return true;
  }

  endWork(key: WorkerKey): void {
    this.processing.delete(key);
  }
}
