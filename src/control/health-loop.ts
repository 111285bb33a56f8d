/**
 * The controller's health loop: it keeps the copies' health history (health-history.ts), judges
 * gray failures before each pass (gray-failure.ts) — journaling a degraded host with its evidence,
 * its VMs' CPU ready where the substrate answers at once, and moving what still runs there away by
 * live migration — and counts the health restarts that make a crash loop. decide() reads the
 * history and the degraded hosts; it never writes them.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import { isPromise, type InstanceObservation, type JournalEvents, type JournalEventType, type JournalRecord, type Substrate, type VmMetrics } from '../ports/index.ts';
import type { Action } from './actions.ts';
import { GrayFailureJudge, type GrayVerdict } from './gray-failure.ts';
import { HealthHistory, type HealthView } from './health-history.ts';
import { planEvacuation } from './maintenance.ts';
import type { RebalanceAction } from './rebalance.ts';
import type { ControllerState } from './state.ts';
import type { ControllerTimings } from './timings.ts';

export interface HealthLoopOptions {
  readonly model: CapacityModel;
  readonly state: ControllerState;
  readonly timings: ControllerTimings;
  readonly substrate: Substrate;
  /** Hosts held for maintenance (the controller's set, read live). */
  readonly held: ReadonlySet<string>;
  readonly record: <T extends JournalEventType>(kind: JournalRecord['kind'], type: T, subject: string, data: JournalEvents[T]) => void;
  /** Starts a live migration through the executor. */
  readonly migrate: (action: RebalanceAction) => void;
}

export class HealthLoop {
  readonly history: HealthHistory;
  readonly gray: GrayFailureJudge;
  private readonly degradedHosts = new Set<string>();

  constructor(private readonly options: HealthLoopOptions) {
    this.history = new HealthHistory(options.timings);
    this.gray = new GrayFailureJudge(options.timings);
  }

  /** Hosts degraded now: they receive nothing new. */
  get degraded(): ReadonlySet<string> {
    return this.degradedHosts;
  }

  observe(instance: InstanceObservation, nowMs: number): void {
    this.history.observe(instance, nowMs);
  }

  removed(instanceId: string): void {
    this.history.removed(instanceId);
  }

  /** What decide() reads: the history, and whether the estate fails at once (a shared cause). */
  view(): HealthView {
    const history = this.history;
    return {
      unhealthyMs: (instanceId, fromMs, nowMs) => history.unhealthyMs(instanceId, fromMs, nowMs),
      restartPolicy: (vm, nowMs) => history.restartPolicy(vm, nowMs),
      sharedFailure: this.gray.shared,
    };
  }

  /** Judges every host before a pass; returns whether the set of degraded hosts changed. */
  judge(nowMs: number): boolean {
    const { state, timings } = this.options;
    // A healthy estate, nothing degraded: no evidence to weigh (a pass stays cheap on a large estate).
    if (this.degradedHosts.size === 0 && this.gray.shared === null && !this.history.anySickSince(nowMs, timings.grayWindowMs)) return false;
    const sharedBefore = this.gray.shared;
    const capacityLost = [...state.hostStatus.values()].some((status) => status !== 'up' && status !== 'suspect');
    const judgement = this.gray.judge(this.history, (host) => state.hostStatus.get(host), (name) => state.datastoresUp.get(name) !== false, nowMs, capacityLost);
    if ((sharedBefore === null) !== (this.gray.shared === null)) {
      this.options.record('decision', 'health.shared-failure', 'estate', {
        active: this.gray.shared !== null,
        reason: this.gray.shared ?? 'copies no longer fail across the estate: failing copies are restarted again',
      });
    }
    if (judgement.degrade.length === 0 && judgement.recover.length === 0) return false;
    this.gray.apply(judgement);
    for (const { host, verdict } of judgement.degrade) {
      this.degradedHosts.add(host);
      this.declare(host, verdict);
    }
    for (const { host, evidence, degradedForMs, early } of judgement.recover) {
      this.degradedHosts.delete(host);
      this.options.record('decision', 'host.trusted', host, {
        degradedForS: Math.round(degradedForMs / 1000),
        copies: evidence.copies,
        reason: early
          ? 'the estate lost a host and nothing on this one fails now: it takes VMs again before its probation ends'
          : 'its probation is over and what still runs on it answers its health checks: it takes VMs again',
      });
    }
    return true;
  }

  /**
   * When to look again with nothing reported: a probation's end, or the moment the copies now
   * failing on one host would have failed long enough to count (if they go on failing).
   */
  wakeMs(nowMs: number): number | null {
    const { grayWindowMs, grayFailingShare, grayMinCopies } = this.options.timings;
    let next = this.gray.nextDeadlineMs(nowMs);
    if (!this.history.anySickSince(nowMs, 0)) return next;
    const crossings = new Map<string, number[]>();
    // A copy that runs and failed its last probe is among the sick ones: the rest are not looked at.
    for (const id of this.history.sick) {
      const copy = this.history.copies.get(id);
      if (copy === undefined) continue;
      const last = copy.changes[copy.changes.length - 1];
      if (!copy.running || last === undefined || last.healthy || this.degradedHosts.has(copy.host)) continue;
      if (this.options.state.hostStatus.get(copy.host) !== 'up') continue;
      const list = crossings.get(copy.host) ?? [];
      list.push(last.atMs + grayFailingShare * grayWindowMs);
      crossings.set(copy.host, list);
    }
    for (const list of crossings.values()) {
      if (list.length < grayMinCopies) continue;
      const atMs = list.sort((a, b) => a - b)[grayMinCopies - 1]!;
      if (atMs > nowMs && (next === null || atMs < next)) next = atMs;
    }
    return next;
  }

  /** Counts the health restarts among a pass's actions, and journals a crash loop when one begins or goes on. */
  noteActions(actions: readonly Action[], nowMs: number): void {
    for (const action of actions) {
      if (action.type !== 'stopVm' || action.sick !== true) continue;
      this.history.noteHealthRestart(action.vm, action.host, nowMs);
      const policy = this.history.restartPolicy(action.vm, nowMs);
      if (policy === null || policy.failures < 2) continue;
      this.options.record('decision', 'vm.crash-loop', action.vm, {
        restarts: policy.failures,
        host: action.host,
        backoffS: Math.round((policy.notBeforeMs - nowMs) / 1000),
        avoiding: [...policy.avoid],
        reason:
          policy.avoid.length > 0
            ? `failed its health check ${policy.failures} times in a row; it restarts after a backoff, away from ${policy.avoid.join(', ')}`
            : `failed its health check ${policy.failures} times in a row; it restarts after a backoff`,
      });
    }
  }

  private failsOverInstead(instanceId: string, unavailable: ReadonlySet<string>): boolean {
    const { model, state } = this.options;
    const instance = state.instances.get(instanceId);
    if (instance === undefined || instance.role !== 'primary' || model.info(instance.vm).tier.mechanism !== 'failover') return false;
    for (const other of state.instances.values()) {
      if (other.vm === instance.vm && other.role === 'secondary' && other.synced && other.state === 'running' && !unavailable.has(other.host) && state.hostStatus.get(other.host) === 'up') return true;
    }
    return false;
  }

  /** Journals a degraded host with its evidence, and moves what still runs there away. */
  private declare(host: string, verdict: GrayVerdict): void {
    const { model, state, substrate } = this.options;
    const journal = (metrics: readonly VmMetrics[] | null) => {
      const ready = metrics === null ? [] : metrics.filter((metric) => metric.host === host).map((metric) => metric.readyPercent);
      this.options.record('decision', 'host.degraded', host, {
        ...verdict.evidence,
        probationS: Math.round((verdict.untilMs - verdict.sinceMs) / 1000),
        episodes: verdict.episodes,
        cpuReadyPercentMax: ready.length === 0 ? null : Math.round(Math.max(...ready) * 10) / 10,
        reason: `heartbeats on both channels, but ${verdict.evidence.failing.length} of its ${verdict.evidence.copies} copies keep failing or answer late: it takes nothing new, and its VMs move away`,
      });
    };
    const metrics = substrate.metrics();
    if (isPromise(metrics)) {
      journal(null);
      void metrics.catch(() => []);
    } else journal(metrics);
    const unavailable = new Set([...this.options.held, ...this.degradedHosts]);
    const evacuation = planEvacuation({ model, state, host, held: unavailable });
    for (const migration of evacuation.migrations) {
      // A continuous primary with a synchronised secondary elsewhere fails over (stop, promote: under
      // a second) as soon as it fails a probe; copying its memory away could take longer than its RTO.
      if (this.failsOverInstead(migration.instanceId, unavailable)) continue;
      this.options.migrate({ ...migration, reason: `moving off ${host}: it is degraded (gray failure)` });
    }
    if (evacuation.stuck.length > 0) {
      this.options.record('decision', 'host.evacuation.stuck', host, { actor: 'controller', vms: [...evacuation.stuck], reason: 'degraded host: no other host has room within the placement rules; what fails there restarts elsewhere when room is found' });
    }
  }
}
