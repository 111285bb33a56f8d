/**
 * What the controller remembers of its copies' health: each copy's health changes over a bounded
 * window (so an intermittent failure is judged by the time it spent failing, not by its longest
 * streak), its last reported latency, and each VM's restarts for failing its health check (so a
 * crash-looping guest is restarted with backoff, and moved off a host where it keeps failing).
 * The controller writes it from the substrate's events; decide() reads it through HealthView. No
 * I/O, no clock: every time is an argument.
 */
import type { InstanceObservation } from '../ports/index.ts';
import type { ControllerTimings } from './timings.ts';

/** How a VM that keeps failing its health check is restarted. */
export interface RestartPolicy {
  /** Restarts for failing its health check, within crashLoopResetMs of each other. */
  readonly failures: number;
  /** It does not restart before then (backoff). */
  readonly notBeforeMs: number;
  /** Hosts it failed on crashLoopMoveAfter times or more: its restart goes elsewhere. */
  readonly avoid: readonly string[];
}

/** What decide() reads of the health history. */
export interface HealthView {
  /** How long the copy failed its health check within [fromMs, nowMs]. */
  unhealthyMs(instanceId: string, fromMs: number, nowMs: number): number;
  /** Null for a VM that has not been restarted for its health lately. */
  restartPolicy(vm: string, nowMs: number): RestartPolicy | null;
  /**
   * Why copies are failing across the estate at once (a shared cause: a slow datastore, the
   * network), or null. Restarting them one by one would not help and would make a restart storm.
   */
  readonly sharedFailure?: string | null;
}

/** One copy's health changes, oldest first, and since when it is watched. */
export interface CopyHealth {
  readonly vm: string;
  host: string;
  role: InstanceObservation['role'];
  datastore: string;
  running: boolean;
  /** When it was first seen running on its current host. */
  runningSinceMs: number | null;
  readonly changes: { readonly atMs: number; readonly healthy: boolean }[];
  latencyMs: number | undefined;
  /** Since when its probes have answered slower than grayLatencyMs (null: they do not). */
  slowSinceMs: number | null;
}

/** Changes kept per copy: enough for any window at the fastest probe; older ones are dropped. */
const MAX_CHANGES = 512;

export class HealthHistory implements HealthView {
  readonly copies = new Map<string, CopyHealth>();
  private readonly restarts = new Map<string, { host: string; atMs: number }[]>();
  /** Copies failing or slow now, and when the last sickness ended: a healthy estate is not searched at every pass. */
  private readonly sickNow = new Set<string>();
  private lastSickEndMs = Number.NEGATIVE_INFINITY;
  /** When each copy that was sick last stopped being so (dropped once older than any window asked about). */
  private readonly sickEndedMs = new Map<string, number>();

  constructor(private readonly timings: ControllerTimings) {}

  /** An observation of a copy (from the substrate's snapshot or an event). */
  observe(instance: InstanceObservation, nowMs: number): void {
    let copy = this.copies.get(instance.id);
    if (copy === undefined) {
      copy = { vm: instance.vm, host: instance.host, role: instance.role, datastore: instance.datastore, running: false, runningSinceMs: null, changes: [], latencyMs: undefined, slowSinceMs: null };
      this.copies.set(instance.id, copy);
    }
    const running = instance.state === 'running';
    if (copy.host !== instance.host || (running && !copy.running)) {
      // A copy that moved, or came up, starts a new record: its past was another host's.
      copy.changes.length = 0;
      copy.runningSinceMs = running ? nowMs : null;
      copy.slowSinceMs = null;
    }
    copy.host = instance.host;
    copy.role = instance.role;
    copy.datastore = instance.datastore;
    copy.running = running;
    copy.latencyMs = instance.latencyMs;
    const slow = instance.latencyMs !== undefined && instance.latencyMs >= this.timings.grayLatencyMs;
    if (!slow) copy.slowSinceMs = null;
    else copy.slowSinceMs ??= nowMs;
    this.noteSickness(instance.id, running && (!instance.healthy || copy.slowSinceMs !== null), nowMs);
    if (!running) return;
    const last = copy.changes[copy.changes.length - 1];
    if (last === undefined || last.healthy !== instance.healthy) copy.changes.push({ atMs: nowMs, healthy: instance.healthy });
    if (copy.changes.length > MAX_CHANGES) copy.changes.splice(0, copy.changes.length - MAX_CHANGES);
  }

  removed(instanceId: string): void {
    this.copies.delete(instanceId);
    this.noteSickness(instanceId, false, this.lastSickEndMs);
    this.sickEndedMs.delete(instanceId);
  }

  /** Copies failing or slow now. */
  get sick(): ReadonlySet<string> {
    return this.sickNow;
  }

  /**
   * The copies that were failing or slow at some time after `sinceMs` (or are now): any other
   * copy had no unhealthy time since then, and is not slow. Times only move forward: what ended
   * before `sinceMs` is forgotten.
   */
  sickSince(sinceMs: number): Set<string> {
    const ids = new Set(this.sickNow);
    for (const [id, endedMs] of this.sickEndedMs) {
      if (endedMs < sinceMs) this.sickEndedMs.delete(id);
      else ids.add(id);
    }
    return ids;
  }

  /** Whether any copy is failing or slow now, or was within `windowMs` (else there is no evidence to weigh). */
  anySickSince(nowMs: number, windowMs: number): boolean {
    return this.sickNow.size > 0 || nowMs - this.lastSickEndMs <= windowMs;
  }

  private noteSickness(instanceId: string, sick: boolean, nowMs: number): void {
    if (sick) this.sickNow.add(instanceId);
    else if (this.sickNow.delete(instanceId)) {
      this.lastSickEndMs = Math.max(this.lastSickEndMs, nowMs);
      this.sickEndedMs.set(instanceId, nowMs);
    }
  }

  unhealthyMs(instanceId: string, fromMs: number, nowMs: number): number {
    const copy = this.copies.get(instanceId);
    if (copy === undefined) return 0;
    let total = 0;
    const changes = copy.changes;
    for (let index = 0; index < changes.length; index++) {
      const change = changes[index]!;
      if (change.healthy) continue;
      const endMs = changes[index + 1]?.atMs ?? nowMs;
      const startMs = Math.max(fromMs, change.atMs);
      if (endMs > startMs) total += endMs - startMs;
    }
    return total;
  }

  /** A VM was stopped for failing its health check on `host`. */
  noteHealthRestart(vm: string, host: string, nowMs: number): void {
    const recent = (this.restarts.get(vm) ?? []).filter((restart) => nowMs - restart.atMs < this.timings.crashLoopResetMs);
    recent.push({ host, atMs: nowMs });
    this.restarts.set(vm, recent);
  }

  restartPolicy(vm: string, nowMs: number): RestartPolicy | null {
    const all = this.restarts.get(vm);
    if (all === undefined || all.length === 0) return null;
    const last = all[all.length - 1]!;
    // Forgotten once it has run without a health restart for crashLoopResetMs.
    if (nowMs - last.atMs >= this.timings.crashLoopResetMs) return null;
    const failures = all.length;
    const backoffMs = failures < 2 ? 0 : Math.min(this.timings.crashLoopBackoffMaxMs, this.timings.crashLoopBackoffBaseMs * 2 ** (failures - 2));
    const perHost = new Map<string, number>();
    for (const restart of all) perHost.set(restart.host, (perHost.get(restart.host) ?? 0) + 1);
    const avoid = [...perHost].filter(([, count]) => count >= this.timings.crashLoopMoveAfter).map(([host]) => host).sort();
    return { failures, notBeforeMs: last.atMs + backoffMs, avoid };
  }
}
