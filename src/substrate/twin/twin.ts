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
  RestoreObservation,
  RestoreRequest,
  SnapshotObservation,
  VmSecuritySample,
  StartRequest,
  VmMetrics,
  Substrate,
  SubstrateEvent,
  SubstrateSnapshot,
  TimerHandle,
} from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import type { Blueprint, Tier } from '../../model/index.ts';
import { indexBlueprint, tierOf } from '../../model/index.ts';
import { cpuDemand, shareCpu } from '../../model/demand.ts';
import { allows, quarantine, release, type SegmentationPolicy } from '../../model/segmentation.ts';

export interface TwinParameters {
  readonly heartbeatIntervalMs: number;
  readonly stopLatencyMs: number;
  readonly promoteLatencyMs: number;
  readonly storageFenceLatencyMs: number;
  readonly powerFenceLatencyMs: number;
  readonly hostBootMs: number;
  /** Each further VM booting on the same host at once slows a boot by this fraction. */
  readonly bootContention: number;
  /** Multiplies every VM's blueprint bootTimeS (1: as declared; a calibration against real VMs sets it). */
  readonly bootTimeFactor: number;
  /**
   * What slows a boot down: the other boots on the same host (hosts with their own cores), or
   * every other guest of the substrate, booting or running (the real-VM lab, whose hosts share one
   * machine's two cores under software emulation: each running guest takes CPU from a boot).
   */
  readonly bootContentionScope: 'host' | 'substrate';
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
  bootTimeFactor: 1,
  bootContentionScope: 'host',
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
  /** The host loses every network (management and the VMs' service networks), not its storage path. */
  | { readonly kind: 'host-network-loss'; readonly host: string }
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
  /** The VMs' service networks: down, the host's VMs run but nobody reaches them. */
  serviceNetworkUp: boolean;
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

/** Per-VM behaviour the security telemetry is generated from (drawn once per VM from the seed). */
interface VmBaseline {
  readonly networkKiBps: number;
  readonly flowsPerWindow: number;
  readonly writeKiBps: number;
  readonly entropy: number;
  /** Share of written blocks that had not changed since the last snapshot (hot blocks are rewritten). */
  readonly freshBlockShare: number;
  /** A misconfigured destination this VM keeps trying (denied by the policy), or none. */
  readonly habitualDenied: { readonly destination: string; readonly meanGapMs: number } | null;
}

interface Encryption {
  readonly vm: string;
  readonly instanceId: string;
  readonly fromMs: number;
  untilMs: number | null;
  readonly rateKiBps: number;
}

interface FlowEvent {
  readonly atMs: number;
  readonly denied: boolean;
  readonly destination: string;
  readonly outbound: boolean;
}

interface RecoveryCopy {
  readonly id: string;
  readonly vm: string;
  readonly snapshotId: string;
  readonly restorePointMs: number;
  readonly host: string;
  readonly network: 'recovery' | 'production';
  state: InstanceState;
  timer: TimerHandle | null;
}

interface SecurityModel {
  policy: SegmentationPolicy;
  baseline: SegmentationPolicy;
  readonly quarantined: Set<string>;
  readonly quarantinedAtMs: Map<string, number>;
  readonly windowMs: number;
  lastTelemetryAtMs: number | null;
  readonly noiseSeed: number;
  readonly baselines: Map<string, VmBaseline>;
  readonly flows: Map<string, FlowEvent[]>;
  readonly deniedByPair: Map<string, number>;
  readonly encryptions: Encryption[];
  readonly encryptedSinceMs: Map<string, number>;
  readonly deletionsRefused: { atMs: number; vm: string; actor: string; snapshotId: string }[];
  readonly restores: Map<string, RecoveryCopy>;
  restoreSeq: number;
  /** Restored copies put into service: which snapshot, when. */
  readonly promotions: { atMs: number; vm: string; snapshotId: string; restorePointMs: number }[];
}

/** What really happened to one VM in an attack, for the drill report (ground truth the detectors never see). */
export interface VmSecurityTruth {
  readonly vm: string;
  readonly encryptedSinceMs: number | null;
  readonly quarantinedAtMs: number | null;
  /** Bytes the attacker's encryption wrote before the VM was quarantined, and in all. */
  readonly attackerWrittenBeforeQuarantineKiB: number;
  readonly attackerWrittenKiB: number;
  /** The restore that put it back in service, if any, and the legitimate writes it could not bring back. */
  readonly restoredAtMs: number | null;
  readonly restorePointMs: number | null;
  readonly restoredFromCleanSnapshot: boolean | null;
  readonly legitimateWritesLostKiB: number | null;
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
  /** The security model: null until a network policy is applied, so other drills pay nothing for it. */
  private security: SecurityModel | null = null;
  private readonly securityRandom: Random;


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
        serviceNetworkUp: true,
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
    // Forking draws nothing from the other streams: existing drills stay byte for byte the same.
    this.securityRandom = random.fork('security');
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
      (other) =>
        other !== instance &&
        !other.lost &&
        (this.parameters.bootContentionScope === 'substrate' ? other.state === 'booting' || other.state === 'running' : other.host === host.name && other.state === 'booting'),
    ).length;
    const bootMs =
      request.role === 'secondary'
        ? Math.max(this.parameters.secondarySyncMinMs, vm.memoryGiB * this.parameters.secondarySyncMsPerGiB)
        : vm.bootTimeS * 1000 * this.parameters.bootTimeFactor * (1 + this.parameters.bootContention * concurrent);
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
    this.endEncryption(instance.id);
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
      this.security?.deletionsRefused.push({ atMs: now, vm, actor: request.actor, snapshotId: snapshot.id });
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
      // With security drills on, the hospital is taken to have run before the drill began: a day,
      // or two snapshot intervals, of history (a deferred VM snapshots once a day).
      const historyMs = this.security === null ? 0 : Math.min(retentionMs, Math.max(2 * intervalMs, 86_400_000));
      ledger = { untilMs: -historyMs, phaseMs: this.snapshotPhase.fork(vm).int(intervalMs), list: [] };
      this.snapshots.set(vm, ledger);
    }
    const now = this.clock.nowMs();
    const fromMs = Math.max(ledger.untilMs, now - retentionMs);
    let tick = Math.ceil((fromMs - ledger.phaseMs) / intervalMs) * intervalMs + ledger.phaseMs;
    if (tick <= ledger.untilMs && ledger.untilMs > 0) tick += intervalMs;
    for (; tick <= now; tick += intervalMs) {
      if ((tick <= 0 && this.security === null) || tick <= ledger.untilMs || !this.wasUp(store, tick)) continue;
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


  // ── Security: network policy, telemetry, attacker effects, restore (cyber-resilience) ──────

  applyNetworkPolicy(request: { token: FencingToken; policy: SegmentationPolicy }): ActionOutcome {
    const refused = this.checkToken('applyNetworkPolicy', request.token, null);
    if (refused) return refused;
    if (this.security === null) {
      this.security = {
        policy: request.policy,
        baseline: request.policy,
        quarantined: new Set(request.policy.quarantined),
        quarantinedAtMs: new Map(),
        windowMs: 10_000,
        lastTelemetryAtMs: null,
        noiseSeed: this.securityRandom.fork('noise').int(2 ** 31),
        baselines: new Map(),
        flows: new Map(),
        deniedByPair: new Map(),
        encryptions: [],
        encryptedSinceMs: new Map(),
        deletionsRefused: [],
        restores: new Map(),
        restoreSeq: 0,
        promotions: [],
      };
    } else {
      this.security.policy = request.policy;
      if (request.policy.quarantined.length === 0) this.security.baseline = request.policy;
      this.security.quarantined.clear();
      for (const vm of request.policy.quarantined) this.security.quarantined.add(vm);
    }
    return { ok: true, detail: `${request.policy.rules.length} rules enforced, default deny` };
  }

  /** The policy the twin enforces now (null before one is applied). */
  networkPolicy(): SegmentationPolicy | null {
    return this.security?.policy ?? null;
  }

  baselinePolicy(): SegmentationPolicy | null {
    return this.security?.baseline ?? null;
  }

  quarantineVm(request: { token: FencingToken; vm: string }): ActionOutcome {
    const refused = this.checkToken('quarantineVm', request.token, null);
    if (refused) return refused;
    const security = this.security;
    if (security === null) return this.refuse('quarantineVm', 'no network policy is applied');
    if (!this.index.vm.has(request.vm)) return this.refuse('quarantineVm', `unknown VM ${request.vm}`);
    if (security.quarantined.has(request.vm)) return { ok: true, detail: 'already quarantined' };
    security.policy = quarantine(security.policy, request.vm);
    security.quarantined.add(request.vm);
    security.quarantinedAtMs.set(request.vm, this.clock.nowMs());
    // Its probes now fail: the health check sees it at the next probe.
    for (const instance of this.instances.values()) if (instance.vm === request.vm && instance.state === 'running') this.scheduleHealth(instance);
    return { ok: true, detail: 'reaches the forensic network only' };
  }

  releaseVm(request: { token: FencingToken; vm: string }): ActionOutcome {
    const refused = this.checkToken('releaseVm', request.token, null);
    if (refused) return refused;
    const security = this.security;
    if (security === null) return this.refuse('releaseVm', 'no network policy is applied');
    if (!security.quarantined.has(request.vm)) return { ok: true, detail: 'not quarantined' };
    security.policy = release(security.policy, security.baseline, request.vm);
    security.quarantined.delete(request.vm);
    for (const instance of this.instances.values()) if (instance.vm === request.vm && instance.state === 'running') this.scheduleHealth(instance);
    return { ok: true };
  }

  /**
   * A connection attempt through the enforced policy (the attacker's, or anyone's): allowed ones
   * count as new flows at both ends, denied ones per VM pair and as denied attempts of the source.
   * A VM can only try while a copy of it runs.
   */
  attemptFlow(request: { from: string; to: string; port: number }): { allowed: boolean; reason: string } {
    const security = this.security;
    if (security === null) return { allowed: false, reason: 'no network policy is applied' };
    if (this.index.vm.has(request.from) && !this.hasRunningCopy(request.from)) return { allowed: false, reason: `${request.from} does not run` };
    const allowed = allows(security.policy, request.from, request.to, request.port);
    const now = this.clock.nowMs();
    const note = (vm: string, event: FlowEvent) => {
      if (!this.index.vm.has(vm)) return;
      let list = security.flows.get(vm);
      if (list === undefined) security.flows.set(vm, (list = []));
      if (list.length < 10_000) list.push(event);
    };
    if (allowed) {
      note(request.from, { atMs: now, denied: false, destination: request.to, outbound: true });
      note(request.to, { atMs: now, denied: false, destination: request.from, outbound: false });
      return { allowed: true, reason: 'allowed by the policy' };
    }
    const key = `${request.from}\u2192${request.to}`;
    security.deniedByPair.set(key, (security.deniedByPair.get(key) ?? 0) + 1);
    note(request.from, { atMs: now, denied: true, destination: request.to, outbound: true });
    return { allowed: false, reason: security.quarantined.has(request.from) || security.quarantined.has(request.to) ? 'quarantined' : 'denied by the policy' };
  }

  /** Denied connection attempts per (from → to) pair since the policy was applied. */
  deniedFlowsByPair(): ReadonlyMap<string, number> {
    return new Map(this.security?.deniedByPair ?? []);
  }

  hasRunningCopy(vm: string): boolean {
    for (const instance of this.instances.values()) {
      if (instance.vm === vm && instance.role === 'primary' && instance.state === 'running' && !instance.lost) return true;
    }
    return false;
  }

  /** The attacker's encryption of a VM's disk through its running primary; it ends when that copy stops. */
  startEncryption(vm: string, rateKiBps: number): boolean {
    const security = this.security;
    if (security === null) return false;
    const instance = [...this.instances.values()].find((candidate) => candidate.vm === vm && candidate.role === 'primary' && candidate.state === 'running' && !candidate.lost);
    if (instance === undefined) return false;
    const now = this.clock.nowMs();
    security.encryptions.push({ vm, instanceId: instance.id, fromMs: now, untilMs: null, rateKiBps });
    if (!security.encryptedSinceMs.has(vm)) security.encryptedSinceMs.set(vm, now);
    return true;
  }

  /** The newest fencing epoch: what stolen administrator credentials are worth. */
  adminToken(): FencingToken {
    return { epoch: this.newestEpoch };
  }

  private endEncryption(instanceId: string): void {
    if (this.security === null) return;
    const now = this.clock.nowMs();
    for (const encryption of this.security.encryptions) if (encryption.instanceId === instanceId && encryption.untilMs === null) encryption.untilMs = now;
  }

  private baselineOf(vm: string): VmBaseline {
    const security = this.security!;
    let baseline = security.baselines.get(vm);
    if (baseline === undefined) {
      const random = this.securityRandom.fork(`baseline/${vm}`);
      const info = this.index.vm.get(vm)!;
      const habitual = random.next() < 0.3;
      baseline = {
        networkKiBps: (50 + random.next() * 950) * Math.max(1, info.vcpu),
        flowsPerWindow: 0.3 + random.next() * 3,
        writeKiBps: 100 + random.next() * 4000,
        // Compressed images (PACS, endoscopy) write high-entropy data already; databases less so.
        entropy: 0.35 + random.next() * 0.5,
        freshBlockShare: 0.15 + random.next() * 0.35,
        habitualDenied: habitual ? { destination: `ntp-legacy-${random.int(4)}`, meanGapMs: (10 + random.next() * 50) * 60_000 } : null,
      };
      security.baselines.set(vm, baseline);
    }
    return baseline;
  }

  /** A deterministic uniform in [0, 1) for (vm, window, stream): telemetry noise needs no state. */
  private noise(vm: string, windowIndex: number, stream: number): number {
    let h = (this.security!.noiseSeed ^ Math.imul(windowIndex, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
    for (let index = 0; index < vm.length; index++) h = Math.imul(h ^ vm.charCodeAt(index), 0x01000193) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x7feb352d);
    h ^= h >>> 15;
    h = Math.imul(h, 0x846ca68b);
    h ^= h >>> 16;
    return (h >>> 0) / 4294967296;
  }

  private gaussian(vm: string, windowIndex: number, stream: number): number {
    const u = Math.max(1e-12, this.noise(vm, windowIndex, stream));
    const v = this.noise(vm, windowIndex, stream + 100);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  private poisson(mean: number, uniform: number): number {
    // Inverse CDF; means here are small (a few per window).
    let k = 0;
    let p = Math.exp(-mean);
    let cumulative = p;
    while (uniform > cumulative && k < 1000) {
      k += 1;
      p *= mean / k;
      cumulative += p;
    }
    return k;
  }

  private legitimateWriteKiBps(vm: string, atMs: number): number {
    const info = this.index.vm.get(vm)!;
    const service = this.index.service.get(info.service)!;
    const load = cpuDemand(info.vcpu, service.demand, atMs, this.surge) / Math.max(0.1, info.vcpu);
    return this.baselineOf(vm).writeKiBps * (0.3 + load);
  }

  private encryptedKiB(vm: string, fromMs: number, toMs: number): number {
    let total = 0;
    for (const encryption of this.security!.encryptions) {
      if (encryption.vm !== vm) continue;
      const start = Math.max(fromMs, encryption.fromMs);
      const end = Math.min(toMs, encryption.untilMs ?? toMs);
      if (end > start) total += (encryption.rateKiBps * (end - start)) / 1000;
    }
    return total;
  }

  /**
   * One sample per running production VM for the window since the last call (the controller's
   * security loop calls it on its interval). Generated on demand from the seed, the VM's demand
   * and what the attacker did: nothing runs between calls.
   */
  securityTelemetry(): readonly VmSecuritySample[] {
    const security = this.security;
    if (security === null) return [];
    const now = this.clock.nowMs();
    const windowMs = security.lastTelemetryAtMs === null ? security.windowMs : Math.max(1, now - security.lastTelemetryAtMs);
    security.lastTelemetryAtMs = now;
    const fromMs = now - windowMs;
    const windowIndex = Math.floor(now / 1000);
    const samples: VmSecuritySample[] = [];
    for (const instance of this.instances.values()) {
      if (instance.role !== 'primary' || instance.state !== 'running' || instance.lost) continue;
      const vm = instance.vm;
      const info = this.index.vm.get(vm)!;
      const service = this.index.service.get(info.service)!;
      const baseline = this.baselineOf(vm);
      const load = cpuDemand(info.vcpu, service.demand, now, this.surge) / Math.max(0.1, info.vcpu);
      const events = (security.flows.get(vm) ?? []).filter((event) => event.atMs > fromMs && event.atMs <= now);
      const deniedDestinations = events.filter((event) => event.denied).map((event) => event.destination);
      let deniedFlows = deniedDestinations.length;
      if (baseline.habitualDenied !== null && this.noise(vm, windowIndex, 1) < windowMs / baseline.habitualDenied.meanGapMs) {
        deniedFlows += 1;
        deniedDestinations.push(baseline.habitualDenied.destination);
      }
      // A new mistake now and then (a reconfigured client, a stale address): about one per three days per VM.
      if (this.noise(vm, windowIndex, 2) < windowMs / (3 * 86_400_000)) {
        deniedFlows += 1;
        deniedDestinations.push(`stale-${Math.floor(this.noise(vm, windowIndex, 3) * 1e6)}`);
      }
      const newFlows = this.poisson(baseline.flowsPerWindow * (windowMs / security.windowMs) * (0.4 + load), this.noise(vm, windowIndex, 4)) + events.filter((event) => !event.denied).length;
      const legitimateKiBps = baseline.writeKiBps * (0.3 + load) * Math.exp(0.25 * this.gaussian(vm, windowIndex, 5));
      const encryptedKiBps = (this.encryptedKiB(vm, fromMs, now) * 1000) / windowMs;
      const legitimateEntropy = Math.min(0.97, Math.max(0.05, baseline.entropy + 0.02 * this.gaussian(vm, windowIndex, 6)));
      const written = legitimateKiBps + encryptedKiBps;
      const entropy = (legitimateKiBps * legitimateEntropy + encryptedKiBps * 0.998) / written;
      const freshShare = Math.min(0.95, baseline.freshBlockShare * Math.exp(0.2 * this.gaussian(vm, windowIndex, 7)));
      const networkFactor = (0.3 + load) * Math.exp(0.3 * this.gaussian(vm, windowIndex, 8));
      samples.push({
        vm,
        atMs: now,
        windowMs,
        cpuPercent: Math.min(100, 100 * load * (0.9 + 0.2 * this.noise(vm, windowIndex, 9)) + (encryptedKiBps > 0 ? 35 : 0)),
        networkInKiBps: baseline.networkKiBps * networkFactor,
        networkOutKiBps: baseline.networkKiBps * 0.6 * networkFactor,
        newFlows,
        deniedFlows,
        deniedDestinations,
        diskWriteKiBps: written,
        writeEntropy: entropy,
        snapshotChangeKiBps: legitimateKiBps * freshShare + encryptedKiBps * 0.97,
        snapshotDeletionsRefused: security.deletionsRefused.filter((refusal) => refusal.vm === vm && refusal.atMs > fromMs && refusal.atMs <= now).length,
      });
    }
    // Flow events older than the window are spent.
    for (const [vm, list] of security.flows) {
      const kept = list.filter((event) => event.atMs > now);
      if (kept.length !== list.length) security.flows.set(vm, kept);
    }
    return samples;
  }

  restoreSnapshot(request: RestoreRequest): ActionOutcome {
    const refused = this.checkToken('restoreSnapshot', request.token, null);
    if (refused) return refused;
    const security = this.security;
    if (security === null) return this.refuse('restoreSnapshot', 'no network policy is applied: there is no isolated recovery network');
    if (request.network !== 'recovery') {
      return this.refuse('restoreSnapshot', 'restore into the recovery network, verify its health, then promote it (never two running copies)');
    }
    const info = this.index.vm.get(request.vm);
    const host = this.hosts.get(request.host);
    if (info === undefined || host === undefined) return this.refuse('restoreSnapshot', 'unknown VM or host');
    if (!this.managementReachable(host)) return this.refuse('restoreSnapshot', `host ${host.name} is not reachable`);
    const snapshot = this.listSnapshots(request.vm).find((candidate) => candidate.id === request.snapshotId);
    if (snapshot === undefined) return this.refuse('restoreSnapshot', `no snapshot ${request.snapshotId}`);
    const copy: RecoveryCopy = {
      id: `restore-${request.vm}-${++security.restoreSeq}`,
      vm: request.vm,
      snapshotId: snapshot.id,
      restorePointMs: snapshot.takenAtMs,
      host: host.name,
      network: 'recovery',
      state: 'booting',
      timer: null,
    };
    security.restores.set(copy.id, copy);
    copy.timer = this.after(info.bootTimeS * 1000, () => {
      copy.timer = null;
      if (copy.state === 'booting') copy.state = 'running';
    });
    return { ok: true, detail: copy.id, restorePointMs: snapshot.takenAtMs };
  }

  restoreStatus(restoreId: string): RestoreObservation | null {
    const copy = this.security?.restores.get(restoreId);
    if (copy === undefined) return null;
    const host = this.hosts.get(copy.host)!;
    const encryptedSinceMs = this.security!.encryptedSinceMs.get(copy.vm);
    // The health check on the recovery network opens the application's data: a snapshot taken
    // after the encryption began holds encrypted files and fails it.
    const clean = encryptedSinceMs === undefined || copy.restorePointMs < encryptedSinceMs;
    const healthy = copy.state === 'running' && this.alive(host) && clean;
    return { id: copy.id, vm: copy.vm, snapshotId: copy.snapshotId, host: copy.host, network: copy.network, state: copy.state, healthy, restorePointMs: copy.restorePointMs };
  }

  /** Discards a restored copy that will not be used (it failed its health check). */
  discardRestore(restoreId: string): void {
    const copy = this.security?.restores.get(restoreId);
    if (copy === undefined) return;
    if (copy.timer) this.clock.cancel(copy.timer);
    this.security!.restores.delete(restoreId);
  }

  promoteRestored(request: { token: FencingToken; vm: string; restoreId: string }): ActionOutcome {
    const refused = this.checkToken('promoteRestored', request.token, request.vm);
    if (refused) return refused;
    const security = this.security;
    const copy = security?.restores.get(request.restoreId);
    if (security === null || copy === undefined || copy.vm !== request.vm) return this.refuse('promoteRestored', `no restored copy ${request.restoreId} of ${request.vm}`);
    const status = this.restoreStatus(copy.id)!;
    if (!status.healthy) return this.refuse('promoteRestored', `restored copy ${copy.id} has not passed its health check`);
    const host = this.hosts.get(copy.host)!;
    this.bumpGeneration(request.vm);
    // Every production copy stops first (primary and any lockstep secondary: both run the infected guest).
    const infected = [...this.instances.values()].filter((instance) => instance.vm === request.vm && instance.state !== 'stopped');
    for (const instance of infected) {
      if (instance.lifecycleTimer) this.clock.cancel(instance.lifecycleTimer);
      instance.lifecycleTimer = null;
      instance.state = 'stopping';
      this.endEncryption(instance.id);
      this.report(instance);
    }
    security.restores.delete(copy.id);
    const service = this.index.service.get(this.index.vm.get(request.vm)!.service)!;
    this.after(this.parameters.stopLatencyMs, () => {
      for (const instance of infected) if (this.instances.has(instance.id)) this.removeInstance(instance);
      if (!this.alive(host)) return;
      const home = this.datastores.get(service.datastore)!;
      const store = home.up || home.replicatedTo === null ? home : this.datastores.get(home.replicatedTo) ?? home;
      const instance: TwinInstance = {
        id: `${request.vm}#${++this.instanceSeq}`,
        vm: request.vm,
        host: host.name,
        role: 'primary',
        state: 'running',
        lost: false,
        healthy: false,
        synced: false,
        datastore: store.name,
        storagePausedUntilMs: 0,
        shares: DEFAULT_SHARES[Math.min(3, tierOf(this.blueprint, service).priority)] ?? 1000,
        migrating: false,
        healthTimer: null,
        lifecycleTimer: null,
      };
      this.instances.set(instance.id, instance);
      security.promotions.push({ atMs: this.clock.nowMs(), vm: request.vm, snapshotId: copy.snapshotId, restorePointMs: copy.restorePointMs });
      this.emit({ type: 'instance.changed', instance: this.observe(instance), restorePointMs: copy.restorePointMs });
      this.scheduleHealth(instance);
    });
    return { ok: true, detail: `${copy.id} replaces ${infected.length} infected cop${infected.length === 1 ? 'y' : 'ies'}`, restorePointMs: copy.restorePointMs };
  }

  /** Ground truth of an attack on one VM (what the detectors never see), for the drill report. */
  securityTruth(vm: string): VmSecurityTruth {
    const security = this.security;
    const encryptedSinceMs = security?.encryptedSinceMs.get(vm) ?? null;
    const quarantinedAtMs = security?.quarantinedAtMs.get(vm) ?? null;
    const now = this.clock.nowMs();
    const promotion = security?.promotions.find((entry) => encryptedSinceMs !== null && entry.vm === vm && entry.atMs >= encryptedSinceMs) ?? null;
    let lostKiB: number | null = null;
    if (promotion !== null) {
      // Legitimate writes between the restore point and the quarantine (after it, no client reaches the VM).
      const endMs = quarantinedAtMs ?? promotion.atMs;
      lostKiB = 0;
      for (let atMs = promotion.restorePointMs; atMs < endMs; atMs += 60_000) {
        lostKiB += (this.legitimateWriteKiBps(vm, atMs) * Math.min(60_000, endMs - atMs)) / 1000;
      }
    }
    return {
      vm,
      encryptedSinceMs,
      quarantinedAtMs,
      attackerWrittenBeforeQuarantineKiB: security === null ? 0 : this.encryptedKiB(vm, 0, quarantinedAtMs ?? now),
      attackerWrittenKiB: security === null ? 0 : this.encryptedKiB(vm, 0, now),
      restoredAtMs: promotion?.atMs ?? null,
      restorePointMs: promotion?.restorePointMs ?? null,
      restoredFromCleanSnapshot: promotion === null || encryptedSinceMs === null ? null : promotion.restorePointMs < encryptedSinceMs,
      legitimateWritesLostKiB: lostKiB,
    };
  }

  /** Snapshot deletions refused by immutability, with who asked (for the drill report). */
  refusedSnapshotDeletions(): readonly { atMs: number; vm: string; actor: string; snapshotId: string }[] {
    return this.security?.deletionsRefused ?? [];
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
      case 'host-network-loss': {
        const host = this.mustHost(fault.host);
        host.managementLinkUp = false;
        host.serviceNetworkUp = false;
        break;
      }
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
      case 'host-network-loss': {
        const host = this.mustHost(fault.host);
        host.managementLinkUp = true;
        host.serviceNetworkUp = true;
        break;
      }
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
    const splitBrainVms: string[] = [];
    for (const instance of this.instances.values()) {
      if (!this.isActiveCopy(instance)) continue;
      const count = (activeCopies.get(instance.vm) ?? 0) + 1;
      activeCopies.set(instance.vm, count);
      if (count === 2) splitBrainVms.push(instance.vm);
    }
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

  /** Every host mounts every datastore (shared storage across both rooms). */
  private hostDatastores(_host: TwinHost): TwinDatastore[] {
    return [...this.datastores.values()];
  }

  private datastoreHeartbeat(host: TwinHost): boolean {
    return this.alive(host) && host.storagePathUp && !host.storageRevoked && this.hostDatastores(host).some((store) => store.up);
  }

  private isHealthy(instance: TwinInstance): boolean {
    if (instance.state !== 'running' || instance.lost) return false;
    const host = this.hosts.get(instance.host)!;
    if (!this.alive(host) || !host.storagePathUp || host.storageRevoked) return false;
    // Cut off the service networks, it runs but answers no probe.
    if (!host.serviceNetworkUp) return false;
    if (this.clock.nowMs() < instance.storagePausedUntilMs) return false;
    // A quarantined VM answers no probe from the service network.
    if (this.security !== null && this.security.quarantined.has(instance.vm)) return false;
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

  private killInstances(host: TwinHost, _reason: string): void {
    for (const instance of [...this.instances.values()]) {
      if (instance.host !== host.name || instance.lost) continue;
      instance.lost = true;
      this.endEncryption(instance.id);
    }
  }

  private removeInstance(instance: TwinInstance): void {
    this.endEncryption(instance.id);
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
