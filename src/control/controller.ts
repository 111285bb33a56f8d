/**
 * The controller: takes the substrate's events into its view, runs `decide` at most once per
 * instant of the Clock, and executes the resulting actions through the Substrate port, journaling
 * every observation, decision, action and outcome with the Clock's time. It runs unchanged on the
 * twin's simulated clock and on real time.
 */
import type { Blueprint } from '../model/index.ts';
import { CapacityModel, HostLoad, type Placement } from '../capacity/capacity.ts';
import { chooseHost, restartOrder } from '../capacity/first-fit.ts';
import { planPlacement } from '../capacity/placement.ts';
import { actionKey, decide, DEFAULT_TIMINGS, type Action, type ControllerTimings, type Mark } from './decide.ts';
import { isPromise, type InstanceObservation, type ActionOutcome, type Clock, type FencingToken, type Journal, type JournalEntry, type JournalRecord, type MaybePromise, type Substrate, type SubstrateEvent, type SubstrateSnapshot, type TimerHandle } from '../ports/index.ts';
import { applyMark, hostStatus, type ControllerState, type HostStatus, type RecoveryTarget } from './state.ts';
import { simulateRecovery } from './recovery.ts';
import { rebalance, type RebalanceAction } from './rebalance.ts';
import { compileSegmentation } from '../model/segmentation.ts';
import { RansomwareDetector, type RansomwareDetectorOptions } from '../detect/ransomware.ts';
import { custodyKeys, openCase, securityStep, type SecurityAction, type SecurityCase } from './security.ts';
import type { RestoreObservation, SnapshotObservation, VmSecuritySample } from '../ports/index.ts';

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
  readonly rebalanceIntervalMs?: number;
  /**
   * Run the security loop: enforce the blueprint's segmentation through the substrate, read its
   * security telemetry on the Clock, detect ransomware, and quarantine, restore and cut over.
   */
  readonly security?: boolean | { readonly intervalMs?: number; readonly caseStepMs?: number; readonly detector?: Partial<RansomwareDetectorOptions> };
}

export class Controller {
  readonly blueprint: Blueprint;
  readonly model: CapacityModel;
  readonly plan: ReadonlyMap<string, Placement>;
  readonly timings: ControllerTimings;
  readonly state: ControllerState;
  private readonly order: readonly string[];
  private readonly substrate: Substrate;
  private readonly clock: Clock;
  private readonly journal: Journal;
  private readonly epoch: number;
  private readonly actor: string;
  private readonly history: readonly JournalEntry[];
  private passScheduledAtMs: number | null = null;
  private wakeTimer: TimerHandle | null = null;
  private wakeAtMs: number | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  private readonly refusedAttempts = new Map<string, number>();
  /** The recovery being followed, and the failure set it was computed for. */
  private target: { primary: Map<string, string>; secondary: Map<string, string>; shedReasons: ReadonlyMap<string, string> } | null = null;
  private readonly rebalanceEnabled: boolean;
  private readonly rebalanceIntervalMs: number;
  private rebalanceTimer: TimerHandle | null = null;
  private readonly lastMigratedAtMs = new Map<string, number>();
  migrations = 0;
  shareChanges = 0;
  private targetKey: string | null = null;
  /** Hosts held for maintenance (evacuated, receiving nothing new until released). */
  private readonly held = new Set<string>();
  /** Bumped by every event that can change a host's or datastore's status. */
  private topologyVersion = 0;
  private targetTopologyVersion = -1;
  /** Each VM's generation as this controller last knew it: the compare-and-set half of its tokens. */
  private readonly generations = new Map<string, number>();
  passes = 0;
  actionsIssued = 0;
  actionsRefused = 0;
  /** The security loop (null when not enabled): its detector, its incidents per VM, its timers. */
  private readonly securityLoop: { intervalMs: number; caseStepMs: number; detector: RansomwareDetector; timer: TimerHandle | null; caseTimer: TimerHandle | null; busy: Set<string> } | null;
  readonly securityCases = new Map<string, SecurityCase>();

  constructor(options: ControllerOptions) {
    this.blueprint = options.blueprint;
    this.substrate = options.substrate;
    this.clock = options.clock;
    this.journal = options.journal;
    this.epoch = options.epoch ?? 1;
    this.actor = options.actor ?? 'controller';
    this.history = options.history ?? [];
    this.rebalanceEnabled = options.rebalance ?? false;
    this.rebalanceIntervalMs = options.rebalanceIntervalMs ?? 60_000;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    const security = options.security === true ? {} : options.security === false || options.security === undefined ? null : options.security;
    this.securityLoop =
      security === null
        ? null
        : { intervalMs: security.intervalMs ?? 10_000, caseStepMs: security.caseStepMs ?? 1_000, detector: new RansomwareDetector(security.detector), timer: null, caseTimer: null, busy: new Set() };
    this.model = cachedModel(this.blueprint);
    this.plan = cachedPlan(this.blueprint, options.placementObjective ?? 'balanced');
    this.order = cachedOrder(this.blueprint);
    this.state = {
      hosts: new Map(),
      instances: new Map(),
      datastoresUp: new Map(),
      vms: new Map(this.blueprint.vms.map((vm) => [vm.name, { pendingSinceMs: null, waitReason: null, shedReason: null, coldRestart: false, lastHost: null }])),
      inFlight: new Map(),
      hostStatus: new Map(),
      unhealthySinceMs: new Map(),
      reservations: new Map(),
    };
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
    for (const instance of snapshot.instances) this.state.instances.set(instance.id, instance);
    for (const store of snapshot.datastores) this.state.datastoresUp.set(store.name, store.up);
    for (const [vm, generation] of snapshot.vmGenerations) this.generations.set(vm, generation);
    this.whenDone(this.substrate.claimEpoch({ epoch: this.epoch }), (claim) =>
      this.record('action', 'claimEpoch', this.actor, { epoch: this.epoch, ok: claim.ok, ...(claim.ok ? {} : { refused: claim.reason }) }),
    );
    this.unsubscribe = this.substrate.subscribe((event) => this.onEvent(event));
    this.record('decision', 'controller.started', this.actor, { epoch: this.epoch, hosts: snapshot.hosts.length, instances: snapshot.instances.length });
    this.schedulePass();
    if (this.rebalanceEnabled) this.scheduleRebalance();
    if (this.securityLoop !== null) this.startSecurity();
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

  /** Runs `then` on a substrate answer: at once when it is synchronous, later when it is not. */
  private whenDone(answer: MaybePromise<ActionOutcome>, then: (outcome: ActionOutcome) => void): void {
    if (!isPromise(answer)) {
      then(answer);
      return;
    }
    answer.then(
      (outcome) => {
        if (!this.stopped) then(outcome);
      },
      (error: unknown) => {
        if (!this.stopped) then({ ok: false, reason: `substrate error: ${error instanceof Error ? error.message : String(error)}` });
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.wakeTimer) this.clock.cancel(this.wakeTimer);
    if (this.rebalanceTimer) this.clock.cancel(this.rebalanceTimer);
    if (this.securityLoop?.timer) this.clock.cancel(this.securityLoop.timer);
    if (this.securityLoop?.caseTimer) this.clock.cancel(this.securityLoop.caseTimer);
  }

  /**
   * Maintenance: hold a host (nothing new is placed on it) and move everything off it by live
   * migration, within the placement rules; returns the migrations started and what could not move.
   */
  evacuateHost(host: string, actor: string): { migrating: string[]; stuck: string[] } {
    this.held.add(host);
    this.topologyVersion++;
    this.record('decision', 'host.held', host, { actor, reason: 'held for maintenance: nothing new is placed on it' }, actor);
    const load = new HostLoad(this.model);
    for (const instance of this.state.instances.values()) if (instance.state !== 'stopping') load.add(instance.host, instance.vm);
    const eligible = (name: string) => name !== host && !this.held.has(name) && this.state.hostStatus.get(name) === 'up';
    const migrating: string[] = [];
    const stuck: string[] = [];
    const onHost = [...this.state.instances.values()].filter((instance) => instance.host === host && instance.state === 'running');
    onHost.sort((a, b) => this.model.priority(a.vm) - this.model.priority(b.vm) || a.vm.localeCompare(b.vm));
    for (const instance of onHost) {
      const partner = [...this.state.instances.values()].find((other) => other.vm === instance.vm && other.id !== instance.id);
      const siblings = this.model.info(instance.vm).service.vms.flatMap((vm) =>
        [...this.state.instances.values()].filter((other) => other.vm === vm.name && other.role === instance.role).map((other) => other.host),
      );
      const target = chooseHost({ model: this.model, load, vm: instance.vm, avoid: siblings, awayFrom: partner?.host ?? null, eligible });
      if (target === null) {
        stuck.push(instance.vm);
        continue;
      }
      load.remove(host, instance.vm);
      load.add(target, instance.vm);
      migrating.push(`${instance.vm}→${target}`);
      this.executeRebalance({ type: 'migrateVm', vm: instance.vm, instanceId: instance.id, fromHost: host, toHost: target, reason: `evacuating ${host} for maintenance` });
    }
    if (stuck.length > 0) this.record('decision', 'host.evacuation.stuck', host, { actor, vms: stuck, reason: 'no other host has room within the placement rules' }, actor);
    return { migrating, stuck };
  }

  /**
   * An operator's restore of one VM from a chosen snapshot, carried out like a ransomware
   * recovery: quarantine the running copy, boot the snapshot in the isolated recovery network,
   * check its health, cut over. Needs the security loop (a substrate that enforces policy).
   */
  restoreVmFromSnapshot(vm: string, snapshot: { readonly id: string; readonly takenAtMs: number }, actor: string, reason: string): { ok: true } | { ok: false; reason: string } {
    if (this.securityLoop === null) return { ok: false, reason: 'this substrate cannot isolate and restore VMs (no network policy)' };
    const open = this.securityCases.get(vm);
    if (open !== undefined && open.phase !== 'recovered' && open.phase !== 'unrecoverable') return { ok: false, reason: `${vm} is already being recovered` };
    const now = this.clock.nowMs();
    // The restore picks the newest snapshot taken before this point: the one chosen.
    const alert = {
      vm,
      atMs: now,
      score: 1,
      z: { writeEntropy: 0, diskWrite: 0, snapshotChange: 0 },
      anomalousWritesSinceMs: snapshot.takenAtMs + 1,
      estimatedIntrusionAtMs: snapshot.takenAtMs + 1,
      evidence: [],
    };
    this.record('decision', 'restore.started', vm, { snapshotId: snapshot.id, reason, requestedBy: actor }, actor);
    const securityCase = openCase(alert, this.state, now);
    this.securityCases.set(vm, securityCase);
    for (const key of custodyKeys(securityCase)) this.state.inFlight.set(key, { issuedAtMs: now, deadlineMs: now + CUSTODY_MS });
    this.advanceSecurityCases();
    return { ok: true };
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
    this.whenDone(this.substrate.powerOnHost({ token: { epoch: this.epoch }, host }), (outcome) =>
      this.record('action', 'powerOnHost', host, { actor, ok: outcome.ok, ...(outcome.ok ? {} : { reason: outcome.reason }) }, actor),
    );
  }

  private onEvent(event: SubstrateEvent): void {
    if (this.stopped) return;
    const now = this.clock.nowMs();
    const state = this.state;
    if (event.type === 'heartbeat.lost' || event.type === 'heartbeat.restored' || event.type === 'fence.completed' || event.type === 'datastore.changed' || event.type === 'host.power') {
      this.topologyVersion++;
    }
    switch (event.type) {
      case 'heartbeat.lost': {
        const host = state.hosts.get(event.host);
        if (host === undefined) return;
        host.channels[event.channel] = { up: false, lastSeenAtMs: event.lastSeenAtMs };
        this.record('observation', 'heartbeat.lost', event.host, { channel: event.channel, lastSeenAtMs: event.lastSeenAtMs });
        break;
      }
      case 'heartbeat.restored': {
        const host = state.hosts.get(event.host);
        if (host === undefined) return;
        host.channels[event.channel] = { up: true, lastSeenAtMs: now };
        this.record('observation', 'heartbeat.restored', event.host, { channel: event.channel });
        if (host.fencedAtMs !== null && host.channels.management.up && host.channels.datastore.up) {
          // It heartbeats on both channels again: it was powered on and booted empty.
          host.fencedAtMs = null;
        }
        break;
      }
      case 'instance.changed': {
        const before = state.instances.get(event.instance.id);
        const instance = event.instance;
        if (before !== undefined && before.host !== instance.host && this.target !== null) {
          // A live migration moved it: the recovery target follows, so nothing moves it back.
          (instance.role === 'primary' ? this.target.primary : this.target.secondary).set(instance.vm, instance.host);
          this.state.inFlight.delete(`migrate:${instance.vm}`);
        }
        state.instances.set(instance.id, instance);
        if (instance.state === 'running' && !instance.healthy) {
          if (!state.unhealthySinceMs.has(instance.id)) state.unhealthySinceMs.set(instance.id, now);
        } else state.unhealthySinceMs.delete(instance.id);
        const changedHealth = before === undefined || before.healthy !== instance.healthy || before.role !== instance.role;
        if (changedHealth || before?.state !== instance.state || before?.synced !== instance.synced) {
          this.record('observation', 'vm.instance', instance.vm, {
            instance: instance.id,
            host: instance.host,
            role: instance.role,
            state: instance.state,
            healthy: instance.healthy,
            synced: instance.synced,
          });
        }
        this.settle(instance.vm, instance.role, instance);
        if (instance.role === 'primary' && instance.host) state.vms.get(instance.vm)!.lastHost = instance.host;
        break;
      }
      case 'instance.removed': {
        const instance = state.instances.get(event.id);
        state.instances.delete(event.id);
        state.unhealthySinceMs.delete(event.id);
        state.inFlight.delete(`stop:${event.id}`);
        if (instance !== undefined) {
          state.inFlight.delete(`start:${instance.vm}:${instance.role}`);
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
        this.record('outcome', 'fence.completed', event.host, { method: event.method, ok: event.ok, detail: event.detail });
        if (host !== undefined && event.ok && host.fencedAtMs === null) {
          host.fencedAtMs = now;
          state.inFlight.delete(`fence:${event.host}`);
          // Its instances are gone: a fenced host runs nothing.
          for (const instance of [...state.instances.values()]) {
            if (instance.host === event.host) {
              state.instances.delete(instance.id);
              state.unhealthySinceMs.delete(instance.id);
              if (instance.role === 'primary') state.vms.get(instance.vm)!.lastHost = instance.host;
            }
          }
        }
        break;
      }
      case 'datastore.changed':
        state.datastoresUp.set(event.datastore, event.up);
        this.record('observation', 'datastore.changed', event.datastore, { up: event.up });
        break;
    }
    this.schedulePass();
  }

  /** Clears the in-flight mark of an action once the substrate shows its result. */
  private settle(vm: string, role: string, instance: { state: string; synced: boolean; role: string; healthy: boolean }): void {
    if (role === 'primary') {
      if (instance.state === 'running') this.state.inFlight.delete(`start:${vm}:primary`);
      this.state.inFlight.delete(`promote:${vm}`);
    } else if (instance.synced) this.state.inFlight.delete(`start:${vm}:secondary`);
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
    for (const host of this.state.hosts.values()) {
      if (!host.channels.management.up || !host.channels.datastore.up) {
        channelDown = true;
        break;
      }
    }
    if (!channelDown && this.topologyVersion === this.targetTopologyVersion) return;
    this.targetTopologyVersion = this.topologyVersion;
    const unavailable: string[] = [];
    for (const host of this.state.hosts.values()) {
      const status = hostStatus(host, now, this.timings.detectionTimeoutMs);
      if (status === 'suspect') return;
      if (status !== 'up') unavailable.push(`${host.name}:${status === 'isolated' ? 'isolated' : 'lost'}`);
    }
    for (const [store, up] of this.state.datastoresUp) if (!up) unavailable.push(`${store}:down`);
    for (const host of this.held) unavailable.push(`${host}:held`);
    const key = unavailable.sort().join(',');
    if (key === this.targetKey) return;
    this.targetKey = key;
    const simulation = simulateRecovery({ blueprint: this.blueprint, model: this.model, order: this.order, plan: this.plan, state: this.simulationStart(now) });
    this.target = { primary: new Map(simulation.primary), secondary: new Map(simulation.secondary), shedReasons: simulation.shedReasons };
    this.record('decision', 'recovery.planned', this.actor, {
      unavailable: key === '' ? [] : key.split(','),
      running: simulation.primary.size,
      shed: [...simulation.shedReasons.keys()],
      notPlaced: this.blueprint.vms.filter((vm) => !simulation.primary.has(vm.name)).map((vm) => vm.name),
    });
  }

  /** The controller's view as the recovery simulation starts from it: lost hosts as already fenced. */
  private simulationStart(now: number): ControllerState {
    const statuses = new Map<string, HostStatus>();
    for (const host of this.state.hosts.values()) {
      const status = hostStatus(host, now, this.timings.detectionTimeoutMs);
      // A held host keeps its VMs but takes nothing new: in the simulation it is like an isolated one.
      const effective = status === 'up' && this.held.has(host.name) ? 'isolated' : status;
      statuses.set(host.name, effective === 'up' || effective === 'isolated' ? effective : 'fenced');
    }
    const instances = new Map<string, InstanceObservation>();
    for (const instance of this.state.instances.values()) {
      const status = statuses.get(instance.host);
      if (status === 'fenced' || instance.state === 'stopping') continue;
      instances.set(instance.id, { ...instance, state: 'running', healthy: true, synced: instance.role === 'secondary' ? instance.synced || instance.state === 'running' : false });
    }
    return {
      hosts: new Map(
        [...this.state.hosts.values()].map((host) => [
          host.name,
          {
            name: host.name,
            channels: {
              // Silent for ever, on the simulation's own clock (it starts at its own zero): isolated, not suspect.
              management: statuses.get(host.name) === 'isolated' ? { up: false, lastSeenAtMs: Number.NEGATIVE_INFINITY } : { up: true, lastSeenAtMs: now },
              datastore: { up: true, lastSeenAtMs: now },
            },
            fencedAtMs: statuses.get(host.name) === 'fenced' ? now : null,
            poweredOn: host.poweredOn,
          },
        ]),
      ),
      instances,
      datastoresUp: new Map(this.state.datastoresUp),
      vms: new Map(
        [...this.state.vms].map(([vm, view]) => [vm, { pendingSinceMs: null, waitReason: null, shedReason: view.shedReason, coldRestart: false, lastHost: view.lastHost }]),
      ),
      inFlight: new Map(),
      hostStatus: statuses,
      unhealthySinceMs: new Map(),
      reservations: new Map(),
    };
  }

  private scheduleRebalance(): void {
    this.rebalanceTimer = this.clock.at(this.clock.nowMs() + this.rebalanceIntervalMs, () => {
      this.rebalanceTimer = null;
      if (this.stopped) return;
      const metrics = this.substrate.metrics();
      const run = (values: readonly import('../ports/index.ts').VmMetrics[]) => {
        if (this.stopped) return;
        // Only when nothing is being recovered: moving VMs during a recovery competes with it.
        const busy = [...this.state.vms.values()].some((view) => view.pendingSinceMs !== null) || this.state.inFlight.size > 0;
        if (!busy) {
          for (const action of rebalance({ model: this.model, state: this.state, metrics: values, nowMs: this.clock.nowMs(), lastMigratedAtMs: this.lastMigratedAtMs, held: this.held })) {
            this.executeRebalance(action);
          }
        }
        this.scheduleRebalance();
      };
      if (isPromise(metrics)) void metrics.then(run);
      else run(metrics);
    });
  }

  private executeRebalance(action: RebalanceAction): void {
    const token: FencingToken = { epoch: this.epoch, vmGeneration: this.generations.get(action.vm) ?? 0 };
    if (action.type === 'setCpuShares') {
      this.whenDone(this.substrate.setCpuShares({ token: { epoch: this.epoch }, vm: action.vm, instanceId: action.instanceId, shares: action.shares }), (outcome) => {
        if (outcome.ok) this.shareChanges++;
        this.record('action', 'setCpuShares', action.vm, { instance: action.instanceId, shares: action.shares, reason: action.reason, epoch: this.epoch, ok: outcome.ok, ...(outcome.ok ? {} : { refused: outcome.reason }) });
      });
      return;
    }
    this.generations.set(action.vm, (token.vmGeneration ?? 0) + 1);
    this.state.inFlight.set(`migrate:${action.vm}`, { issuedAtMs: this.clock.nowMs(), deadlineMs: this.clock.nowMs() + 60_000 });
    this.lastMigratedAtMs.set(action.vm, this.clock.nowMs());
    this.whenDone(this.substrate.migrateVm({ token, vm: action.vm, instanceId: action.instanceId, toHost: action.toHost }), (outcome) => {
      if (outcome.ok) this.migrations++;
      else {
        this.generations.set(action.vm, token.vmGeneration ?? 0);
        this.state.inFlight.delete(`migrate:${action.vm}`);
      }
      this.record('action', 'migrateVm', action.vm, { instance: action.instanceId, from: action.fromHost, to: action.toHost, reason: action.reason, epoch: this.epoch, generation: token.vmGeneration, ok: outcome.ok, ...(outcome.ok ? (outcome.detail === undefined ? {} : { detail: outcome.detail }) : { refused: outcome.reason }) });
    });
  }


  // ── The security loop ───────────────────────────────────────────────────────────────────────

  private startSecurity(): void {
    const substrate = this.substrate;
    if (substrate.applyNetworkPolicy === undefined || substrate.securityTelemetry === undefined) {
      this.record('decision', 'security.unsupported', this.actor, { substrate: substrate.name, reason: 'the substrate offers no network policy or security telemetry' });
      return;
    }
    const policy = compileSegmentation(this.blueprint);
    this.whenDone(substrate.applyNetworkPolicy({ token: { epoch: this.epoch }, policy }), (outcome) =>
      this.record('action', 'applyNetworkPolicy', this.blueprint.name, {
        rules: policy.totals.rules,
        vmPairsAllowed: policy.totals.vmPairsAllowed,
        defaultAction: policy.defaultAction,
        ok: outcome.ok,
        ...(outcome.ok ? {} : { refused: outcome.reason }),
      }),
    );
    this.scheduleSecurity();
  }

  private scheduleSecurity(): void {
    const loop = this.securityLoop!;
    loop.timer = this.clock.at(this.clock.nowMs() + loop.intervalMs, () => {
      loop.timer = null;
      if (this.stopped) return;
      const telemetry = this.substrate.securityTelemetry!();
      const run = (samples: readonly VmSecuritySample[]) => {
        if (this.stopped) return;
        this.observeSecurity(samples);
        this.scheduleSecurity();
      };
      if (isPromise(telemetry)) void telemetry.then(run);
      else run(telemetry);
    });
  }

  private observeSecurity(samples: readonly VmSecuritySample[]): void {
    const loop = this.securityLoop!;
    const now = this.clock.nowMs();
    for (const sample of samples) {
      if (sample.snapshotDeletionsRefused > 0) {
        this.record('observation', 'security.snapshot-deletion-refused', sample.vm, {
          count: sample.snapshotDeletionsRefused,
          reason: 'immutable snapshots cannot be deleted before their retention ends, whoever asks',
        });
      }
      const open = this.securityCases.get(sample.vm);
      // A quarantined or restoring VM's telemetry is the attack's; the detector resumes after recovery.
      if (open !== undefined && open.phase !== 'recovered') continue;
      const { alert } = loop.detector.update(sample);
      if (alert === null) continue;
      this.record('decision', 'security.alert', alert.vm, {
        detector: 'ransomware',
        score: Math.round(alert.score * 1000) / 1000,
        z: { writeEntropy: round1(alert.z.writeEntropy), diskWrite: round1(alert.z.diskWrite), snapshotChange: round1(alert.z.snapshotChange) },
        anomalousWritesSinceMs: alert.anomalousWritesSinceMs,
        estimatedIntrusionAtMs: alert.estimatedIntrusionAtMs,
        evidence: alert.evidence.slice(0, 8).map((item) => ({ atMs: item.atMs, kind: item.kind, detail: item.detail })),
        evidenceCount: alert.evidence.length,
      });
      const securityCase = openCase(alert, this.state, now);
      this.securityCases.set(alert.vm, securityCase);
      for (const key of custodyKeys(securityCase)) this.state.inFlight.set(key, { issuedAtMs: now, deadlineMs: now + CUSTODY_MS });
    }
    this.advanceSecurityCases();
  }

  /** While an incident runs, decide() must neither restart the VM from its encrypted disk nor stop the quarantined copy (evidence). */
  private holdSecurityCustody(now: number): void {
    for (const securityCase of this.securityCases.values()) {
      for (const key of custodyKeys(securityCase)) this.state.inFlight.set(key, { issuedAtMs: now, deadlineMs: now + CUSTODY_MS });
    }
  }

  private advanceSecurityCases(): void {
    const loop = this.securityLoop!;
    let active = false;
    for (const securityCase of [...this.securityCases.values()]) {
      if (securityCase.phase === 'recovered' || securityCase.phase === 'unrecoverable') continue;
      active = true;
      if (loop.busy.has(securityCase.vm)) continue;
      loop.busy.add(securityCase.vm);
      const snapshots = securityCase.phase === 'quarantined' ? this.substrate.listSnapshots(securityCase.vm) : [];
      const restore =
        securityCase.phase === 'restoring' && securityCase.restore !== null && this.substrate.restoreStatus !== undefined
          ? this.substrate.restoreStatus(securityCase.restore.id)
          : null;
      const proceed = (list: readonly SnapshotObservation[], observed: RestoreObservation | null) => {
        loop.busy.delete(securityCase.vm);
        if (this.stopped) return;
        this.stepSecurityCase(securityCase.vm, list, observed);
      };
      if (isPromise(snapshots) || isPromise(restore)) void Promise.all([snapshots, restore]).then(([list, observed]) => proceed(list, observed));
      else proceed(snapshots, restore);
    }
    if (active && loop.caseTimer === null) {
      loop.caseTimer = this.clock.at(this.clock.nowMs() + loop.caseStepMs, () => {
        loop.caseTimer = null;
        if (!this.stopped) this.advanceSecurityCases();
      });
    }
  }

  private stepSecurityCase(vm: string, snapshots: readonly SnapshotObservation[], restore: RestoreObservation | null): void {
    const current = this.securityCases.get(vm)!;
    const now = this.clock.nowMs();
    const { action, next } = securityStep({ securityCase: current, nowMs: now, model: this.model, state: this.state, snapshots, restore });
    if (action === null) {
      if (next.phase !== current.phase) this.securityCaseChanged(current, next);
      return;
    }
    this.executeSecurity(action, current, next);
  }

  private securityCaseChanged(before: SecurityCase, after: SecurityCase): void {
    this.securityCases.set(after.vm, after);
    if (after.phase === 'recovered') {
      for (const key of custodyKeys(before)) this.state.inFlight.delete(key);
      this.securityLoop!.detector.reset(after.vm);
      this.record('decision', 'security.recovered', after.vm, {
        restorePointMs: before.restore?.restorePointMs ?? null,
        snapshotId: before.restore?.snapshotId ?? null,
        alertAtMs: after.alert.atMs,
        reason: after.reason ?? 'the restored copy serves in production and passes its health check',
      });
      this.schedulePass();
    } else if (after.phase === 'unrecoverable') {
      this.record('decision', 'security.unrecoverable', after.vm, { reason: after.reason ?? 'unknown', remains: 'quarantined' });
    } else if (before.phase === 'restoring' && after.phase === 'quarantined') {
      this.record('decision', 'security.restore-rejected', after.vm, { restore: before.restore?.id ?? null, snapshotId: before.restore?.snapshotId ?? null, reason: after.reason ?? '' });
    }
  }

  private executeSecurity(action: SecurityAction, current: SecurityCase, next: SecurityCase): void {
    const substrate = this.substrate;
    const token: FencingToken = { epoch: this.epoch };
    const vm = action.vm;
    let answer: MaybePromise<ActionOutcome>;
    let vmToken: FencingToken | null = null;
    switch (action.type) {
      case 'quarantineVm':
        answer = substrate.quarantineVm?.({ token, vm }) ?? { ok: false, reason: 'the substrate cannot quarantine a VM' };
        break;
      case 'releaseVm':
        answer = substrate.releaseVm?.({ token, vm }) ?? { ok: false, reason: 'the substrate cannot release a VM' };
        break;
      case 'restoreSnapshot':
        answer = substrate.restoreSnapshot?.({ token, vm, snapshotId: action.snapshotId, host: action.host, network: 'recovery' }) ?? { ok: false, reason: 'the substrate cannot restore a snapshot' };
        break;
      case 'promoteRestored':
        vmToken = { epoch: this.epoch, vmGeneration: this.generations.get(vm) ?? 0 };
        this.generations.set(vm, (vmToken.vmGeneration ?? 0) + 1);
        answer = substrate.promoteRestored?.({ token: vmToken, vm, restoreId: action.restoreId }) ?? { ok: false, reason: 'the substrate cannot promote a restored copy' };
        break;
    }
    this.securityLoop!.busy.add(vm);
    this.whenDone(answer, (outcome) => {
      this.securityLoop!.busy.delete(vm);
      const { type, vm: subject, ...fields } = action;
      this.record('action', type, subject, {
        ...fields,
        ...(type === 'restoreSnapshot' && outcome.ok ? { restore: outcome.detail ?? null, network: 'recovery' } : {}),
        ...(type === 'promoteRestored' && outcome.ok && typeof outcome.restorePointMs === 'number' ? { restorePointMs: outcome.restorePointMs } : {}),
        ...(vmToken === null ? {} : { generation: vmToken.vmGeneration }),
        epoch: this.epoch,
        ok: outcome.ok,
        ...(outcome.ok ? {} : { refused: outcome.reason }),
      });
      if (!outcome.ok) {
        if (vmToken !== null) {
          const snapshot = this.substrate.snapshot();
          const resync = (value: SubstrateSnapshot) => this.generations.set(vm, value.vmGenerations.get(vm) ?? 0);
          if (isPromise(snapshot)) void snapshot.then(resync);
          else resync(snapshot);
        }
        return;
      }
      let updated = next;
      if (action.type === 'restoreSnapshot' && next.restore !== null) updated = { ...next, restore: { ...next.restore, id: outcome.detail ?? '' } };
      this.securityCaseChanged(current, updated);
      if (action.type === 'promoteRestored') {
        // The infected copies are stopping and the clean one takes the VM's name: lift the quarantine.
        this.executeSecurity({ type: 'releaseVm', vm, reason: 'the restored, verified copy replaces the infected one' }, updated, updated);
      }
    });
  }

  /** A pass no later than `atMs` (used after asynchronous answers, which arrive between passes). */
  private schedulePassAt(atMs: number): void {
    if (this.wakeAtMs === null || atMs < this.wakeAtMs) this.setWake(atMs);
  }

  private pass(): void {
    if (this.stopped) return;
    this.passScheduledAtMs = null;
    this.passes++;
    const now = this.clock.nowMs();
    for (const [key, flight] of this.state.inFlight) {
      if (flight.deadlineMs <= now) {
        this.state.inFlight.delete(key);
        if (!this.refusedAttempts.has(key)) this.record('decision', 'action.timed-out', key, { issuedAtMs: flight.issuedAtMs });
      }
    }
    this.holdSecurityCustody(now);
    this.refreshTarget(now);
    const decision = decide({
      blueprint: this.blueprint,
      model: this.model,
      plan: this.plan,
      order: this.order,
      state: this.state,
      nowMs: now,
      timings: this.timings,
      target: this.target,
      held: this.held,
    });
    for (const mark of decision.marks) this.apply(mark);
    for (const action of decision.actions) this.execute(action, now);
    let nextWakeMs = decision.nextWakeMs;
    for (const flight of this.state.inFlight.values()) {
      if (nextWakeMs === null || flight.deadlineMs < nextWakeMs) nextWakeMs = flight.deadlineMs;
    }
    this.setWake(nextWakeMs);
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

  private apply(mark: Mark): void {
    const state = this.state;
    const previousHostStatus = mark.type === 'host.status' ? state.hostStatus.get(mark.host) : undefined;
    if (!applyMark(state, mark)) return;
    switch (mark.type) {
      case 'host.status':
        this.record('decision', 'host.status', mark.host, { from: previousHostStatus ?? null, to: mark.status, reason: hostReason(mark.status) });
        break;
      case 'vm.waiting':
        if (mark.reason !== null) this.record('decision', 'vm.waiting', mark.vm, { reason: mark.reason });
        break;
      case 'vm.shed':
        this.record('decision', mark.reason === null ? 'vm.unshed' : 'vm.shed', mark.vm, {
          reason: mark.reason ?? 'running again',
          tier: this.tierName(mark.vm),
        });
        break;
      case 'vm.cold-restart':
        this.record('decision', 'vm.cold-restart', mark.vm, { reason: mark.reason, effectiveTier: 'critical' });
        break;
      default:
        break;
    }
  }


  private execute(action: Action, now: number): void {
    const key = actionKey(action);
    if (this.state.inFlight.has(key)) return;
    const vm = action.type === 'fenceHost' ? null : action.vm;
    const token: FencingToken = vm === null ? { epoch: this.epoch } : { epoch: this.epoch, vmGeneration: this.generations.get(vm) ?? 0 };
    let answer: MaybePromise<ActionOutcome>;
    let extra: Record<string, unknown> = {};
    // In flight from the moment it is sent; events the call itself causes may settle it.
    this.state.inFlight.set(key, { issuedAtMs: now, deadlineMs: now + this.deadlineFor(action) });
    if (vm !== null) this.generations.set(vm, (this.generations.get(vm) ?? 0) + 1);
    switch (action.type) {
      case 'fenceHost':
        answer = this.substrate.fenceHost({ token, host: action.host });
        break;
      case 'startVm':
        extra = { host: action.host, role: action.role, datastore: action.datastore, coldRestart: action.coldRestart };
        answer = this.substrate.startVm({ token, vm: action.vm, host: action.host, role: action.role, datastore: action.datastore });
        break;
      case 'stopVm':
        extra = { host: action.host, instance: action.instanceId, shed: action.shed };
        answer = this.substrate.stopVm({ token, vm: action.vm, host: action.host, instanceId: action.instanceId });
        break;
      case 'promoteSecondary':
        extra = { host: action.host, instance: action.instanceId };
        answer = this.substrate.promoteSecondary({ token, vm: action.vm, instanceId: action.instanceId });
        break;
    }
    this.actionsIssued++;
    this.whenDone(answer, (outcome) => this.settleOutcome(action, key, token, extra, outcome));
  }

  private settleOutcome(action: Action, key: string, token: FencingToken, extra: Record<string, unknown>, outcome: ActionOutcome): void {
    const now = this.clock.nowMs();
    const vm = action.type === 'fenceHost' ? null : action.vm;
    const subject = action.type === 'fenceHost' ? action.host : action.vm;
    this.record('action', action.type, subject, {
      ...extra,
      ...(action.type === 'startVm' && outcome.ok ? { restorePointMs: outcome.restorePointMs ?? null } : {}),
      reason: action.reason,
      epoch: this.epoch,
      ...(vm === null ? {} : { generation: token.vmGeneration }),
      ok: outcome.ok,
      ...(outcome.ok ? {} : { refused: outcome.reason }),
    });
    if (!outcome.ok) {
      this.actionsRefused++;
      if (vm !== null) {
        // Refused: the VM did not change. If someone else changed it, re-read what is.
        if (outcome.reason.includes('generation')) {
          const snapshot = this.substrate.snapshot();
          const resync = (value: SubstrateSnapshot) => this.generations.set(vm, value.vmGenerations.get(vm) ?? 0);
          if (isPromise(snapshot)) void snapshot.then(resync);
          else resync(snapshot);
        } else this.generations.set(vm, token.vmGeneration ?? 0);
      }
      // A refused action is retried, but with per-key exponential backoff (1 s … 30 s).
      const attempts = (this.refusedAttempts.get(key) ?? 0) + 1;
      this.refusedAttempts.set(key, attempts);
      const backoffMs = Math.min(30_000, 1000 * 2 ** Math.min(attempts - 1, 5));
      this.state.inFlight.set(key, { issuedAtMs: now, deadlineMs: now + backoffMs });
      this.schedulePassAt(now + backoffMs);
      return;
    }
    this.refusedAttempts.delete(key);
    // The substrate may already have shown the result (an event inside the call).
    if (action.type === 'stopVm' && !this.state.instances.has(action.instanceId)) this.state.inFlight.delete(key);
  }

  private deadlineFor(action: Action): number {
    switch (action.type) {
      case 'fenceHost':
        return this.timings.fenceTimeoutMs;
      case 'stopVm':
        return this.timings.stopTimeoutMs;
      case 'promoteSecondary':
        return this.timings.promoteTimeoutMs;
      case 'startVm':
        return this.model.vm(action.vm).bootTimeS * 2000 + this.timings.startTimeoutExtraMs;
    }
  }

  private tierName(vm: string): string {
    return this.model.index.service.get(this.model.vm(vm).service)!.tier;
  }

  private record(kind: JournalRecord['kind'], type: string, subject: string, data: Record<string, unknown>, actor = this.actor): void {
    this.journal.append({ atMs: this.clock.nowMs(), kind, type, subject, actor, data });
  }
}

/** Custody keys are renewed on every pass; the deadline only bounds a controller that stops passing. */
const CUSTODY_MS = 3_600_000;

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

const modelCache = new WeakMap<Blueprint, CapacityModel>();
const orderCache = new WeakMap<Blueprint, readonly string[]>();

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

/** The planner is deterministic, so a blueprint's plan is computed once per objective (storms start thousands of controllers). */
const planCache = new WeakMap<Blueprint, Map<string, ReadonlyMap<string, Placement>>>();

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
