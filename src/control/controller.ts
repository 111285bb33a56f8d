/**
 * The controller: takes the substrate's events into its view, runs `decide` at most once per
 * instant of the Clock, and hands every action — of the recovery loop, the rebalancer, the
 * security loop and its own lifecycle — to the one executor, which journals each with its outcome.
 * It decides nothing itself: decide(), rebalance(), planEvacuation() and securityStep() are pure.
 * It runs unchanged on the twin's simulated clock and on real time.
 */
import type { Blueprint } from '../model/index.ts';
import { CapacityModel, type Placement } from '../capacity/capacity.ts';
import { restartOrder } from '../capacity/first-fit.ts';
import { planPlacement } from '../capacity/placement.ts';
import type { RansomwareDetectorOptions } from '../detect/ransomware.ts';
import { isPromise, type Clock, type Journal, type JournalEntry, type JournalEvents, type JournalEventType, type JournalRecord, type Substrate, type SubstrateEvent, type SubstrateSnapshot, type TimerHandle, type VmMetrics } from '../ports/index.ts';
import { decide, type DecideInput, type Decision, type Mark } from './decide.ts';
import { Executor } from './executor.ts';
import { HealthLoop } from './health-loop.ts';
import { InstanceTable } from './instance-table.ts';
import { planEvacuation } from './maintenance.ts';
import { rebalance, type RebalanceAction } from './rebalance.ts';
import { failureSet, recoveryStart, simulateRecovery } from './recovery.ts';
import { SecurityLoop } from './security-loop.ts';
import { SnapshotHealth } from './snapshot-health.ts';
import type { SecurityCase } from './security.ts';
import { applyMark, type ControllerState, type HostStatus } from './state.ts';
import { DEFAULT_TIMINGS, type ControllerTimings } from './timings.ts';
import { WorkQueue } from './work-queue.ts';

export interface ControllerOptions {
  readonly blueprint: Blueprint;
  readonly substrate: Substrate;
  readonly clock: Clock;
  readonly journal: Journal;
  /** The fencing epoch of this controller's term; a newer controller uses a higher one. */
  readonly epoch?: number;
  readonly timings?: Partial<ControllerTimings>;
  readonly actor?: string;
  /**
   * The journal as a previous controller left it (after a crash or a leader change): decisions
   * that the substrate cannot show — which VMs were shed and why, which were restarted cold —
   * are taken from it, so a restart repeats none of them.
   */
  readonly history?: readonly JournalEntry[];
  /** Run the rebalancer (CPU shares and live migration following demand). */
  readonly rebalance?: boolean;
  /** How the initial placement packs: spread for headroom (default), or on the fewest hosts. */
  readonly placementObjective?: 'balanced' | 'fewest-hosts';
  /** Overrides timings.rebalanceIntervalMs. */
  readonly rebalanceIntervalMs?: number;
  /**
   * Run the security loop: enforce the blueprint's segmentation through the substrate, read its
   * security telemetry on the Clock, detect ransomware, and quarantine, restore and cut over.
   * `intervalMs` and `caseStepMs` override timings.securityIntervalMs and securityCaseStepMs.
   */
  readonly security?: boolean | { readonly intervalMs?: number; readonly caseStepMs?: number; readonly detector?: Partial<RansomwareDetectorOptions> };
  /**
   * The decision function, decide() unless a test gives a variant (the storm oracle's test puts a
   * fixed defect back through it, to show that the oracle catches it). Not configurable from a
   * blueprint, a flag or the API: an operator cannot reach it.
   */
  readonly decide?: (input: DecideInput) => Decision;
}

export class Controller {
  readonly blueprint: Blueprint;
  readonly model: CapacityModel;
  readonly plan: ReadonlyMap<string, Placement>;
  readonly timings: ControllerTimings;
  readonly state: ControllerState;
  readonly securityCases = new Map<string, SecurityCase>();
  /** Health over time, gray failures and crash loops (health-loop.ts). */
  readonly health: HealthLoop;
  passes = 0;
  actionsIssued = 0;
  actionsRefused = 0;
  migrations = 0;
  shareChanges = 0;
  private readonly order: readonly string[];
  private readonly decide: (input: DecideInput) => Decision;
  private readonly substrate: Substrate;
  private readonly clock: Clock;
  private readonly journal: Journal;
  private readonly epoch: number;
  private readonly actor: string;
  private readonly history: readonly JournalEntry[];
  private readonly queue: WorkQueue;
  private readonly executor: Executor;
  /** The security loop, when enabled. */
  private readonly security: SecurityLoop | null;
  private readonly rebalanceEnabled: boolean;
  private readonly rebalanceIntervalMs: number;
  private readonly lastMigratedAtMs = new Map<string, number>();
  /** Hosts held for maintenance (evacuated, receiving nothing new until released). */
  private readonly held = new Set<string>();
  /** The recovery being followed, and the failure set it was computed for. */
  private target: { primary: Map<string, string>; secondary: Map<string, string>; shedReasons: ReadonlyMap<string, string> } | null = null;
  private targetKey: string | null = null;
  /** A VM started off the target (its crash loop sent it elsewhere): the next pass recomputes the target, or what it shed stays shed beside free room. */
  private targetStale = false;
  /** Bumped by every event that can change a host's or datastore's status. */
  private topologyVersion = 0;
  private targetTopologyVersion = -1;
  private passScheduledAtMs: number | null = null;
  private wakeTimer: TimerHandle | null = null;
  private wakeAtMs: number | null = null;
  private rebalanceTimer: TimerHandle | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  /** A paused leader (a long GC, a frozen VM): what the substrate reports meanwhile waits in its socket. */
  private paused: { readonly sinceMs: number; readonly events: SubstrateEvent[] } | null = null;
  private readonly snapshotHealth: SnapshotHealth;

  constructor(options: ControllerOptions) {
    this.blueprint = options.blueprint;
    this.substrate = options.substrate;
    this.clock = options.clock;
    this.journal = options.journal;
    this.epoch = options.epoch ?? 1;
    this.actor = options.actor ?? 'controller';
    this.history = options.history ?? [];
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.rebalanceEnabled = options.rebalance ?? false;
    this.rebalanceIntervalMs = options.rebalanceIntervalMs ?? this.timings.rebalanceIntervalMs;
    this.model = cachedModel(this.blueprint);
    this.plan = cachedPlan(this.blueprint, options.placementObjective ?? 'balanced');
    this.order = cachedOrder(this.blueprint);
    this.decide = options.decide ?? decide;
    this.state = {
      hosts: new Map(),
      instances: new InstanceTable(),
      datastoresUp: new Map(),
      vms: new Map(this.blueprint.vms.map((vm) => [vm.name, { pendingSinceMs: null, waitReason: null, shedReason: null, coldRestart: false, lastHost: null }])),
      inFlight: new Map(),
      hostStatus: new Map(),
      unhealthySinceMs: new Map(),
      reservations: new Map(),
    };
    this.queue = new WorkQueue(this.state.inFlight, { baseMs: this.timings.refusalBackoffBaseMs, maxMs: this.timings.refusalBackoffMaxMs });
    const { substrate, clock, journal, epoch, actor, queue, model, timings, state, blueprint } = this;
    this.executor = new Executor({ substrate, clock, journal, queue, model, timings, epoch, actor, wakeAt: (atMs) => this.schedulePassAt(atMs) });
    this.health = new HealthLoop({ model, state, timings, substrate, held: this.held, record: (kind, type, subject, data) => this.record(kind, type, subject, data), migrate: (action) => this.rebalanceAction(action) });
    this.snapshotHealth = new SnapshotHealth(model);
    const security = options.security === true ? {} : options.security === false || options.security === undefined ? null : options.security;
    this.security =
      security === null
        ? null
        : new SecurityLoop({
            blueprint,
            model,
            substrate,
            clock,
            state,
            queue,
            timings,
            actor,
            executor: this.executor,
            cases: this.securityCases,
            intervalMs: security.intervalMs ?? timings.securityIntervalMs,
            caseStepMs: security.caseStepMs ?? timings.securityCaseStepMs,
            ...(security.detector === undefined ? {} : { detector: security.detector }),
            record: (kind, type, subject, data, by) => this.record(kind, type, subject, data, by),
            schedulePass: () => this.schedulePass(),
          });
  }

  /**
   * Reads the substrate once (level-triggered start: nothing is assumed) and begins reconciling.
   * Synchronous on a simulated substrate; a promise on one that answers over a network.
   */
  start(): void | Promise<void> {
    const snapshot = this.substrate.snapshot();
    if (isPromise(snapshot)) return snapshot.then((value) => this.begin(value));
    this.begin(snapshot);
  }

  stop(): void {
    this.stopped = true;
    this.executor.stop();
    this.unsubscribe?.();
    if (this.wakeTimer) this.clock.cancel(this.wakeTimer);
    if (this.rebalanceTimer) this.clock.cancel(this.rebalanceTimer);
    this.security?.stop();
  }

  /**
   * The leader stops (a drill's controller-pause): no pass runs and what the substrate reports
   * waits, as it would in a frozen process's socket, until resume().
   */
  pause(reason: string): void {
    if (this.paused !== null || this.stopped) return;
    this.paused = { sinceMs: this.clock.nowMs(), events: [] };
    this.record('decision', 'controller.paused', this.actor, { reason });
  }

  /** The leader runs again: it takes in what was reported meanwhile, in order, then passes. */
  resume(): void {
    const paused = this.paused;
    if (paused === null || this.stopped) return;
    this.paused = null;
    this.record('decision', 'controller.resumed', this.actor, { pausedForMs: this.clock.nowMs() - paused.sinceMs, eventsQueued: paused.events.length });
    for (const event of paused.events) this.onEvent(event);
    this.passScheduledAtMs = null;
    this.schedulePass();
  }

  /**
   * Maintenance: hold a host (nothing new is placed on it) and move everything off it by live
   * migration, within the placement rules; returns the migrations started and what could not move.
   */
  evacuateHost(host: string, actor: string): { migrating: string[]; stuck: string[] } {
    this.held.add(host);
    this.topologyVersion++;
    this.record('decision', 'host.held', host, { actor, reason: 'held for maintenance: nothing new is placed on it' }, actor);
    const evacuation = planEvacuation({ model: this.model, state: this.state, host, held: this.held });
    for (const migration of evacuation.migrations) this.rebalanceAction(migration);
    const stuck = [...evacuation.stuck];
    if (stuck.length > 0) this.record('decision', 'host.evacuation.stuck', host, { actor, vms: stuck, reason: 'no other host has room within the placement rules' }, actor);
    return { migrating: evacuation.migrations.map((migration) => `${migration.vm}→${migration.toHost}`), stuck };
  }

  /** Ends a maintenance hold: the host takes VMs again. */
  releaseHost(host: string, actor: string): void {
    if (!this.held.delete(host)) return;
    this.topologyVersion++;
    this.record('decision', 'host.released', host, { actor }, actor);
    this.schedulePass();
  }

  /** An operator's request (journaled as such): power a fenced host on again after its repair. */
  powerOnHost(host: string, actor: string): void {
    this.executor.execute({ type: 'powerOnHost', host, actor });
  }

  /**
   * An operator's restore of one VM from a chosen snapshot, carried out like a ransomware
   * recovery: quarantine the running copy, boot the snapshot in the isolated recovery network,
   * check its health, cut over. Needs the security loop (a substrate that enforces policy).
   */
  restoreVmFromSnapshot(vm: string, snapshot: { readonly id: string; readonly takenAtMs: number }, actor: string, reason: string): { ok: true } | { ok: false; reason: string } {
    if (this.security === null) return { ok: false, reason: 'this substrate cannot isolate and restore VMs (no network policy)' };
    return this.security.requestRestore({ vm, snapshotId: snapshot.id, snapshotTakenAtMs: snapshot.takenAtMs, requestedBy: actor, reason, atMs: this.clock.nowMs() });
  }

  private begin(snapshot: SubstrateSnapshot): void {
    const now = this.clock.nowMs();
    for (const host of snapshot.hosts) {
      const heartbeats = host.heartbeats;
      this.state.hosts.set(host.name, {
        name: host.name,
        channels: {
          management: heartbeats ? { ...heartbeats.management } : { up: true, lastSeenAtMs: now },
          datastore: heartbeats ? { ...heartbeats.datastore } : { up: true, lastSeenAtMs: now },
        },
        // A host the power controller reports off runs nothing: it needs no fencing.
        fencedAtMs: host.poweredOn ? null : now,
        poweredOn: host.poweredOn,
      });
      this.state.hostStatus.set(host.name, host.poweredOn ? 'up' : 'fenced');
    }
    this.restoreDecisions();
    for (const instance of snapshot.instances) {
      this.state.instances.set(instance.id, instance);
      this.health.observe(instance, now);
    }
    for (const store of snapshot.datastores) this.state.datastoresUp.set(store.name, store.up);
    for (const [vm, generation] of snapshot.vmGenerations) this.executor.generations.set(vm, generation);
    this.executor.execute({ type: 'claimEpoch', actor: this.actor });
    this.unsubscribe = this.substrate.subscribe((event) => this.onEvent(event));
    this.record('decision', 'controller.started', this.actor, { epoch: this.epoch, hosts: snapshot.hosts.length, instances: snapshot.instances.length });
    this.schedulePass();
    if (this.rebalanceEnabled) this.scheduleRebalance();
    this.security?.start();
  }

  /** Re-reads, from a previous controller's journal, the decisions the substrate cannot show. */
  private restoreDecisions(): void {
    for (const entry of this.history) {
      const view = this.state.vms.get(entry.subject);
      if (view === undefined) continue;
      if (entry.type === 'vm.shed') view.shedReason = String(entry.data.reason);
      else if (entry.type === 'vm.unshed') view.shedReason = null;
      else if (entry.type === 'vm.cold-restart') view.coldRestart = true;
      else if ((entry.type === 'startVm' || entry.type === 'promoteSecondary') && entry.data.ok === true) view.coldRestart = false;
      if (entry.type === 'vm.instance' && entry.data.role === 'primary') view.lastHost = String(entry.data.host);
    }
    for (const entry of this.history) {
      if (entry.type === 'host.held') this.held.add(entry.subject);
      else if (entry.type === 'host.released') this.held.delete(entry.subject);
    }
    if (this.history.length > 0) {
      const shed = [...this.state.vms.values()].filter((view) => view.shedReason !== null).length;
      this.record('decision', 'controller.restored', this.actor, { fromEntries: this.history.length, shedVms: shed });
    }
  }

  private onEvent(event: SubstrateEvent): void {
    if (this.stopped) return;
    if (this.paused !== null) {
      this.paused.events.push(event);
      return;
    }
    const now = this.clock.nowMs();
    const { state, queue } = this;
    if (event.type === 'heartbeat.lost' || event.type === 'heartbeat.restored' || event.type === 'fence.completed' || event.type === 'datastore.changed' || event.type === 'host.power') {
      this.topologyVersion++;
    }
    switch (event.type) {
      case 'heartbeat.lost': {
        const host = state.hosts.get(event.host);
        if (host === undefined) return;
        // Never later than now: a time in the future (a host's own stamp, from a clock stepped ahead) would keep it alive.
        const lastSeenAtMs = Math.min(event.lastSeenAtMs, now);
        host.channels[event.channel] = { up: false, lastSeenAtMs };
        const stamp = event.hostStampAtMs === undefined || event.hostStampAtMs === lastSeenAtMs ? {} : { hostStampAtMs: event.hostStampAtMs };
        this.record('observation', 'heartbeat.lost', event.host, { channel: event.channel, lastSeenAtMs, ...stamp });
        break;
      }
      case 'heartbeat.restored': {
        const host = state.hosts.get(event.host);
        if (host === undefined) return;
        host.channels[event.channel] = { up: true, lastSeenAtMs: now };
        this.record('observation', 'heartbeat.restored', event.host, { channel: event.channel });
        // It heartbeats on both channels again: it was powered on and booted empty.
        if (host.fencedAtMs !== null && host.channels.management.up && host.channels.datastore.up) host.fencedAtMs = null;
        break;
      }
      case 'instance.changed': {
        const before = state.instances.get(event.instance.id);
        const instance = event.instance;
        if (before !== undefined && before.host !== instance.host && this.target !== null) {
          // A live migration moved it: the recovery target follows, so nothing moves it back.
          (instance.role === 'primary' ? this.target.primary : this.target.secondary).set(instance.vm, instance.host);
          queue.settle(`migrate:${instance.vm}`);
        }
        if (before === undefined && instance.role === 'primary' && this.target !== null && this.target.primary.get(instance.vm) !== instance.host) this.targetStale = true;
        state.instances.set(instance.id, instance);
        this.health.observe(instance, now);
        if (instance.state === 'running' && !instance.healthy) {
          if (!state.unhealthySinceMs.has(instance.id)) state.unhealthySinceMs.set(instance.id, now);
        } else state.unhealthySinceMs.delete(instance.id);
        const changedHealth = before === undefined || before.healthy !== instance.healthy || before.role !== instance.role;
        if (changedHealth || before?.state !== instance.state || before?.synced !== instance.synced) {
          const { id, host, role, state: instanceState, healthy, synced } = instance;
          this.record('observation', 'vm.instance', instance.vm, { instance: id, host, role, state: instanceState, healthy, synced });
        }
        // The substrate shows an action's result: its key is free.
        if (instance.role === 'primary') {
          if (instance.state === 'running') queue.settle(`start:${instance.vm}:primary`);
          queue.settle(`promote:${instance.vm}`);
        } else if (instance.synced) queue.settle(`start:${instance.vm}:secondary`);
        if (instance.role === 'primary' && instance.host) state.vms.get(instance.vm)!.lastHost = instance.host;
        break;
      }
      case 'instance.removed': {
        const instance = state.instances.get(event.id);
        state.instances.delete(event.id);
        state.unhealthySinceMs.delete(event.id);
        this.health.removed(event.id);
        queue.settle(`stop:${event.id}`);
        if (instance !== undefined) {
          queue.settle(`start:${instance.vm}:${instance.role}`);
          if (instance.role === 'primary') state.vms.get(instance.vm)!.lastHost = instance.host;
        }
        this.record('observation', 'vm.removed', event.vm, { instance: event.id, host: event.host });
        break;
      }
      case 'host.power': {
        const host = state.hosts.get(event.host);
        if (host) host.poweredOn = event.poweredOn;
        this.record('observation', 'host.power', event.host, { poweredOn: event.poweredOn });
        break;
      }
      case 'fence.completed': {
        const host = state.hosts.get(event.host);
        this.record('outcome', 'fence.completed', event.host, { method: event.method, ok: event.ok, detail: event.detail, ...(event.agent === undefined ? {} : { agent: event.agent }) });
        if (host !== undefined && event.ok && host.fencedAtMs === null) {
          host.fencedAtMs = now;
          queue.settle(`fence:${event.host}`);
          queue.settleOnHost(event.host);
          // Its instances are gone: a fenced host runs nothing.
          for (const instance of [...state.instances.values()]) {
            if (instance.host !== event.host) continue;
            state.instances.delete(instance.id);
            state.unhealthySinceMs.delete(instance.id);
            this.health.removed(instance.id);
            if (instance.role === 'primary') state.vms.get(instance.vm)!.lastHost = instance.host;
          }
        }
        break;
      }
      case 'datastore.changed':
        state.datastoresUp.set(event.datastore, event.up);
        this.record('observation', 'datastore.changed', event.datastore, { up: event.up });
        break;
      case 'snapshot.failed':
        this.record('observation', 'snapshot.failed', event.vm, this.snapshotHealth.failed(event, now));
        // Nothing to decide: the VMs run on. It is journaled (and alerted) at once.
        return;
    }
    this.schedulePass();
  }

  /**
   * Events are batched like a controller's work queue: the first event of a burst schedules one
   * pass `passBatchMs` later, and every event until then joins it.
   */
  private schedulePass(): void {
    if (this.stopped || this.passScheduledAtMs !== null) return;
    const atMs = this.clock.nowMs() + this.timings.passBatchMs;
    this.passScheduledAtMs = atMs;
    this.clock.at(atMs, () => this.pass());
  }

  /** A pass no later than `atMs` (used after asynchronous answers, which arrive between passes). */
  private schedulePassAt(atMs: number): void {
    if (this.wakeAtMs === null || atMs < this.wakeAtMs) this.setWake(atMs);
  }

  private pass(): void {
    if (this.stopped || this.paused !== null) return;
    this.passScheduledAtMs = null;
    this.passes++;
    const now = this.clock.nowMs();
    for (const expired of this.queue.expire(now)) this.record('decision', 'action.timed-out', expired.key, { issuedAtMs: expired.issuedAtMs });
    this.security?.holdCustody(now);
    if (this.health.judge(now)) this.topologyVersion++;
    this.refreshTarget(now);
    const { blueprint, model, plan, order, state, timings, target, held } = this;
    const degraded = this.health.degraded;
    const quarantined = new Set([...this.securityCases.values()].filter((securityCase) => securityCase.phase !== 'recovered').map((securityCase) => securityCase.vm));
    const decision = this.decide({ blueprint, model, plan, order, state, nowMs: now, timings, target, held, degraded, health: this.health.view(), quarantined });
    this.health.noteActions(decision.actions, now);
    for (const mark of decision.marks) this.apply(mark);
    for (const action of decision.actions) {
      const issued = this.executor.execute(action, (outcome) => {
        if (!outcome.ok) this.actionsRefused++;
        // The substrate may already have shown the result (an event inside the call).
        else if (action.type === 'stopVm' && !this.state.instances.has(action.instanceId)) this.queue.settle(`stop:${action.instanceId}`);
      });
      if (issued) this.actionsIssued++;
    }
    const wakeMs = this.queue.nextDeadlineMs(decision.nextWakeMs);
    const healthWakeMs = this.health.wakeMs(now);
    this.setWake(healthWakeMs !== null && (wakeMs === null || healthWakeMs < wakeMs) ? healthWakeMs : wakeMs);
  }

  private setWake(atMs: number | null): void {
    if (atMs === this.wakeAtMs) return;
    if (this.wakeTimer) this.clock.cancel(this.wakeTimer);
    this.wakeTimer = null;
    this.wakeAtMs = atMs;
    if (atMs === null) return;
    this.wakeTimer = this.clock.at(atMs, () => {
      this.wakeTimer = null;
      this.wakeAtMs = null;
      this.pass();
    });
  }

  /** Applies a mark of decide() to the view, journaling what changed. */
  private apply(mark: Mark): void {
    const previousHostStatus = mark.type === 'host.status' ? this.state.hostStatus.get(mark.host) : undefined;
    if (!applyMark(this.state, mark)) return;
    switch (mark.type) {
      case 'host.status':
        this.record('decision', 'host.status', mark.host, { from: previousHostStatus ?? null, to: mark.status, reason: hostReason(mark.status) });
        break;
      case 'vm.waiting':
        if (mark.reason !== null) this.record('decision', 'vm.waiting', mark.vm, { reason: mark.reason });
        break;
      case 'vm.shed':
        this.record('decision', mark.reason === null ? 'vm.unshed' : 'vm.shed', mark.vm, { reason: mark.reason ?? 'running again', tier: this.model.info(mark.vm).service.tier });
        break;
      case 'vm.cold-restart':
        this.record('decision', 'vm.cold-restart', mark.vm, { reason: mark.reason, effectiveTier: 'critical' });
        break;
      default:
        break;
    }
  }

  /**
   * When the set of hosts that cannot run VMs (or of datastores down) changes, and no host is
   * still suspect, the whole recovery is computed once, by simulating decide() to its end (the
   * planner's failure analysis does the same), and then followed: capacity goes where that
   * computation says, whatever order fences, stops and boots complete in.
   */
  private refreshTarget(now: number): void {
    // Host status changes only with a heartbeat, fencing or datastore event, or with time while a
    // channel is down: otherwise the failure set is the one the target was computed for.
    let channelDown = false;
    for (const host of this.state.hosts.values()) if (!host.channels.management.up || !host.channels.datastore.up) channelDown = true;
    const stale = this.targetStale && this.target !== null;
    this.targetStale = false;
    if (!stale && !channelDown && this.topologyVersion === this.targetTopologyVersion) return;
    this.targetTopologyVersion = this.topologyVersion;
    const degraded = this.health.degraded;
    const key = failureSet(this.state, this.held, now, this.timings.detectionTimeoutMs, degraded);
    if (key === null || (key === this.targetKey && !stale)) return;
    this.targetKey = key;
    const start = recoveryStart(this.state, this.held, now, this.timings.detectionTimeoutMs, degraded);
    const simulation = simulateRecovery({ blueprint: this.blueprint, model: this.model, order: this.order, plan: this.plan, state: start, decide: this.decide });
    this.target = { primary: new Map(simulation.primary), secondary: new Map(simulation.secondary), shedReasons: simulation.shedReasons };
    this.record('decision', 'recovery.planned', this.actor, {
      ...(stale ? { because: 'a VM started off the plan (away from a host it kept failing on)' } : {}),
      unavailable: key === '' ? [] : key.split(','),
      running: simulation.primary.size,
      shed: [...simulation.shedReasons.keys()],
      notPlaced: this.blueprint.vms.filter((vm) => !simulation.primary.has(vm.name)).map((vm) => vm.name),
    });
  }

  private scheduleRebalance(): void {
    this.rebalanceTimer = this.clock.at(this.clock.nowMs() + this.rebalanceIntervalMs, () => {
      this.rebalanceTimer = null;
      if (this.stopped) return;
      const metrics = this.substrate.metrics();
      const run = (values: readonly VmMetrics[]) => {
        if (this.stopped) return;
        const { model, state, lastMigratedAtMs } = this;
        const held = new Set([...this.held, ...this.health.degraded]);
        for (const action of rebalance({ model, state, metrics: values, nowMs: this.clock.nowMs(), lastMigratedAtMs, held })) this.rebalanceAction(action);
        this.scheduleRebalance();
      };
      if (isPromise(metrics)) void metrics.then(run);
      else run(metrics);
    });
  }

  private rebalanceAction(action: RebalanceAction): void {
    if (action.type === 'setCpuShares') {
      this.executor.execute(action, (outcome) => {
        if (outcome.ok) this.shareChanges++;
      });
      return;
    }
    this.lastMigratedAtMs.set(action.vm, this.clock.nowMs());
    this.executor.execute(action, (outcome) => {
      if (outcome.ok) this.migrations++;
    });
  }

  private record<T extends JournalEventType>(kind: JournalRecord['kind'], type: T, subject: string, data: JournalEvents[T], actor = this.actor): void {
    this.journal.append({ atMs: this.clock.nowMs(), kind, type, subject, actor, data });
  }
}

const modelCache = new WeakMap<Blueprint, CapacityModel>();
const orderCache = new WeakMap<Blueprint, readonly string[]>();
/** The planner is deterministic, so a blueprint's plan is computed once per objective (storms start thousands of controllers). */
const planCache = new WeakMap<Blueprint, Map<string, ReadonlyMap<string, Placement>>>();

/** Derived, read-only facts of a (frozen) blueprint: computed once, shared by every controller. */
function cachedModel(blueprint: Blueprint): CapacityModel {
  let model = modelCache.get(blueprint);
  if (model === undefined) {
    model = new CapacityModel(blueprint);
    modelCache.set(blueprint, model);
  }
  return model;
}

function cachedOrder(blueprint: Blueprint): readonly string[] {
  let order = orderCache.get(blueprint);
  if (order === undefined) {
    order = Object.freeze(restartOrder(blueprint).map((vm) => vm.name));
    orderCache.set(blueprint, order);
  }
  return order;
}

function cachedPlan(blueprint: Blueprint, objective: 'balanced' | 'fewest-hosts'): ReadonlyMap<string, Placement> {
  let plans = planCache.get(blueprint);
  if (plans === undefined) {
    plans = new Map();
    planCache.set(blueprint, plans);
  }
  let plan = plans.get(objective);
  if (plan === undefined) {
    plan = planPlacement(blueprint, { objective }).placements;
    plans.set(objective, plan);
  }
  return plan;
}

function hostReason(status: HostStatus): string {
  switch (status) {
    case 'up':
      return 'heartbeats on both channels';
    case 'suspect':
      return 'a heartbeat channel is late; not yet past the detection timeout';
    case 'isolated':
      return 'management network silent, datastore heartbeat alive: the host runs, its VMs are left alone';
    case 'storage-lost':
      return 'datastore heartbeat silent, management alive: its VMs are stopped and restarted elsewhere';
    case 'failed':
      return 'silent on both channels: fence before any restart';
    case 'fenced':
      return 'fenced: it runs nothing';
  }
}
