/**
 * Instances: what runs where. It indexes the copies by VM and by host, counts the room they hold,
 * stops the copies that must stop (their host lost its storage path, their disk is unreachable,
 * they failed their health check too long), fences an isolated host whose VMs stopped serving,
 * and settles a VM that runs (a second copy is stopped, its waits and claims are cleared).
 */
import type { InstanceObservation } from '../../ports/index.ts';
import type { Hosts } from './hosts.ts';
import type { Pass } from './pass.ts';

export interface Instances {
  readonly byVm: ReadonlyMap<string, readonly InstanceObservation[]>;
  readonly byHost: ReadonlyMap<string, readonly InstanceObservation[]>;
  /** Services with a healthy primary on a reachable host: what a dependant may wait for. */
  readonly healthyServices: ReadonlySet<string>;
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
  const { state, timings } = pass.input;
  const nowMs = pass.nowMs;
  const byVm = new Map<string, InstanceObservation[]>();
  const byHost = new Map<string, InstanceObservation[]>();
  for (const instance of state.instances.values()) {
    append(byHost, instance.host, instance);
    append(byVm, instance.vm, instance);
    const hostState = hosts.statusOf(instance.host);
    // A copy being stopped frees its room already: what is claimed next can boot as it goes.
    if (hostState !== 'fenced' && instance.state !== 'stopping') pass.load.add(instance.host, instance.vm);
    if (instance.state === 'stopping') continue;
    const stop = (reason: string) => pass.act({ type: 'stopVm', vm: instance.vm, host: instance.host, instanceId: instance.id, reason, shed: false });
    if (hostState === 'storage-lost') {
      stop('its host lost the path to storage');
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
      stop(`its disk on ${instance.datastore} is unreachable; restart it from a reachable copy`);
      continue;
    }
    if (instance.state === 'running' && !instance.healthy && unhealthySince !== undefined) judgeHealth(pass, hosts, instance, unhealthySince);
  }
  // A live migration under way holds its room on the destination already: nothing else is placed
  // into it meanwhile (a secondary booted beside an arriving migration once overcommitted a host).
  for (const [key, flight] of state.inFlight) {
    if (flight.host === undefined || !key.startsWith('migrate:')) continue;
    const vm = key.slice('migrate:'.length);
    if (!(byVm.get(vm) ?? []).some((instance) => instance.host === flight.host)) pass.load.add(flight.host, vm);
  }
  const healthyServices = new Set<string>();
  for (const instance of state.instances.values()) {
    if (instance.role === 'primary' && instance.healthy && hosts.reachable(instance.host)) healthyServices.add(pass.input.model.info(instance.vm).service.name);
  }
  return { byVm, byHost, healthyServices };
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

export function copiesOf(instances: Instances, hosts: Hosts, vm: string): VmCopies {
  const live: InstanceObservation[] = [];
  const blocked: InstanceObservation[] = [];
  const secondaries: InstanceObservation[] = [];
  for (const instance of instances.byVm.get(vm) ?? []) {
    if (instance.role === 'secondary') secondaries.push(instance);
    else if (instance.state !== 'stopping' && hosts.reachable(instance.host)) live.push(instance);
    else if (hosts.statusOf(instance.host) !== 'fenced') blocked.push(instance);
  }
  return { live, blocked, secondaries };
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
  for (const extra of copies.live.slice(1)) {
    pass.act({ type: 'stopVm', vm, host: extra.host, instanceId: extra.id, reason: 'a second running copy', shed: false });
  }
}

function append(index: Map<string, InstanceObservation[]>, key: string, instance: InstanceObservation): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [instance]);
  else list.push(instance);
}
