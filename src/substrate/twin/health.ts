/**
 * Gray failures on the twin: what makes a copy answer its health check late, or not at all, while
 * its host's heartbeats are fine — a slow host (a fraction of its CPU and disk speed), a slow
 * datastore, a health pattern (failing a while, passing a while), a guest that crashes a while
 * after each boot on one host. A copy under such a fault is probed on its service's interval for
 * as long as the fault lasts (other copies are probed only when something changes, as before), and
 * its probe reports the time the answer took.
 *
 * The model, stated plainly so that a drill's numbers can be read: a probe answers in
 * BASE_LATENCY_MS divided by the host's speed, plus the datastore's extra latency, jittered; a
 * host at speed s answers a probe in time with probability s (5 % speed: 95 % of probes fail); an
 * answer slower than PROBE_TIMEOUT_MS is a failure.
 */
import type { Random } from '../../ports/random.ts';
import type { TwinHosts } from './hosts.ts';
import type { TwinInstance, TwinState } from './state.ts';

const BASE_LATENCY_MS = 20;
const PROBE_TIMEOUT_MS = 2_000;

export interface ProbeAnswer {
  readonly ok: boolean;
  readonly latencyMs: number;
}

export class TwinHealth {
  private readonly jitter: Random;

  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    random: Random,
  ) {
    // Its own fork: a drill without health faults draws nothing from it, and shifts no other stream.
    this.jitter = random.fork('health-faults');
    hosts.probeFault = (instance) => this.probe(instance);
    hosts.onProbed = (instance) => this.watch(instance);
    hosts.sickHook = (instance) => this.sick(instance);
  }

  /** Whether a health fault bears on this copy now (so it is probed on its interval). */
  affected(instance: TwinInstance): boolean {
    const faults = this.state.health;
    const crash = faults.crashLoops.get(instance.vm);
    return (
      faults.slowdowns.has(instance.host) ||
      faults.patterns.has(instance.vm) ||
      faults.datastoreLatencyMs.has(instance.datastore) ||
      (crash !== undefined && crash.host === instance.host)
    );
  }

  /**
   * Truth for the auditor: the copy does not really serve — its guest crashed, its pattern is in a
   * failing phase, or its host runs below half speed (most of its answers come too late).
   */
  sick(instance: TwinInstance): boolean {
    if (!this.affected(instance)) return false;
    const faults = this.state.health;
    const now = this.state.clock.nowMs();
    if ((faults.slowdowns.get(instance.host) ?? 1) < 0.5) return true;
    const pattern = faults.patterns.get(instance.vm);
    if (pattern !== undefined && (now - pattern.sinceMs) % (pattern.failMs + pattern.passMs) < pattern.failMs) return true;
    const crash = faults.crashLoops.get(instance.vm);
    return crash !== undefined && crash.host === instance.host && instance.runningSinceMs !== null && now - instance.runningSinceMs >= crash.afterMs;
  }

  /** The fault's part of one probe of a running copy, or null when no health fault bears on it. */
  probe(instance: TwinInstance): ProbeAnswer | null {
    if (!this.affected(instance)) {
      instance.latencyMs = undefined;
      return null;
    }
    const faults = this.state.health;
    const now = this.state.clock.nowMs();
    const speed = faults.slowdowns.get(instance.host) ?? 1;
    const extraMs = faults.datastoreLatencyMs.get(instance.datastore) ?? 0;
    const latencyMs = Math.round((BASE_LATENCY_MS / Math.max(0.001, speed)) * (0.5 + this.jitter.next()) + extraMs);
    let ok = latencyMs <= PROBE_TIMEOUT_MS;
    if (speed < 1 && this.jitter.next() >= speed) ok = false;
    const pattern = faults.patterns.get(instance.vm);
    if (pattern !== undefined && (now - pattern.sinceMs) % (pattern.failMs + pattern.passMs) < pattern.failMs) ok = false;
    const crash = faults.crashLoops.get(instance.vm);
    if (crash !== undefined && crash.host === instance.host && instance.runningSinceMs !== null && now - instance.runningSinceMs >= crash.afterMs) ok = false;
    return { ok, latencyMs: ok ? latencyMs : Math.max(latencyMs, PROBE_TIMEOUT_MS) };
  }

  /** A health fault began or ended: every copy it bears on is probed on its interval from now on. */
  changed(): void {
    for (const instance of this.state.instances.values()) this.watch(instance);
  }

  /**
   * Probes a copy on its interval while a fault bears on it: each probe may change its health, and
   * reports it when it does (or when its latency moves to another power of two).
   */
  watch(instance: TwinInstance): void {
    if (instance.state !== 'running' || instance.lost || !this.affected(instance)) return;
    if (instance.healthTimer !== null) return;
    const state = this.state;
    const service = state.index.service.get(state.index.vm.get(instance.vm)!.service)!;
    const intervalMs = Math.max(100, service.healthCheckIntervalS * 1000);
    const now = state.clock.nowMs();
    const nextProbeMs = (Math.floor(now / intervalMs) + 1) * intervalMs;
    instance.healthTimer = state.clock.at(nextProbeMs, () => {
      instance.healthTimer = null;
      if (!state.instances.has(instance.id)) return;
      const before = { healthy: instance.healthy, bucket: latencyBucket(instance.latencyMs) };
      instance.healthy = this.hosts.probeNow(instance);
      if (instance.healthy !== before.healthy || latencyBucket(instance.latencyMs) !== before.bucket) state.report(instance);
      // Still under the fault: probe again; else one ordinary probe settles its health.
      if (this.affected(instance)) this.watch(instance);
      else this.hosts.scheduleHealth(instance);
    });
  }
}

function latencyBucket(latencyMs: number | undefined): number {
  return latencyMs === undefined ? -1 : Math.floor(Math.log2(Math.max(1, latencyMs)));
}
