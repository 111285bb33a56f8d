/**
 * The digital twin: a deterministic, in-memory substrate on simulated time. It models hosts with
 * two heartbeat channels (management network and datastore), racks, rooms, power feeds,
 * replicated datastores, VM instances that boot, run and stop, continuous pairs (primary plus a
 * synchronised secondary), fencing (storage reservations and a power controller), and the
 * fencing-token checks every substrate must make. It also knows the truth the controller cannot
 * see (which copies really run), for the invariant auditor.
 */
import type {
  ActionOutcome,
  Clock,
  FencingToken,
  HeartbeatChannel,
  InstanceObservation,
  InstanceRole,
  InstanceState,
  SnapshotObservation,
  StartRequest,
  VmMetrics,
  Substrate,
  SubstrateEvent,
  SubstrateSnapshot,
  TimerHandle,
} from '../../control/ports.ts';
import type { Random } from '../../control/random.ts';
import type { Blueprint, Tier } from '../../model/index.ts';
import { indexBlueprint, tierOf } from '../../model/index.ts';
import { cpuDemand, shareCpu } from '../../plan/demand.ts';

export interface TwinParameters {
  readonly heartbeatIntervalMs: number;
  readonly stopLatencyMs: number;
  readonly promoteLatencyMs: number;
  readonly storageFenceLatencyMs: number;
  readonly powerFenceLatencyMs: number;
  readonly hostBootMs: number;
  /** Each further VM booting on the same host at once slows a boot by this fraction. */
  readonly bootContention: number;
  readonly secondarySyncMsPerGiB: number;
  readonly secondarySyncMinMs: number;
  /** I/O pause of a VM on a synchronously replicated volume when one copy is lost. */
  readonly storageFailoverMs: number;
  /** Live migration: a fixed part plus the memory copied at this rate. */
  readonly migrationBaseMs: number;
  readonly migrationMsPerGiB: number;
}

/** Default CPU shares per tier priority (continuous, critical, standard, deferred). */
export const DEFAULT_SHARES = [4000, 2000, 1000, 500] as const;

export const DEFAULT_TWIN_PARAMETERS: TwinParameters = Object.freeze({
  heartbeatIntervalMs: 500,
  stopLatencyMs: 200,
  promoteLatencyMs: 300,
  storageFenceLatencyMs: 100,
  powerFenceLatencyMs: 1000,
  hostBootMs: 120_000,
  bootContention: 0.04,
  secondarySyncMsPerGiB: 150,
  secondarySyncMinMs: 5_000,
  storageFailoverMs: 1_500,
  migrationBaseMs: 400,
  migrationMsPerGiB: 25,
});

export type Fault =
  | { readonly kind: 'host-crash'; readonly host: string }
  | { readonly kind: 'host-hang'; readonly host: string }
  | { readonly kind: 'host-isolation'; readonly host: string }
  | { readonly kind: 'storage-path-loss'; readonly host: string }
  | { readonly kind: 'host-power-loss'; readonly host: string }
  | { readonly kind: 'rack-failure'; readonly rack: string }
  | { readonly kind: 'room-failure'; readonly room: string }
  | { readonly kind: 'power-feed-failure'; readonly feed: string }
  | { readonly kind: 'datastore-failure'; readonly datastore: string };

export function faultTarget(fault: Fault): string {
  switch (fault.kind) {
    case 'rack-failure':
      return fault.rack;
    case 'room-failure':
      return fault.room;
    case 'power-feed-failure':
      return fault.feed;
    case 'datastore-failure':
      return fault.datastore;
    default:
      return fault.host;
  }
}

interface TwinHost {
  readonly name: string;
  readonly room: string;
  readonly rack: string;
  readonly feed: string;
  readonly phaseMs: number;
  /** The power controller's outlet: off once fenced, until powered on again. */
  outletOn: boolean;
  crashed: boolean;
  hung: boolean;
  managementLinkUp: boolean;
  storagePathUp: boolean;
  storageRevoked: boolean;
  /** Host OS boot after power returns; no heartbeats until it ends. */
  bootingUntilMs: number;
  wasPowered: boolean;
  managementAlive: boolean;
  datastoreAlive: boolean;
  managementLostAtMs: number;
  datastoreLostAtMs: number;
  managementTimer: TimerHandle | null;
  datastoreTimer: TimerHandle | null;
}

interface TwinInstance {
  readonly id: string;
  readonly vm: string;
  role: InstanceRole;
  state: InstanceState;
  /** The processes died with their host: nothing runs, though nobody has told the controller. */
  lost: boolean;
  healthy: boolean;
  synced: boolean;
  datastore: string;
  /** Until then its I/O is paused while synchronous storage fails over to the replica. */
  storagePausedUntilMs: number;
  host: string;
  shares: number;
  migrating: boolean;
  healthTimer: TimerHandle | null;
  lifecycleTimer: TimerHandle | null;
}

interface TwinDatastore {
  readonly name: string;
  readonly room: string;
  readonly replicatedTo: string | null;
  readonly immutableSnapshots: boolean;
  up: boolean;
  downSinceMs: number | null;
  /** Closed and open intervals when it was down: snapshots are not taken then. */
  readonly outages: { fromMs: number; toMs: number | null }[];
}

interface SnapshotLedger {
  /** Snapshots are materialised lazily, on the tier's schedule, up to this time. */
  untilMs: number;
  readonly phaseMs: number;
  readonly list: SnapshotObservation[];
}

export interface TwinTruth {
  /** VMs with more than one copy that could serve or write (invariant 1). */
  readonly splitBrainVms: readonly string[];
  readonly activeCopies: ReadonlyMap<string, number>;
}

export class Twin implements Substrate {
  readonly name = 'twin';
  private readonly hosts = new Map<string, TwinHost>();
  private readonly instances = new Map<string, TwinInstance>();
  private readonly datastores = new Map<string, TwinDatastore>();
  private readonly listeners = new Set<(event: SubstrateEvent) => void>();
  private readonly failedRacks = new Set<string>();
  private readonly failedRooms = new Set<string>();
  private readonly failedFeeds = new Set<string>();
  private readonly generations = new Map<string, number>();
  private readonly index;
  private newestEpoch = 0;
  private instanceSeq = 0;
  private readonly replicationPhaseMs = new Map<string, number>();
  private readonly snapshots = new Map<string, SnapshotLedger>();
  private readonly snapshotPhase: Random;
  readonly refusals: { atMs: number; action: string; reason: string }[] = [];
  /** A mass-casualty event: services' demand is multiplied by their surge factor. */
  private surge = false;


  constructor(
    private readonly blueprint: Blueprint,
    private readonly clock: Clock,
    random: Random,
    readonly parameters: TwinParameters = DEFAULT_TWIN_PARAMETERS,
  ) {
    this.index = indexBlueprint(blueprint);
    const phases = random.fork('heartbeat-phase');
    for (const host of blueprint.hosts) {
      this.hosts.set(host.name, {
        name: host.name,
        room: host.room,
        rack: host.rack,
        feed: host.powerFeed,
        phaseMs: phases.int(parameters.heartbeatIntervalMs),
        outletOn: true,
        crashed: false,
        hung: false,
        managementLinkUp: true,
        storagePathUp: true,
        storageRevoked: false,
        bootingUntilMs: 0,
        wasPowered: true,
        managementAlive: true,
        datastoreAlive: true,
        managementLostAtMs: 0,
        datastoreLostAtMs: 0,
        managementTimer: null,
        datastoreTimer: null,
      });
    }
    for (const store of blueprint.datastores) {
      this.datastores.set(store.name, {
        name: store.name,
        room: store.room,
        replicatedTo: store.replicatedTo,
        immutableSnapshots: store.immutableSnapshots,
        up: true,
        downSinceMs: null,
        outages: [],
      });
    }
    this.snapshotPhase = random.fork('snapshot-phase');
    const replication = random.fork('replication-phase');
    for (const service of blueprint.services) {
      const tier = tierOf(blueprint, service);
      const interval = Math.max(1, tier.replication.intervalS * 1000);
      this.replicationPhaseMs.set(service.name, replication.int(interval));
    }
  }

  // ── Substrate port ────────────────────────────────────────────────────────────────────────

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): SubstrateSnapshot {
    return {
      atMs: this.clock.nowMs(),
      hosts: [...this.hosts.values()].map((host) => ({
        name: host.name,
        poweredOn: this.powered(host),
        heartbeats: {
          management: { up: host.managementAlive, lastSeenAtMs: host.managementAlive ? this.clock.nowMs() : host.managementLostAtMs },
          datastore: { up: host.datastoreAlive, lastSeenAtMs: host.datastoreAlive ? this.clock.nowMs() : host.datastoreLostAtMs },
        },
      })),
      instances: [...this.instances.values()].map((instance) => this.observe(instance)),
      datastores: [...this.datastores.values()].map((store) => ({ name: store.name, up: store.up })),
      vmGenerations: new Map(this.generations),
    };
  }

  claimEpoch(token: FencingToken): ActionOutcome {
    return this.checkToken('claimEpoch', token, null) ?? { ok: true };
  }

  startVm(request: StartRequest): ActionOutcome {
    const refused = this.checkToken('startVm', request.token, request.vm);
    if (refused) return refused;
    const host = this.hosts.get(request.host);
    const vm = this.index.vm.get(request.vm);
    const store = this.datastores.get(request.datastore);
    if (host === undefined || vm === undefined || store === undefined) return this.refuse('startVm', 'unknown host, VM or datastore');
    if (!this.managementReachable(host)) return this.refuse('startVm', `host ${host.name} is not reachable`);
    if (!store.up) return this.refuse('startVm', `datastore ${store.name} is down`);
    if (!host.storagePathUp || host.storageRevoked) return this.refuse('startVm', `host ${host.name} has no storage path`);
    const duplicate = [...this.instances.values()].find(
      (instance) => instance.vm === request.vm && instance.host === request.host && instance.state !== 'stopped',
    );
    if (duplicate) return this.refuse('startVm', `${request.vm} already has a copy on ${request.host}`);
    // Deliberately no guard against a second primary here: like QEMU on a shared disk, the twin will
    // run two copies if told to, so that invariant 1 is the controller's to keep and the auditor's
    // to check.
    this.bumpGeneration(request.vm);
    const instance: TwinInstance = {
      id: `${request.vm}#${++this.instanceSeq}`,
      vm: request.vm,
      host: host.name,
      role: request.role,
      state: 'booting',
      lost: false,
      healthy: false,
      synced: false,
      datastore: store.name,
      storagePausedUntilMs: 0,
      shares: DEFAULT_SHARES[Math.min(3, tierOf(this.blueprint, this.index.service.get(vm.service)!).priority)] ?? 1000,
      migrating: false,
      healthTimer: null,
      lifecycleTimer: null,
    };
    this.instances.set(instance.id, instance);
    const concurrent = [...this.instances.values()].filter(
      (other) => other.host === host.name && other.state === 'booting' && other !== instance,
    ).length;
    const bootMs =
      request.role === 'secondary'
        ? Math.max(this.parameters.secondarySyncMinMs, vm.memoryGiB * this.parameters.secondarySyncMsPerGiB)
        : vm.bootTimeS * 1000 * (1 + this.parameters.bootContention * concurrent);
    const restorePointMs = this.restorePointMs(request.vm, store.name);
    this.emit({ type: 'instance.changed', instance: this.observe(instance), ...(restorePointMs === null ? {} : { restorePointMs }) });
    instance.lifecycleTimer = this.after(bootMs, () => {
      instance.lifecycleTimer = null;
      if (instance.state !== 'booting' || instance.lost) return;
      instance.state = 'running';
      if (instance.role === 'secondary') instance.synced = true;
      this.report(instance);
      this.scheduleHealth(instance);
    });
    return { ok: true, detail: `instance ${instance.id}`, restorePointMs };
  }

  stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): ActionOutcome {
    const refused = this.checkToken('stopVm', request.token, request.vm);
    if (refused) return refused;
    const instance = this.instances.get(request.instanceId);
    if (instance === undefined || instance.state === 'stopped') {
      // Stopping what is already stopped succeeds (idempotent) and still counts as a change.
      this.bumpGeneration(request.vm);
      return { ok: true, detail: 'already stopped' };
    }
    const host = this.hosts.get(instance.host)!;
    if (!this.managementReachable(host)) return this.refuse('stopVm', `host ${host.name} is not reachable`);
    this.bumpGeneration(request.vm);
    instance.state = 'stopping';
    this.report(instance);
    if (instance.lifecycleTimer) this.clock.cancel(instance.lifecycleTimer);
    instance.lifecycleTimer = this.after(this.parameters.stopLatencyMs, () => {
      instance.lifecycleTimer = null;
      this.removeInstance(instance);
    });
    return { ok: true };
  }

  promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): ActionOutcome {
    const refused = this.checkToken('promoteSecondary', request.token, request.vm);
    if (refused) return refused;
    const instance = this.instances.get(request.instanceId);
    if (instance === undefined || instance.role !== 'secondary') return this.refuse('promoteSecondary', 'no such secondary');
    if (!instance.synced || instance.lost || instance.state !== 'running') {
      return this.refuse('promoteSecondary', `secondary of ${request.vm} is not synchronised and running`);
    }
    if (this.activeCopiesOf(request.vm) > 0) {
      // Go-live takes the VM's lock on the datastore; a primary that still holds it keeps it.
      return this.refuse('promoteSecondary', `primary of ${request.vm} still holds its datastore lock`);
    }
    this.bumpGeneration(request.vm);
    if (instance.lifecycleTimer) this.clock.cancel(instance.lifecycleTimer);
    instance.lifecycleTimer = this.after(this.parameters.promoteLatencyMs, () => {
      instance.lifecycleTimer = null;
      if (instance.lost || instance.state !== 'running') return;
      instance.role = 'primary';
      instance.synced = false;
      this.report(instance);
      this.scheduleHealth(instance);
    });
    return { ok: true };
  }

  fenceHost(request: { token: FencingToken; host: string }): ActionOutcome {
    const refused = this.checkToken('fenceHost', request.token, null);
    if (refused) return refused;
    const host = this.hosts.get(request.host);
    if (host === undefined) return this.refuse('fenceHost', `unknown host ${request.host}`);
    // Storage fencing: the datastore drops the host's reservations (needs the datastore, not the host).
    const reachableStore = this.hostDatastores(host).some((store) => store.up);
    this.after(this.parameters.storageFenceLatencyMs, () => {
      if (reachableStore && this.hostDatastores(host).some((store) => store.up)) {
        host.storageRevoked = true;
        this.killInstances(host, 'storage fenced');
        this.environmentChanged();
        this.emit({ type: 'fence.completed', host: host.name, method: 'storage', ok: true, detail: 'storage reservations revoked' });
      } else {
        this.emit({ type: 'fence.completed', host: host.name, method: 'storage', ok: false, detail: 'no datastore reachable' });
      }
    });
    // Power fencing through the power controller, which answers even for a host that lost its feed.
    this.after(this.parameters.powerFenceLatencyMs, () => {
      host.outletOn = false;
      host.crashed = false;
      host.hung = false;
      this.killInstances(host, 'powered off');
      this.environmentChanged();
      this.emit({ type: 'fence.completed', host: host.name, method: 'power', ok: true, detail: 'outlet off, confirmed' });
    });
    return { ok: true };
  }

  powerOnHost(request: { token: FencingToken; host: string }): ActionOutcome {
    const refused = this.checkToken('powerOnHost', request.token, null);
    if (refused) return refused;
    const host = this.hosts.get(request.host);
    if (host === undefined) return this.refuse('powerOnHost', `unknown host ${request.host}`);
    if (host.outletOn) return { ok: true, detail: 'already on' };
    host.outletOn = true;
    this.environmentChanged();
    return { ok: true };
  }

  restorePointMs(vm: string, datastore: string): number | null {
    const service = this.index.service.get(this.index.vm.get(vm)?.service ?? '');
    if (service === undefined) return null;
    const now = this.clock.nowMs();
    const home = this.datastores.get(service.datastore)!;
    if (datastore === home.name) return home.up ? now : home.downSinceMs;
    if (home.replicatedTo !== datastore) return null;
    const replica = this.datastores.get(datastore)!;
    if (!replica.up) return null;
    const sourceEndMs = home.up ? now : home.downSinceMs ?? now;
    const tier = tierOf(this.blueprint, service);
    if (tier.replication.mode === 'sync') return sourceEndMs;
    const intervalMs = tier.replication.intervalS * 1000;
    const phaseMs = this.replicationPhaseMs.get(service.name) ?? 0;
    const cycles = Math.floor((sourceEndMs - phaseMs) / intervalMs);
    return cycles < 0 ? 0 : phaseMs + cycles * intervalMs;
  }

  /**
   * Starts the twin as a hospital that is already running: every VM's primary (and a synchronised
   * secondary where the placement has one) up and healthy at time zero, as a controller taking
   * over a running estate finds it. Storms use it to skip the boot most of the time.
   */
  adopt(placements: ReadonlyMap<string, { readonly primary: string; readonly secondary: string | null }>): void {
    for (const [vmName, placement] of placements) {
      const vm = this.index.vm.get(vmName);
      if (vm === undefined) continue;
      const service = this.index.service.get(vm.service)!;
      const home = this.datastores.get(service.datastore)!;
      const copies: [string, InstanceRole][] = [[placement.primary, 'primary']];
      if (placement.secondary !== null) copies.push([placement.secondary, 'secondary']);
      for (const [hostName, role] of copies) {
        const host = this.hosts.get(hostName)!;
        const replica = home.replicatedTo === null ? undefined : this.datastores.get(home.replicatedTo);
        const datastore = role === 'secondary' && replica !== undefined && replica.room === host.room ? replica.name : home.name;
        this.bumpGeneration(vmName);
        const instance: TwinInstance = {
          id: `${vmName}#${++this.instanceSeq}`,
          vm: vmName,
          host: hostName,
          role,
          state: 'running',
          lost: false,
          healthy: true,
          synced: role === 'secondary',
          datastore,
          storagePausedUntilMs: 0,
          shares: DEFAULT_SHARES[Math.min(3, tierOf(this.blueprint, service).priority)] ?? 1000,
          migrating: false,
          healthTimer: null,
          lifecycleTimer: null,
        };
        this.instances.set(instance.id, instance);
      }
    }
  }

  setSurge(on: boolean): void {
    this.surge = on;
  }

  metrics(): readonly VmMetrics[] {
    const now = this.clock.nowMs();
    const byHost = new Map<string, TwinInstance[]>();
    for (const instance of this.instances.values()) {
      if (instance.state !== 'running' || instance.lost) continue;
      const list = byHost.get(instance.host);
      if (list === undefined) byHost.set(instance.host, [instance]);
      else list.push(instance);
    }
    const result: VmMetrics[] = [];
    for (const [hostName, instances] of byHost) {
      const host = this.index.host.get(hostName)!;
      // A hot secondary runs in lockstep with its primary: it needs the same CPU.
      const claims = instances.map((instance) => {
        const vm = this.index.vm.get(instance.vm)!;
        const service = this.index.service.get(vm.service)!;
        return { demandCores: cpuDemand(vm.vcpu, service.demand, now, this.surge), shares: instance.shares };
      });
      const grants = shareCpu(host.cores, claims);
      instances.forEach((instance, index) => {
        result.push({
          vm: instance.vm,
          instanceId: instance.id,
          host: hostName,
          role: instance.role,
          demandCores: claims[index]!.demandCores,
          allocatedCores: grants[index]!.allocatedCores,
          readyPercent: grants[index]!.readyFraction * 100,
          shares: instance.shares,
        });
      });
    }
    return result;
  }

  migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): ActionOutcome {
    const refused = this.checkToken('migrateVm', request.token, request.vm);
    if (refused) return refused;
    const instance = this.instances.get(request.instanceId);
    const target = this.hosts.get(request.toHost);
    if (instance === undefined || instance.state !== 'running' || instance.lost) return this.refuse('migrateVm', `${request.vm} has no running copy ${request.instanceId}`);
    if (target === undefined) return this.refuse('migrateVm', `unknown host ${request.toHost}`);
    if (instance.migrating) return this.refuse('migrateVm', `${request.vm} is already migrating`);
    const source = this.hosts.get(instance.host)!;
    if (!this.managementReachable(source) || !this.managementReachable(target)) return this.refuse('migrateVm', 'both hosts must be reachable');
    if (!target.storagePathUp || target.storageRevoked) return this.refuse('migrateVm', `host ${target.name} has no storage path`);
    this.bumpGeneration(request.vm);
    instance.migrating = true;
    const vm = this.index.vm.get(instance.vm)!;
    this.after(this.parameters.migrationBaseMs + vm.memoryGiB * this.parameters.migrationMsPerGiB, () => {
      instance.migrating = false;
      if (instance.lost || !this.instances.has(instance.id) || !this.alive(target)) return;
      instance.host = target.name;
      this.report(instance);
      this.scheduleHealth(instance);
    });
    return { ok: true };
  }

  setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): ActionOutcome {
    const refused = this.checkToken('setCpuShares', request.token, null);
    if (refused) return refused;
    const instance = this.instances.get(request.instanceId);
    if (instance === undefined) return this.refuse('setCpuShares', `no copy ${request.instanceId}`);
    if (!(request.shares >= 1 && request.shares <= 1_000_000)) return this.refuse('setCpuShares', 'shares must be between 1 and 1,000,000');
    instance.shares = request.shares;
    return { ok: true };
  }

  listSnapshots(vm: string): readonly SnapshotObservation[] {
    return this.snapshotLedger(vm)?.list ?? [];
  }

  deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): ActionOutcome {
    const refused = this.checkToken('deleteSnapshot', request.token, null);
    if (refused) return refused;
    const vm = request.snapshotId.slice(0, request.snapshotId.lastIndexOf('@'));
    const ledger = this.snapshotLedger(vm);
    const index = ledger?.list.findIndex((snapshot) => snapshot.id === request.snapshotId) ?? -1;
    if (ledger === undefined || index < 0) return this.refuse('deleteSnapshot', `no snapshot ${request.snapshotId}`);
    const snapshot = ledger.list[index]!;
    const now = this.clock.nowMs();
    if (snapshot.immutable && now < snapshot.retainUntilMs) {
      return this.refuse(
        'deleteSnapshot',
        `snapshot ${snapshot.id} is immutable until ${Math.round(snapshot.retainUntilMs / 1000)} s (asked by ${request.actor})`,
      );
    }
    ledger.list.splice(index, 1);
    return { ok: true };
  }

  /** Materialises the VM's snapshots up to now: one per tier interval while its datastore was up. */
  private snapshotLedger(vm: string): SnapshotLedger | undefined {
    const info = this.index.vm.get(vm);
    if (info === undefined) return undefined;
    const service = this.index.service.get(info.service)!;
    const tier = tierOf(this.blueprint, service);
    const store = this.datastores.get(service.datastore)!;
    const intervalMs = tier.snapshot.intervalS * 1000;
    const retentionMs = tier.snapshot.retentionS * 1000;
    let ledger = this.snapshots.get(vm);
    if (ledger === undefined) {
      ledger = { untilMs: 0, phaseMs: this.snapshotPhase.fork(vm).int(intervalMs), list: [] };
      this.snapshots.set(vm, ledger);
    }
    const now = this.clock.nowMs();
    const fromMs = Math.max(ledger.untilMs, now - retentionMs);
    let tick = Math.ceil((fromMs - ledger.phaseMs) / intervalMs) * intervalMs + ledger.phaseMs;
    if (tick <= ledger.untilMs && ledger.untilMs > 0) tick += intervalMs;
    for (; tick <= now; tick += intervalMs) {
      if (tick <= 0 || !this.wasUp(store, tick)) continue;
      ledger.list.push({
        id: `${vm}@${tick}`,
        vm,
        datastore: store.name,
        takenAtMs: tick,
        retainUntilMs: tick + retentionMs,
        immutable: tier.snapshot.immutable && store.immutableSnapshots,
        digest: `${vm}:${tick}`,
      });
    }
    ledger.untilMs = now;
    // Past their retention, snapshots expire (an immutable one only then).
    while (ledger.list.length > 0 && ledger.list[0]!.retainUntilMs <= now) ledger.list.shift();
    return ledger;
  }

  private wasUp(store: TwinDatastore, atMs: number): boolean {
    return !store.outages.some((outage) => outage.fromMs <= atMs && (outage.toMs === null || atMs < outage.toMs));
  }

  // ── Faults (the twin's own API, used by scenarios and storms) ──────────────────────────────

  inject(fault: Fault): void {
    switch (fault.kind) {
      case 'host-crash':
        this.mustHost(fault.host).crashed = true;
        this.killInstances(this.mustHost(fault.host), 'host crashed');
        break;
      case 'host-hang':
        this.mustHost(fault.host).hung = true;
        break;
      case 'host-isolation':
        this.mustHost(fault.host).managementLinkUp = false;
        break;
      case 'storage-path-loss':
        this.mustHost(fault.host).storagePathUp = false;
        break;
      case 'host-power-loss':
        this.mustHost(fault.host).outletOn = false;
        break;
      case 'rack-failure':
        this.failedRacks.add(fault.rack);
        break;
      case 'room-failure':
        this.failedRooms.add(fault.room);
        for (const store of this.datastores.values()) if (store.room === fault.room) this.setDatastore(store, false);
        break;
      case 'power-feed-failure':
        this.failedFeeds.add(fault.feed);
        break;
      case 'datastore-failure':
        this.setDatastore(this.mustDatastore(fault.datastore), false);
        break;
    }
    this.environmentChanged();
  }

  /** Undoes a fault: a repair. A crashed or unpowered host comes back empty after its boot. */
  heal(fault: Fault): void {
    switch (fault.kind) {
      case 'host-crash': {
        const host = this.mustHost(fault.host);
        if (host.crashed) {
          host.crashed = false;
          host.bootingUntilMs = this.clock.nowMs() + this.parameters.hostBootMs;
        }
        break;
      }
      case 'host-hang':
        // A host that wakes from a hang resumes its frozen VMs: the reason fencing exists.
        this.mustHost(fault.host).hung = false;
        break;
      case 'host-isolation':
        this.mustHost(fault.host).managementLinkUp = true;
        break;
      case 'storage-path-loss':
        this.mustHost(fault.host).storagePathUp = true;
        break;
      case 'host-power-loss':
        this.mustHost(fault.host).outletOn = true;
        break;
      case 'rack-failure':
        this.failedRacks.delete(fault.rack);
        break;
      case 'room-failure':
        this.failedRooms.delete(fault.room);
        for (const store of this.datastores.values()) if (store.room === fault.room) this.setDatastore(store, true);
        break;
      case 'power-feed-failure':
        this.failedFeeds.delete(fault.feed);
        break;
      case 'datastore-failure':
        this.setDatastore(this.mustDatastore(fault.datastore), true);
        break;
    }
    this.environmentChanged();
  }

  /** What really runs, which the controller can only infer: for the invariant auditor. */
  truth(): TwinTruth {
    const activeCopies = new Map<string, number>();
    for (const instance of this.instances.values()) {
      if (this.isActiveCopy(instance)) activeCopies.set(instance.vm, (activeCopies.get(instance.vm) ?? 0) + 1);
    }
    const splitBrainVms = [...activeCopies.entries()].filter(([, count]) => count > 1).map(([vm]) => vm);
    return { splitBrainVms, activeCopies };
  }

  /** Instances that run and answer their health check, per VM (truth, not observation). */
  healthyPrimaries(): Set<string> {
    const healthy = new Set<string>();
    for (const instance of this.instances.values()) {
      if (instance.role === 'primary' && this.isHealthy(instance)) healthy.add(instance.vm);
    }
    return healthy;
  }

  hostLoad(): Map<string, { vcpu: number; memoryGiB: number }> {
    const load = new Map<string, { vcpu: number; memoryGiB: number }>();
    for (const host of this.hosts.keys()) load.set(host, { vcpu: 0, memoryGiB: 0 });
    for (const instance of this.instances.values()) {
      if (instance.state === 'stopped' || instance.lost) continue;
      const vm = this.index.vm.get(instance.vm)!;
      const entry = load.get(instance.host)!;
      entry.vcpu += vm.vcpu;
      entry.memoryGiB += vm.memoryGiB;
    }
    return load;
  }

  isHostPowered(name: string): boolean {
    return this.powered(this.mustHost(name));
  }

  // ── Internals ─────────────────────────────────────────────────────────────────────────────

  private after(delayMs: number, callback: () => void): TimerHandle {
    return this.clock.at(this.clock.nowMs() + delayMs, callback);
  }

  private checkToken(action: string, token: FencingToken, vm: string | null): ActionOutcome | null {
    if (token.epoch < this.newestEpoch) {
      return this.refuse(action, `fencing token epoch ${token.epoch} is older than ${this.newestEpoch}`);
    }
    this.newestEpoch = token.epoch;
    if (vm !== null && token.vmGeneration !== undefined) {
      const current = this.generations.get(vm) ?? 0;
      if (token.vmGeneration !== current) {
        return this.refuse(action, `${vm} is at generation ${current}, the action expected ${token.vmGeneration}`);
      }
    }
    return null;
  }

  private refuse(action: string, reason: string): ActionOutcome {
    this.refusals.push({ atMs: this.clock.nowMs(), action, reason });
    return { ok: false, reason };
  }

  private bumpGeneration(vm: string): void {
    this.generations.set(vm, (this.generations.get(vm) ?? 0) + 1);
  }

  private mustHost(name: string): TwinHost {
    const host = this.hosts.get(name);
    if (host === undefined) throw new Error(`twin: unknown host ${name}`);
    return host;
  }

  private mustDatastore(name: string): TwinDatastore {
    const store = this.datastores.get(name);
    if (store === undefined) throw new Error(`twin: unknown datastore ${name}`);
    return store;
  }

  private setDatastore(store: TwinDatastore, up: boolean): void {
    if (store.up === up) return;
    store.up = up;
    store.downSinceMs = up ? null : this.clock.nowMs();
    if (up) {
      const open = store.outages.find((outage) => outage.toMs === null);
      if (open) open.toMs = this.clock.nowMs();
    } else {
      store.outages.push({ fromMs: this.clock.nowMs(), toMs: null });
      this.failOverStorage(store);
    }
    this.emit({ type: 'datastore.changed', datastore: store.name, up });
  }

  /**
   * A synchronously replicated volume survives the loss of one copy (a stretched, metro-mirrored
   * datastore): the VMs using it pause their I/O briefly and go on from the replica, which holds
   * every acknowledged write. Asynchronously replicated volumes do not: their VMs must restart
   * from the replica's older point, which is the controller's decision.
   */
  private failOverStorage(store: TwinDatastore): void {
    const replica = store.replicatedTo === null ? undefined : this.datastores.get(store.replicatedTo);
    if (replica === undefined || !replica.up) return;
    const now = this.clock.nowMs();
    for (const instance of this.instances.values()) {
      if (instance.datastore !== store.name || instance.lost) continue;
      const service = this.index.service.get(this.index.vm.get(instance.vm)!.service)!;
      if (tierOf(this.blueprint, service).replication.mode !== 'sync') continue;
      instance.datastore = replica.name;
      instance.storagePausedUntilMs = now + this.parameters.storageFailoverMs;
      this.report(instance);
      this.scheduleHealth(instance);
      this.after(this.parameters.storageFailoverMs, () => {
        if (this.instances.has(instance.id)) this.scheduleHealth(instance);
      });
    }
  }

  private powered(host: TwinHost): boolean {
    return host.outletOn && !this.failedFeeds.has(host.feed) && !this.failedRacks.has(host.rack) && !this.failedRooms.has(host.room);
  }

  private alive(host: TwinHost): boolean {
    return this.powered(host) && !host.crashed && !host.hung && this.clock.nowMs() >= host.bootingUntilMs;
  }

  private managementReachable(host: TwinHost): boolean {
    return this.alive(host) && host.managementLinkUp;
  }

  private hostDatastores(host: TwinHost): TwinDatastore[] {
    void host;
    return [...this.datastores.values()];
  }

  private datastoreHeartbeat(host: TwinHost): boolean {
    return this.alive(host) && host.storagePathUp && !host.storageRevoked && this.hostDatastores(host).some((store) => store.up);
  }

  private isHealthy(instance: TwinInstance): boolean {
    if (instance.state !== 'running' || instance.lost) return false;
    const host = this.hosts.get(instance.host)!;
    if (!this.alive(host) || !host.storagePathUp || host.storageRevoked) return false;
    if (this.clock.nowMs() < instance.storagePausedUntilMs) return false;
    return this.datastores.get(instance.datastore)?.up === true;
  }

  /** A copy that could serve or write: running or frozen in memory, not fenced off its storage. */
  private isActiveCopy(instance: TwinInstance): boolean {
    if (instance.role !== 'primary' || instance.lost) return false;
    if (instance.state !== 'running' && instance.state !== 'booting') return false;
    const host = this.hosts.get(instance.host)!;
    return this.powered(host) && !host.crashed && !host.storageRevoked;
  }

  private activeCopiesOf(vm: string): number {
    let count = 0;
    for (const instance of this.instances.values()) if (instance.vm === vm && this.isActiveCopy(instance)) count++;
    return count;
  }

  private killInstances(host: TwinHost, reason: string): void {
    void reason;
    for (const instance of [...this.instances.values()]) {
      if (instance.host !== host.name || instance.lost) continue;
      instance.lost = true;
    }
  }

  private removeInstance(instance: TwinInstance): void {
    if (instance.healthTimer) this.clock.cancel(instance.healthTimer);
    if (instance.lifecycleTimer) this.clock.cancel(instance.lifecycleTimer);
    instance.state = 'stopped';
    instance.healthy = false;
    this.instances.delete(instance.id);
    this.emit({ type: 'instance.removed', id: instance.id, vm: instance.vm, host: instance.host });
  }

  private observe(instance: TwinInstance): InstanceObservation {
    return {
      id: instance.id,
      vm: instance.vm,
      host: instance.host,
      role: instance.role,
      state: instance.state,
      healthy: instance.healthy,
      synced: instance.synced,
      datastore: instance.datastore,
    };
  }

  private report(instance: TwinInstance): void {
    this.emit({ type: 'instance.changed', instance: this.observe(instance) });
  }

  private emit(event: SubstrateEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Health is probed over the service network on each VM's interval; a change is seen at the next probe. */
  private scheduleHealth(instance: TwinInstance): void {
    if (instance.healthTimer !== null) return;
    const vm = this.index.vm.get(instance.vm)!;
    const intervalMs = Math.max(100, this.index.service.get(vm.service)!.healthCheckIntervalS * 1000);
    const now = this.clock.nowMs();
    const nextProbeMs = (Math.floor(now / intervalMs) + 1) * intervalMs;
    instance.healthTimer = this.clock.at(nextProbeMs, () => {
      instance.healthTimer = null;
      if (!this.instances.has(instance.id)) return;
      const healthy = this.isHealthy(instance);
      if (healthy !== instance.healthy) {
        instance.healthy = healthy;
        this.report(instance);
      }
    });
  }

  /** Re-derives heartbeats, power and health after any change of the world. */
  private environmentChanged(): void {
    const now = this.clock.nowMs();
    for (const host of this.hosts.values()) {
      const powered = this.powered(host);
      if (powered !== host.wasPowered) {
        host.wasPowered = powered;
        if (!powered) {
          this.killInstances(host, 'power lost');
        } else {
          // Power is back: the host boots an empty hypervisor; its fencing is lifted by the reboot.
          host.crashed = false;
          host.hung = false;
          host.storageRevoked = false;
          host.bootingUntilMs = now + this.parameters.hostBootMs;
          this.clock.at(host.bootingUntilMs, () => this.environmentChanged());
        }
        this.emit({ type: 'host.power', host: host.name, poweredOn: powered });
      }
      // Instances that died with their host are reaped once the host is seen to run nothing.
      if (!powered) {
        for (const instance of [...this.instances.values()]) if (instance.host === host.name) this.removeInstanceQuietly(instance);
      }
      if (this.managementReachable(host)) {
        // The host's agent reports in: copies that died with it are known to be gone.
        for (const instance of [...this.instances.values()]) if (instance.host === host.name && instance.lost) this.removeInstance(instance);
      }
      this.updateChannel(host, 'management', this.managementReachable(host));
      this.updateChannel(host, 'datastore', this.datastoreHeartbeat(host));
    }
    for (const instance of this.instances.values()) {
      if (instance.state === 'running' && this.isHealthy(instance) !== instance.healthy) this.scheduleHealth(instance);
    }
  }

  /**
   * Instances on an unpowered host are gone, but the controller is told only when it can know:
   * through fencing or when the host reports in again. Until then it sees them unhealthy.
   */
  private removeInstanceQuietly(instance: TwinInstance): void {
    instance.lost = true;
    if (instance.lifecycleTimer) {
      this.clock.cancel(instance.lifecycleTimer);
      instance.lifecycleTimer = null;
    }
    const host = this.hosts.get(instance.host)!;
    if (!host.outletOn) {
      // The power controller confirms the outlet is off: the substrate knows the copy is gone.
      this.removeInstance(instance);
    } else if (instance.healthy || instance.state === 'running') {
      this.scheduleHealth(instance);
    }
  }

  private updateChannel(host: TwinHost, channel: HeartbeatChannel, alive: boolean): void {
    const key = channel === 'management' ? 'managementAlive' : 'datastoreAlive';
    const timerKey = channel === 'management' ? 'managementTimer' : 'datastoreTimer';
    if (host[key] === alive) return;
    host[key] = alive;
    const now = this.clock.nowMs();
    const interval = this.parameters.heartbeatIntervalMs;
    const pending = host[timerKey];
    if (pending !== null) {
      // The previous transition has not been seen yet: the two cancel out.
      this.clock.cancel(pending);
      host[timerKey] = null;
      return;
    }
    const lastTickMs = Math.floor((now - host.phaseMs) / interval) * interval + host.phaseMs;
    if (!alive) host[channel === 'management' ? 'managementLostAtMs' : 'datastoreLostAtMs'] = lastTickMs;
    if (!alive) {
      // The controller notices when the next heartbeat does not arrive.
      host[timerKey] = this.clock.at(lastTickMs + interval, () => {
        host[timerKey] = null;
        this.emit({ type: 'heartbeat.lost', host: host.name, channel, lastSeenAtMs: lastTickMs });
      });
    } else {
      host[timerKey] = this.clock.at(lastTickMs + interval, () => {
        host[timerKey] = null;
        this.emit({ type: 'heartbeat.restored', host: host.name, channel });
      });
    }
  }
}

export type { Tier };
