/**
 * Instances: what runs where. It indexes the copies by VM and by host, counts the room they hold,
 * stops the copies that must stop (their host lost its storage path, their disk is unreachable,
 * they failed their health check too long), fences an isolated host whose VMs stopped serving,
 * and settles a VM that runs (a second copy is stopped, its waits and claims are cleared).
 */
import type { InstanceObservation } from '../../ports/index.ts';
import type { CapacityModel } from '../../capacity/capacity.ts';
import { indexInstances, type InstanceIndex } from '../instance-table.ts';
import type { Hosts } from './hosts.ts';
import type { Pass } from './pass.ts';

export interface Instances {
  readonly byVm: ReadonlyMap<string, readonly InstanceObservation[]>;
  readonly byHost: ReadonlyMap<string, readonly InstanceObservation[]>;
  /** Services with a healthy primary on a reachable host: what a dependant may wait for. */
  readonly healthyServices: { has(service: string): boolean };
}

/** One VM's copies, sorted by what they mean for it. */
export interface VmCopies {
  /** Primaries that run on a reachable host (more than one: fencing failed somewhere). */
  readonly live: readonly InstanceObservation[];
  /** Primaries lost with a host not yet fenced, or still stopping: they block a restart. */
  readonly blocked: readonly InstanceObservation[];
  readonly secondaries: readonly InstanceObservation[];
}

export function reconcileInstances(pass: Pass, hosts: Hosts): Instances {
  const { state, timings, model } = pass.input;
  const nowMs = pass.nowMs;
  // Kept by the controller's instance table as copies change; built here only for a plain Map.
  const index = indexInstances(state.instances);
  // The room copies hold (a copy being stopped frees its room already: what is claimed next can
  // boot as it goes), per host but a fenced one, summed in the copies' order as a walk would.
  for (const [host, copies] of index.byHost) {
    if (hosts.statusOf(host) === 'fenced') continue;
    const held = heldBy(index, model, host, copies);
    if (held.copies > 0) pass.load.addTotals(host, held.cores, held.memoryGiB);
  }
  // Only a copy on an isolated or storage-lost host, on an unreachable datastore, or running and
  // failing its health check may need an action: those, in the copies' order; every other runs on.
  const flagged = new Set<InstanceObservation>(index.unwell);
  for (const [host, copies] of index.byHost) {
    const status = hosts.statusOf(host);
    if (status === 'storage-lost' || status === 'isolated') for (const instance of copies) flagged.add(instance);
  }
  for (const [datastore, up] of state.datastoresUp) if (!up) for (const instance of index.byDatastore.get(datastore) ?? NONE) flagged.add(instance);
  for (const instance of [...flagged].sort((a, b) => index.placeOf(a) - index.placeOf(b))) {
    if (instance.state === 'stopping') continue;
    const hostState = hosts.statusOf(instance.host);
    if (hostState === 'storage-lost') {
      stopCopy(pass, instance, 'its host lost the path to storage');
      continue;
    }
    const unhealthySince = state.unhealthySinceMs.get(instance.id);
    if (hostState === 'isolated' && instance.role === 'primary' && instance.state === 'running' && !instance.healthy) {
      if (unhealthySince !== undefined && nowMs - unhealthySince >= timings.isolationResponseMs) {
        pass.act({ type: 'fenceHost', host: instance.host, reason: `isolated, and ${instance.vm} on it no longer answers its health check: the isolation cut the service` });
      } else if (unhealthySince !== undefined) pass.wake(unhealthySince + timings.isolationResponseMs);
      continue;
    }
    if (hostState !== 'up' && hostState !== 'suspect') continue;
    if (state.datastoresUp.get(instance.datastore) === false) {
      stopCopy(pass, instance, `its disk on ${instance.datastore} is unreachable; restart it from a reachable copy`);
      continue;
    }
    if (instance.state === 'running' && !instance.healthy && unhealthySince !== undefined) judgeHealth(pass, hosts, instance, unhealthySince);
  }
  // A live migration under way holds its room on the destination already: nothing else is placed
  // into it meanwhile (a secondary booted beside an arriving migration once overcommitted a host).
  for (const [key, flight] of state.inFlight) {
    if (flight.host === undefined || !key.startsWith('migrate:')) continue;
    const vm = key.slice('migrate:'.length);
    if (!(index.byVm.get(vm) ?? NONE).some((instance) => instance.host === flight.host)) pass.load.add(flight.host, vm);
  }
  return { byVm: index.byVm, byHost: index.byHost, healthyServices: healthyServices(pass, hosts, index) };
}

/** Services asked about, answered once each: any of its VMs has a healthy primary on a reachable host. */
function healthyServices(pass: Pass, hosts: Hosts, index: InstanceIndex): { has(service: string): boolean } {
  const answers = new Map<string, boolean>();
  return {
    has(service) {
      let healthy = answers.get(service);
      if (healthy !== undefined) return healthy;
      healthy = false;
      for (const vm of pass.input.model.index.service.get(service)?.vms ?? []) {
        for (const instance of index.byVm.get(vm.name) ?? NONE) if (instance.role === 'primary' && instance.healthy && hosts.reachable(instance.host)) healthy = true;
      }
      answers.set(service, healthy);
      return healthy;
    },
  };
}

interface Held {
  readonly version: number | null;
  readonly copies: number;
  readonly cores: number;
  readonly memoryGiB: number;
}

/** Per instance table and model: each host's held room, summed again only when its copies change. */
const heldCache = new WeakMap<InstanceIndex, { readonly model: CapacityModel; readonly hosts: Map<string, Held> }>();

function heldBy(index: InstanceIndex, model: CapacityModel, host: string, copies: readonly InstanceObservation[]): Held {
  const version = index.hostVersion(host);
  let cache = heldCache.get(index);
  if (version !== null && cache?.model === model) {
    const known = cache.hosts.get(host);
    if (known !== undefined && known.version === version) return known;
  }
  let count = 0;
  let cores = 0;
  let memoryGiB = 0;
  for (const instance of copies) {
    if (instance.state === 'stopping') continue;
    const cost = model.cost(instance.vm);
    count++;
    cores += cost.cores;
    memoryGiB += cost.memoryGiB;
  }
  const held = { version, copies: count, cores, memoryGiB };
  if (version !== null) {
    if (cache?.model !== model) heldCache.set(index, (cache = { model, hosts: new Map() }));
    cache.hosts.set(host, held);
  }
  return held;
}

function stopCopy(pass: Pass, instance: InstanceObservation, reason: string): void {
  pass.act({ type: 'stopVm', vm: instance.vm, host: instance.host, instanceId: instance.id, reason, shed: false });
}

/**
 * A copy that fails its health check on a host that is up: restarted once it has failed
 * unhealthyGraceMs within the last healthWindowMs (a steady failure: after the grace; an
 * intermittent one: once its failing time adds up to it), and at once on a degraded host, unless a
 * live migration is moving it off already.
 */
function judgeHealth(pass: Pass, hosts: Hosts, instance: InstanceObservation, unhealthySince: number): void {
  const { timings, health } = pass.input;
  const nowMs = pass.nowMs;
  const stop = (reason: string, sick: boolean) =>
    pass.act({ type: 'stopVm', vm: instance.vm, host: instance.host, instanceId: instance.id, reason, shed: false, ...(sick && instance.role === 'primary' ? { sick: true as const } : {}) });
  if (hosts.degraded(instance.host)) {
    // The host's fault, not the guest's: not counted towards a crash loop.
    if (!pass.busy(`migrate:${instance.vm}`)) stop(`its host ${instance.host} is degraded (its copies keep failing while its heartbeats live): restart elsewhere`, false);
    return;
  }
  if (health?.sharedFailure != null) {
    // Not this copy's fault: a restart would not cure it. Looked at again when the grace would be up.
    pass.wake(nowMs + timings.unhealthyGraceMs);
    return;
  }
  const streakMs = nowMs - unhealthySince;
  const failedMs = health === undefined ? streakMs : Math.max(streakMs, health.unhealthyMs(instance.id, nowMs - timings.healthWindowMs, nowMs));
  if (failedMs < timings.unhealthyGraceMs) {
    pass.wake(nowMs + timings.unhealthyGraceMs - failedMs);
    return;
  }
  stop(
    failedMs === streakMs
      ? `health check failing for ${Math.round(streakMs / 1000)} s on a healthy host`
      : `health check failing ${Math.round(failedMs / 1000)} s of the last ${Math.round(timings.healthWindowMs / 1000)} s on a healthy host (intermittently)`,
    true,
  );
}

export function copiesOf(instances: Pick<Instances, 'byVm'>, hosts: Hosts, vm: string): VmCopies {
  // Most VMs have one copy, or a primary and a secondary: no list is made for a kind that is absent.
  let live: InstanceObservation[] | null = null;
  let blocked: InstanceObservation[] | null = null;
  let secondaries: InstanceObservation[] | null = null;
  for (const instance of instances.byVm.get(vm) ?? NONE) {
    if (instance.role === 'secondary') (secondaries ??= []).push(instance);
    else if (instance.state !== 'stopping' && hosts.reachable(instance.host)) (live ??= []).push(instance);
    else if (hosts.statusOf(instance.host) !== 'fenced') (blocked ??= []).push(instance);
  }
  return { live: live ?? NONE, blocked: blocked ?? NONE, secondaries: secondaries ?? NONE };
}

const NONE: readonly InstanceObservation[] = Object.freeze([]);

/** The VM's first primary that runs (not stopping) on a reachable host: what copiesOf() gives as `live[0]`. */
export function livePrimary(instances: Instances, hosts: Hosts, vm: string): InstanceObservation | undefined {
  const copies = instances.byVm.get(vm);
  if (copies === undefined) return undefined;
  for (const instance of copies) if (instance.role === 'primary' && instance.state !== 'stopping' && hosts.reachable(instance.host)) return instance;
  return undefined;
}

/** The hosts of the primaries of `vm`'s service: a restart avoids them while anything else fits. */
export function siblingHosts(pass: Pass, instances: Instances, vm: string): string[] {
  return pass.input.model
    .info(vm)
    .service.vms.flatMap((sibling) => (instances.byVm.get(sibling.name) ?? []).filter((instance) => instance.role === 'primary').map((instance) => instance.host));
}

/**
 * A VM that runs: it no longer waits, holds no claim, is not shed; a second running copy is
 * stopped (the oldest stays). Fencing should make two copies unreachable; this is the net under it.
 */
export function settleRunning(pass: Pass, vm: string, copies: VmCopies): void {
  const view = pass.state.vms.get(vm)!;
  if (view.pendingSinceMs !== null) pass.mark({ type: 'vm.pending', vm, sinceMs: null });
  if (pass.state.reservations.has(vm)) pass.mark({ type: 'vm.reserve', vm, host: null, untilMs: 0 });
  if (view.shedReason !== null && !pass.shedNow.has(vm)) pass.mark({ type: 'vm.shed', vm, reason: null });
  for (let index = 1; index < copies.live.length; index++) {
    const extra = copies.live[index]!;
    pass.act({ type: 'stopVm', vm, host: extra.host, instanceId: extra.id, reason: 'a second running copy', shed: false });
  }
}
