/**
 * What survives what. For every host, rack, room, power feed and pair of hosts, the analysis asks
 * the controller's own decide() what it would do — failing over, restarting, shedding — on an
 * instantaneous substrate until nothing changes, so that the plan's prediction and the
 * controller's behaviour are the same decisions (a test replays every case on the twin).
 */
import { DEFAULT_TIMINGS } from '../control/decide.ts';
import { simulateRecovery } from '../control/recovery.ts';
import type { InstanceObservation } from '../ports/index.ts';
import { applyMark, type ControllerState, type HostView, type RecoveryTarget } from '../control/state.ts';
import type { Blueprint } from '../model/index.ts';
import { effectiveRtoS, tierOf } from '../model/index.ts';
import { CapacityModel, type Placement } from '../capacity/capacity.ts';
import { restartOrder } from '../capacity/first-fit.ts';

export type FailureKind = 'host' | 'rack' | 'room' | 'powerFeed' | 'hostPair';

export interface FailureCase {
  readonly kind: FailureKind;
  readonly ids: readonly string[];
}

export interface FailureOutcome {
  readonly failed: FailureCase;
  /** Every continuous and critical service keeps running or restarts within its RTO. */
  readonly survivable: boolean;
  /** Services with at least one VM shed (stopped or not restarted for lack of capacity). */
  readonly shed: readonly string[];
  /** Continuous or critical services left without a running copy. */
  readonly lost: readonly string[];
  /** Continuous VMs that lost both copies and restart cold. */
  readonly coldRestarts: readonly string[];
  /** Estimated worst restart time of an affected continuous or critical service, in seconds. */
  readonly worstRtoEstimateS: number;
  /** Continuous or critical services whose estimated restart exceeds their RTO. */
  readonly late: readonly string[];
  readonly hostsLost: number;
}

/** Detection, fencing and promotion, in seconds: the twin's defaults, which drills measure. */
const DETECT_AND_FENCE_S = 2.6;
const FAILOVER_S = 0.8;

export function failureCases(blueprint: Blueprint, options: { pairs?: boolean } = {}): FailureCase[] {
  const cases: FailureCase[] = [];
  for (const host of blueprint.hosts) cases.push({ kind: 'host', ids: [host.name] });
  for (const rack of blueprint.racks) cases.push({ kind: 'rack', ids: [rack] });
  for (const room of blueprint.rooms) cases.push({ kind: 'room', ids: [room] });
  for (const feed of blueprint.powerFeeds) cases.push({ kind: 'powerFeed', ids: [feed.name] });
  if (options.pairs !== false) {
    const hosts = blueprint.hosts;
    for (let a = 0; a < hosts.length; a++) for (let b = a + 1; b < hosts.length; b++) cases.push({ kind: 'hostPair', ids: [hosts[a]!.name, hosts[b]!.name] });
  }
  return cases;
}

export function hostsOfCase(blueprint: Blueprint, failure: FailureCase): Set<string> {
  const ids = new Set(failure.ids);
  return new Set(
    blueprint.hosts
      .filter((host) => {
        switch (failure.kind) {
          case 'host':
          case 'hostPair':
            return ids.has(host.name);
          case 'rack':
            return ids.has(host.rack);
          case 'room':
            return ids.has(host.room);
          case 'powerFeed':
            return ids.has(host.powerFeed);
        }
      })
      .map((host) => host.name),
  );
}

export function analyseFailures(
  blueprint: Blueprint,
  placements: ReadonlyMap<string, Placement>,
  cases: readonly FailureCase[] = failureCases(blueprint),
): FailureOutcome[] {
  const model = new CapacityModel(blueprint);
  const order = restartOrder(blueprint).map((vm) => vm.name);
  return cases.map((failure) => analyseCase(blueprint, model, order, placements, failure));
}

export function analyseCase(
  blueprint: Blueprint,
  model: CapacityModel,
  order: readonly string[],
  placements: ReadonlyMap<string, Placement>,
  failure: FailureCase,
): FailureOutcome {
  const failedHosts = hostsOfCase(blueprint, failure);
  const failedStores = new Set(failure.kind === 'room' ? blueprint.datastores.filter((store) => failure.ids.includes(store.room)).map((store) => store.name) : []);
  const start = initialState(blueprint, placements, failedHosts, failedStores);
  const simulation = simulateRecovery({ blueprint, model, order, plan: placements, state: start });
  const { restarted, promoted, coldRestarted } = simulation;
  const state = simulation.state;

  const running = new Set<string>();
  for (const instance of state.instances.values()) if (instance.role === 'primary') running.add(instance.vm);
  const shed = new Set<string>();
  const lost = new Set<string>();
  const coldRestarts = blueprint.vms.filter((vm) => coldRestarted.has(vm.name)).map((vm) => vm.name);
  for (const vm of blueprint.vms) {
    const { service, tier } = model.info(vm.name);
    if (running.has(vm.name)) continue;
    if (tier.sheddable) shed.add(service.name);
    else lost.add(service.name);
  }
  const worstRtoEstimateS = estimateWorstRto(blueprint, model, restarted, promoted);
  let survivable = lost.size === 0;
  const late: string[] = [];
  for (const service of blueprint.services) {
    const tier = tierOf(blueprint, service);
    if (tier.sheddable) continue;
    const estimate = serviceRtoEstimate(blueprint, service.name, restarted, promoted);
    const target = effectiveRtoS(blueprint, tier, service.vms.some((vm) => coldRestarted.has(vm.name)));
    if (estimate > target) {
      survivable = false;
      late.push(`${service.name} (${Math.round(estimate)} s > ${target} s)`);
    }
  }
  return {
    failed: failure,
    survivable,
    shed: [...shed].sort(),
    lost: [...lost].sort(),
    coldRestarts,
    worstRtoEstimateS,
    late,
    hostsLost: failedHosts.size,
  };
}

function initialState(
  blueprint: Blueprint,
  placements: ReadonlyMap<string, Placement>,
  failedHosts: ReadonlySet<string>,
  failedStores: ReadonlySet<string>,
): ControllerState {
  const model = new CapacityModel(blueprint);
  const instances = new Map<string, InstanceObservation>();
  for (const [vm, placement] of placements) {
    const service = model.info(vm).service;
    const home = service.datastore;
    // Synchronously replicated volumes go on from the replica when one copy is lost (as the twin models).
    const homeReplica = model.index.datastore.get(home)?.replicatedTo ?? null;
    const sync = model.info(vm).tier.replication.mode === 'sync';
    const primaryDisk = !failedStores.has(home) ? home : sync && homeReplica !== null && !failedStores.has(homeReplica) ? homeReplica : null;
    if (!failedHosts.has(placement.primary) && primaryDisk !== null) {
      instances.set(`${vm}#p`, { id: `${vm}#p`, vm, host: placement.primary, role: 'primary', state: 'running', healthy: true, synced: false, datastore: primaryDisk });
    }
    if (placement.secondary !== null && !failedHosts.has(placement.secondary)) {
      // A secondary keeps its disk in its own room, on the home datastore or its replica (as the controller places it).
      const room = model.host(placement.secondary).room;
      const replica = model.index.datastore.get(home)?.replicatedTo ?? null;
      const disk = [home, ...(replica === null ? [] : [replica])].find((name) => model.index.datastore.get(name)?.room === room) ?? home;
      if (!failedStores.has(disk)) {
        instances.set(`${vm}#s`, { id: `${vm}#s`, vm, host: placement.secondary, role: 'secondary', state: 'running', healthy: true, synced: true, datastore: disk });
      }
    }
  }
  const hosts = new Map<string, HostView>(
    blueprint.hosts.map((host) => [
      host.name,
      {
        name: host.name,
        channels: { management: { up: true, lastSeenAtMs: 10_000 }, datastore: { up: true, lastSeenAtMs: 10_000 } },
        fencedAtMs: failedHosts.has(host.name) ? 0 : null,
        poweredOn: !failedHosts.has(host.name),
      },
    ]),
  );
  return {
    hosts,
    instances,
    datastoresUp: new Map(blueprint.datastores.map((store) => [store.name, !failedStores.has(store.name)])),
    vms: new Map(
      blueprint.vms.map((vm) => [vm.name, { pendingSinceMs: null, waitReason: null, shedReason: null, coldRestart: false, lastHost: placements.get(vm.name)?.primary ?? null }]),
    ),
    inFlight: new Map(),
    hostStatus: new Map(blueprint.hosts.map((host) => [host.name, failedHosts.has(host.name) ? 'fenced' : 'up'])),
    unhealthySinceMs: new Map(),
    reservations: new Map(),
  };
}

/**
 * A restarted VM is back after detection and fencing, then the boots along its dependency chain
 * (a dependency restarted too must pass its health check first); a promoted one after failover.
 */
function serviceRtoEstimate(blueprint: Blueprint, serviceName: string, restarted: ReadonlySet<string>, promoted: ReadonlySet<string>): number {
  const services = new Map(blueprint.services.map((service) => [service.name, service]));
  // When a service answers again: all its restarted VMs are back (the RTO measured by drills).
  const backAt = new Map<string, number>();
  // When a dependent may start: the controller waits for one healthy VM of each dependency.
  const usableAt = new Map<string, number>();
  const compute = (name: string, trail: Set<string>): void => {
    if (backAt.has(name)) return;
    const service = services.get(name);
    if (service === undefined || trail.has(name)) {
      backAt.set(name, 0);
      usableAt.set(name, 0);
      return;
    }
    trail.add(name);
    let dependenciesReady = DETECT_AND_FENCE_S;
    for (const dependency of service.dependsOn) {
      compute(dependency, trail);
      dependenciesReady = Math.max(dependenciesReady, usableAt.get(dependency) ?? 0);
    }
    // The controller waits for dependencies at most dependencyWaitMaxMs, then starts anyway.
    dependenciesReady = Math.min(dependenciesReady, DETECT_AND_FENCE_S + DEFAULT_TIMINGS.dependencyWaitMaxMs / 1000);
    let back = 0;
    let usable = Number.POSITIVE_INFINITY;
    for (const vm of service.vms) {
      const ready = restarted.has(vm.name) ? dependenciesReady + vm.bootTimeS : promoted.has(vm.name) ? DETECT_AND_FENCE_S + FAILOVER_S : 0;
      back = Math.max(back, ready);
      usable = Math.min(usable, ready);
    }
    trail.delete(name);
    backAt.set(name, back);
    usableAt.set(name, usable === Number.POSITIVE_INFINITY ? 0 : usable);
  };
  compute(serviceName, new Set());
  return backAt.get(serviceName) ?? 0;
}

function estimateWorstRto(blueprint: Blueprint, model: CapacityModel, restarted: ReadonlySet<string>, promoted: ReadonlySet<string>): number {
  let worst = 0;
  for (const service of blueprint.services) {
    if (model.info(service.vms[0]!.name).tier.sheddable) continue;
    worst = Math.max(worst, serviceRtoEstimate(blueprint, service.name, restarted, promoted));
  }
  return worst;
}
