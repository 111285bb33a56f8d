/**
 * The twin's shared state: its hosts, VM instances and datastores as records, the failed racks,
 * rooms and feeds, and the bookkeeping every part of the twin does the same way — events to the
 * subscribers, the fencing-token checks every substrate must make, refusals, VM generations, and
 * the sequence of instance ids. One TwinState per twin; every other module of the twin acts on it,
 * so a run's order of events (and its journal) is the order the single-file twin had.
 */
import type {
  ActionOutcome,
  Clock,
  FencingToken,
  InstanceObservation,
  InstanceRole,
  InstanceState,
  SubstrateEvent,
  TimerHandle,
} from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import type { Blueprint, BlueprintIndex, Service } from '../../model/index.ts';
import { indexBlueprint, tierOf } from '../../model/index.ts';
import { DEFAULT_SHARES, type TwinParameters } from './parameters.ts';
import type { SecurityModel } from './security-model.ts';

export interface TwinHost {
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
  /** Its wall clock minus the simulation's: what it stamps is off by this much (a clock step). */
  clockOffsetMs: number;
}

export interface TwinInstance {
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
  /** When it last came up running on its host (a crash-looping guest dies a while after). */
  runningSinceMs: number | null;
  /** Its last health probe's answer time, reported only while a health fault is on (else undefined). */
  latencyMs: number | undefined;
}

/** The health faults in force: what makes a copy slow or sick while its host's heartbeats are fine. */
export interface TwinHealthFaults {
  /** Host → the fraction of its CPU and disk speed it runs at. */
  readonly slowdowns: Map<string, number>;
  /** VM → its health pattern: failing `failMs`, passing `passMs`, from `sinceMs`. */
  readonly patterns: Map<string, { readonly failMs: number; readonly passMs: number; readonly sinceMs: number }>;
  /** Datastore → extra I/O latency. */
  readonly datastoreLatencyMs: Map<string, number>;
  /** VM → the host on which its guest crashes `afterMs` after each boot. */
  readonly crashLoops: Map<string, { readonly host: string; readonly afterMs: number }>;
}

export interface TwinDatastore {
  readonly name: string;
  readonly room: string;
  readonly replicatedTo: string | null;
  readonly immutableSnapshots: boolean;
  up: boolean;
  downSinceMs: number | null;
  /** Closed and open intervals when it was down: snapshots are not taken then. */
  readonly outages: { fromMs: number; toMs: number | null }[];
  /** Closed and open intervals when its snapshots failed (it was full, or its snapshot service broken), and why. */
  readonly snapshotOutages: { fromMs: number; toMs: number | null; reason: string }[];
}

/** What a new instance starts as; the rest (id, timers, pauses, migration) starts empty. */
export interface NewInstance {
  readonly vm: string;
  readonly host: string;
  readonly role: InstanceRole;
  readonly state: InstanceState;
  readonly healthy: boolean;
  readonly synced: boolean;
  readonly datastore: string;
  readonly shares: number;
}

export class TwinState {
  readonly hosts = new Map<string, TwinHost>();
  readonly instances = new Map<string, TwinInstance>();
  readonly datastores = new Map<string, TwinDatastore>();
  readonly failedRacks = new Set<string>();
  readonly failedRooms = new Set<string>();
  readonly failedFeeds = new Set<string>();
  readonly generations = new Map<string, number>();
  readonly index: BlueprintIndex;
  readonly refusals: { atMs: number; action: string; reason: string }[] = [];
  /** The newest fencing epoch seen: older ones are refused. */
  newestEpoch = 0;
  /** A mass-casualty event: services' demand is multiplied by their surge factor. */
  surge = false;
  /** The security model: null until a network policy is applied, so other drills pay nothing for it. */
  security: SecurityModel | null = null;
  /** Health faults (issue 13), empty unless a drill strikes one (see health.ts). */
  readonly health: TwinHealthFaults = { slowdowns: new Map(), patterns: new Map(), datastoreLatencyMs: new Map(), crashLoops: new Map() };
  private readonly listeners = new Set<(event: SubstrateEvent) => void>();
  private instanceSeq = 0;
  /** Each copy's place in `instances` (its sequence number), and the copies by host and by VM. */
  private readonly places = new Map<TwinInstance, number>();
  private readonly onHost = new Map<string, Set<TwinInstance>>();
  private readonly ofVm = new Map<string, Set<TwinInstance>>();

  constructor(
    readonly blueprint: Blueprint,
    readonly clock: Clock,
    random: Random,
    readonly parameters: TwinParameters,
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
        clockOffsetMs: 0,
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
        snapshotOutages: [],
      });
    }
  }

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: SubstrateEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  after(delayMs: number, callback: () => void): TimerHandle {
    return this.clock.at(this.clock.nowMs() + delayMs, callback);
  }

  /** Refuses a token older than the newest epoch, or one whose VM generation is not the current one. */
  checkToken(action: string, token: FencingToken, vm: string | null): ActionOutcome | null {
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

  refuse(action: string, reason: string): ActionOutcome {
    this.refusals.push({ atMs: this.clock.nowMs(), action, reason });
    return { ok: false, reason };
  }

  bumpGeneration(vm: string): void {
    this.generations.set(vm, (this.generations.get(vm) ?? 0) + 1);
  }

  mustHost(name: string): TwinHost {
    const host = this.hosts.get(name);
    if (host === undefined) throw new Error(`twin: unknown host ${name}`);
    return host;
  }

  mustDatastore(name: string): TwinDatastore {
    const store = this.datastores.get(name);
    if (store === undefined) throw new Error(`twin: unknown datastore ${name}`);
    return store;
  }

  /** The CPU shares a copy of the service's VMs starts with: its tier's default. */
  defaultShares(service: Service): number {
    return DEFAULT_SHARES[Math.min(3, tierOf(this.blueprint, service).priority)] ?? 1000;
  }

  /** Records a new instance under the next id (`vm#n`, one sequence for the whole twin). */
  addInstance(fields: NewInstance): TwinInstance {
    const instance: TwinInstance = {
      id: `${fields.vm}#${++this.instanceSeq}`,
      ...fields,
      lost: false,
      storagePausedUntilMs: 0,
      migrating: false,
      healthTimer: null,
      lifecycleTimer: null,
      runningSinceMs: fields.state === 'running' ? this.clock.nowMs() : null,
      latencyMs: undefined,
    };
    this.instances.set(instance.id, instance);
    this.places.set(instance, this.instanceSeq);
    addTo(this.onHost, instance.host, instance);
    addTo(this.ofVm, instance.vm, instance);
    return instance;
  }

  /** Forgets a copy (it stopped, or died and is known gone). */
  deleteInstance(instance: TwinInstance): void {
    this.instances.delete(instance.id);
    this.places.delete(instance);
    this.onHost.get(instance.host)?.delete(instance);
    this.ofVm.get(instance.vm)?.delete(instance);
  }

  /** A copy now runs on `host` (a live migration completed). */
  moveInstance(instance: TwinInstance, host: string): void {
    this.onHost.get(instance.host)?.delete(instance);
    instance.host = host;
    addTo(this.onHost, host, instance);
  }

  /** The copies on a host, in the order of `instances` (a 10,000-VM twin is not searched whole for them). */
  instancesOn(host: string): TwinInstance[] {
    return this.inOrder(this.onHost.get(host));
  }

  /** A VM's copies, in the order of `instances`. */
  instancesOf(vm: string): TwinInstance[] {
    return this.inOrder(this.ofVm.get(vm));
  }

  /** A VM's copies in no particular order: for a question whose answer does not depend on it (a count, an any). */
  copiesOfVm(vm: string): Iterable<TwinInstance> {
    return this.ofVm.get(vm) ?? NO_COPIES;
  }

  /** The copies on a host that died with it (lost), in the order of `instances`; a host with none is not sorted. */
  lostOn(host: string): TwinInstance[] {
    let lost: TwinInstance[] | null = null;
    for (const instance of this.onHost.get(host) ?? NO_COPIES) if (instance.lost) (lost ??= []).push(instance);
    if (lost === null) return [];
    return lost.length === 1 ? lost : lost.sort((a, b) => this.places.get(a)! - this.places.get(b)!);
  }

  private inOrder(copies: ReadonlySet<TwinInstance> | undefined): TwinInstance[] {
    if (copies === undefined || copies.size === 0) return [];
    return [...copies].sort((a, b) => this.places.get(a)! - this.places.get(b)!);
  }

  observe(instance: TwinInstance): InstanceObservation {
    return {
      id: instance.id,
      vm: instance.vm,
      host: instance.host,
      role: instance.role,
      state: instance.state,
      healthy: instance.healthy,
      synced: instance.synced,
      datastore: instance.datastore,
      ...(instance.latencyMs === undefined ? {} : { latencyMs: instance.latencyMs }),
    };
  }

  report(instance: TwinInstance): void {
    this.emit({ type: 'instance.changed', instance: this.observe(instance) });
  }

  /** The attacker's encryption through this copy stops with it. */
  endEncryption(instanceId: string): void {
    if (this.security === null) return;
    const now = this.clock.nowMs();
    for (const encryption of this.security.encryptions) if (encryption.instanceId === instanceId && encryption.untilMs === null) encryption.untilMs = now;
  }
}

function addTo(index: Map<string, Set<TwinInstance>>, key: string, instance: TwinInstance): void {
  const copies = index.get(key);
  if (copies === undefined) index.set(key, new Set([instance]));
  else copies.add(instance);
}

const NO_COPIES: ReadonlySet<TwinInstance> = new Set();
