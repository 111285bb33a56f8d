/**
 * Restarts: a VM without a running primary gets one, in restart order (tier, then dependencies,
 * then blueprint order; decide() walks that order). A continuous VM fails over to its synchronised
 * secondary; any other restarts on a host — the recovery target's, or the claimed, planned or
 * first fitting one — and, when none has room, sheds lower tiers for it. A host is claimed in
 * priority order even while the VM still waits (for a lost copy to be fenced or stopped, or for
 * its dependencies, at most dependencyWaitMaxMs), so a lower tier that happens to be ready first
 * never takes the room a higher tier needs.
 */
import type { Service } from '../../model/index.ts';
import { chooseHost } from '../../capacity/first-fit.ts';
import type { InstanceObservation } from '../../ports/index.ts';
import type { Hosts } from './hosts.ts';
import { siblingHosts, type Instances, type VmCopies } from './instances.ts';
import type { Pass } from './pass.ts';
import { claim, releaseClaim, type Claims } from './reservations.ts';
import { shedFor } from './shedding.ts';

export interface RestartContext {
  readonly hosts: Hosts;
  readonly instances: Instances;
  readonly claims: Claims;
}

/** One VM to restart, as far as restartVm() got with it. */
interface Restart {
  readonly vm: string;
  readonly datastore: string;
  /** Why a lost copy still blocks the start (a fence or a stop to complete), or null. */
  readonly blockedReason: string | null;
  readonly pendingSinceMs: number;
  /** Hosts it kept failing its health check on (a crash loop): it restarts elsewhere. */
  readonly avoid: readonly string[];
}

/** A dependency a VM starts without, and why. */
type MissingDependency = { readonly service: string; readonly reason: string };

const NO_CAPACITY = 'no capacity on the surviving hosts; it returns when capacity does';
const UNRECOVERABLE = 'no copy of its disk is reachable';
const NOTHING_TO_SHED = 'no capacity on the surviving hosts, and nothing of a lower tier left to shed';

/** Restarts `vm`, which has no running primary, or records why it waits or is shed. */
export function restartVm(pass: Pass, context: RestartContext, vm: string, copies: VmCopies): void {
  const { hosts } = context;
  const { service, tier } = pass.input.model.info(vm);
  const view = pass.state.vms.get(vm)!;
  // A copy on a host not yet fenced (or still stopping) blocks a restart, but not the claim on
  // a host: capacity goes in priority order whatever order the fences complete in.
  let blockedReason: string | null = null;
  const blocker = copies.blocked[0];
  if (blocker !== undefined) {
    if (view.shedReason !== null || pass.shedNow.has(vm)) return;
    blockedReason = lostCopyReason(hosts, blocker.host);
    if (tier.mechanism === 'failover' && readySecondary(hosts, copies.secondaries) !== undefined) {
      pass.wait(vm, blockedReason);
      return;
    }
  }
  const pendingSinceMs = view.pendingSinceMs ?? pass.nowMs;
  if (view.pendingSinceMs === null) pass.mark({ type: 'vm.pending', vm, sinceMs: pass.nowMs });
  if (tier.mechanism === 'failover' && blockedReason === null && failOver(pass, hosts, vm, copies.secondaries)) return;
  if (pass.busy(`start:${vm}:primary`)) return;
  if (hosts.settling && view.lastHost !== null) {
    pass.wait(vm, 'waiting until every suspect host is confirmed up or failed');
    return;
  }
  const policy = pass.input.health?.restartPolicy(vm, pass.nowMs) ?? null;
  if (policy !== null && pass.nowMs < policy.notBeforeMs) {
    // A crash loop: each restart waits longer, so a guest that cannot stay up does not churn the estate.
    pass.wait(vm, `crash loop: failed its health check ${policy.failures} times in a row; restarting again after a ${Math.round((policy.notBeforeMs - pass.nowMs) / 1000)} s backoff`);
    pass.wake(policy.notBeforeMs);
    return;
  }
  const datastore = diskFor(pass, service);
  if (datastore === null) {
    pass.wait(vm, `${UNRECOVERABLE} (${service.datastore} and its replica are down)`);
    return;
  }
  const restart: Restart = { vm, datastore, blockedReason, pendingSinceMs, avoid: policy?.avoid ?? [] };
  if (pass.target !== null) placeByTarget(pass, context, restart);
  else placeGreedily(pass, context, restart);
}

/** Promotes a synchronised secondary; returns whether that (or a promotion under way) settles the VM for this pass. */
function failOver(pass: Pass, hosts: Hosts, vm: string, secondaries: readonly InstanceObservation[]): boolean {
  const view = pass.state.vms.get(vm)!;
  const ready = readySecondary(hosts, secondaries);
  if (ready !== undefined) {
    const reason = `primary lost${view.lastHost === null ? '' : ` on ${view.lastHost}`}; the synchronised secondary takes over`;
    pass.act({ type: 'promoteSecondary', vm, host: ready.host, instanceId: ready.id, reason });
    return true;
  }
  if (pass.busy(`promote:${vm}`)) return true;
  for (const stale of secondaries) {
    if (stale.state !== 'stopping' && hosts.reachable(stale.host) && !stale.synced) {
      pass.act({ type: 'stopVm', vm, host: stale.host, instanceId: stale.id, reason: 'secondary lost its primary before it was in sync', shed: false });
    }
  }
  if (!view.coldRestart && view.lastHost !== null) {
    pass.mark({ type: 'vm.cold-restart', vm, reason: 'both copies lost at once; restarted like a critical VM from replicated storage' });
  }
  return false;
}

/** Following a recovery target: the VM goes where the target says, once the room there is free. */
function placeByTarget(pass: Pass, context: RestartContext, restart: Restart): void {
  const { vm, blockedReason } = restart;
  const want = pass.target!.primary.get(vm);
  if (want !== undefined && restart.avoid.includes(want)) {
    // The plan puts it back where it keeps failing: it goes wherever else it fits.
    placeGreedily(pass, context, restart);
    return;
  }
  if (want === undefined) {
    const reason = pass.target!.shedReasons.get(vm) ?? NO_CAPACITY;
    if (!pass.input.model.info(vm).tier.sheddable) pass.wait(vm, NOTHING_TO_SHED);
    else if (pass.state.vms.get(vm)!.shedReason !== reason) pass.mark({ type: 'vm.shed', vm, reason });
    return;
  }
  if (!context.hosts.eligible(want) || !pass.load.fits(want, vm)) {
    // The target overbooked the host, or sent it to one that takes nothing now (a live migration
    // the target followed landed on a host degraded in the same instant): it goes where it fits.
    if (!context.hosts.eligible(want) || pass.targetOverfull(want)) {
      placeGreedily(pass, context, restart);
      return;
    }
    pass.wait(vm, blockedReason ?? `waiting for room the recovery plan frees on ${want}`);
    return;
  }
  pass.load.add(want, vm);
  const reason = notYet(pass, context, restart);
  if (typeof reason === 'string') pass.wait(vm, reason);
  else startPrimary(pass, restart, want, reason);
}

/**
 * Without a target: the room claimed in an earlier pass while it still fits (so a VM that waits
 * does not wander and make new victims), else the planned host on a first start, else the first
 * fitting host; with none, lower tiers are shed for it, or it is shed or waits itself.
 */
function placeGreedily(pass: Pass, context: RestartContext, restart: Restart): void {
  const { hosts, instances, claims } = context;
  const { model, plan } = pass.input;
  const { vm, blockedReason } = restart;
  const view = pass.state.vms.get(vm)!;
  const claimed = claims.get(vm);
  if (claimed !== undefined) pass.load.remove(claimed, vm);
  const preferred = claimed ?? (view.lastHost === null ? plan.get(vm)?.primary : undefined);
  const avoiding = restart.avoid.length === 0 ? hosts.eligible : (host: string) => hosts.eligible(host) && !restart.avoid.includes(host);
  const choose = (eligible: (host: string) => boolean) => chooseHost({ model, load: pass.load, vm, avoid: siblingHosts(pass, instances, vm), awayFrom: null, eligible });
  // A crash loop's avoidance is a preference: with no other host that fits, it restarts where it failed rather than nowhere.
  const host = preferred !== undefined && avoiding(preferred) && pass.load.fits(preferred, vm) ? preferred : (choose(avoiding) ?? (restart.avoid.length > 0 ? choose(hosts.eligible) : null));
  if (host === null) {
    const { tier } = model.info(vm);
    // Shedding claims the freed room at once (a copy being stopped no longer counts), so a
    // lower tier later in this pass, or in the next, cannot take it first.
    if (shedFor(pass, hosts, instances, vm, tier)) return;
    if (blockedReason !== null) pass.wait(vm, blockedReason);
    else if (!tier.sheddable) pass.wait(vm, NOTHING_TO_SHED);
    else if (view.shedReason === null) pass.mark({ type: 'vm.shed', vm, reason: NO_CAPACITY });
    return;
  }
  pass.load.add(host, vm);
  const reason = notYet(pass, context, restart);
  if (typeof reason === 'string') {
    claim(pass, claims, vm, host);
    pass.wait(vm, reason);
    return;
  }
  releaseClaim(pass, claims, vm);
  startPrimary(pass, restart, host, reason);
}

/**
 * Why a VM placed on a host does not start yet (a lost copy, its dependencies), or the
 * dependencies it starts without: one that will not come (shed, quarantined, unrecoverable) is not
 * waited for at all, one that is merely late is waited for up to dependencyWaitMaxMs.
 */
function notYet(pass: Pass, context: RestartContext, restart: Restart): string | MissingDependency[] {
  if (restart.blockedReason !== null) return restart.blockedReason;
  const { dependencyWaitMaxMs } = pass.input.timings;
  const missing = pass.input.model.info(restart.vm).service.dependsOn.filter((dependency) => !context.instances.healthyServices.has(dependency));
  if (missing.length === 0) return [];
  const lost = missing.map((service) => ({ service, reason: dependencyLost(pass, service) }));
  const late = lost.filter((dependency) => dependency.reason === null).map((dependency) => dependency.service);
  const gone = lost.filter((dependency): dependency is MissingDependency => dependency.reason !== null);
  if (late.length === 0) return gone;
  if (pass.nowMs - restart.pendingSinceMs >= dependencyWaitMaxMs) {
    return [...gone, ...late.map((service) => ({ service, reason: `did not pass its health check within ${Math.round(dependencyWaitMaxMs / 1000)} s` }))];
  }
  pass.wake(restart.pendingSinceMs + dependencyWaitMaxMs);
  return `waiting for ${late.join(', ')} to pass its health check`;
}

/**
 * Why a dependency will not come — every VM of it quarantined, shed (by the recovery plan when one
 * is followed, else by this or an earlier pass), or without a reachable copy of its disk — or null
 * if it may: a VM merely waiting for capacity or a fence is coming.
 */
function dependencyLost(pass: Pass, service: string): string | null {
  const { model, state, quarantined } = pass.input;
  const target = pass.target;
  const dependency = model.index.service.get(service);
  if (dependency === undefined) return null;
  const diskUnreachable = diskFor(pass, dependency) === null;
  let reason: string | null = null;
  for (const vm of dependency.vms) {
    const view = state.vms.get(vm.name)!;
    let why: string | null = null;
    if (quarantined?.has(vm.name) === true) why = 'quarantined by a security case';
    else if (diskUnreachable) why = `unrecoverable for now (${UNRECOVERABLE}: ${dependency.datastore} and its replica are down)`;
    else if (target !== null) {
      const shedReason = target.shedReasons.get(vm.name) ?? view.shedReason ?? undefined;
      why = target.primary.has(vm.name) ? null : shedReason !== undefined ? `shed by the recovery plan (${shedReason})` : `not placed by the recovery plan (${NOTHING_TO_SHED})`;
    }
    else if (pass.shedNow.has(vm.name) || view.shedReason !== null) why = `shed (${view.shedReason ?? 'to make room in this pass'})`;
    if (why === null) return null;
    reason ??= why;
  }
  return reason;
}

function startPrimary(pass: Pass, restart: Restart, host: string, without: readonly MissingDependency[]): void {
  const view = pass.state.vms.get(restart.vm)!;
  pass.act({
    type: 'startVm',
    vm: restart.vm,
    host,
    role: 'primary',
    datastore: restart.datastore,
    coldRestart: view.coldRestart,
    reason: restartReason(view),
    ...(without.length === 0 ? {} : { withoutDependencies: without }),
  });
}

function readySecondary(hosts: Hosts, secondaries: readonly InstanceObservation[]): InstanceObservation | undefined {
  return secondaries.find((instance) => instance.synced && instance.state === 'running' && (hosts.statusOf(instance.host) === 'up' || hosts.statusOf(instance.host) === 'suspect'));
}

function lostCopyReason(hosts: Hosts, host: string): string {
  const status = hosts.statusOf(host);
  if (status === 'failed') return `waiting for host ${host} to be fenced`;
  if (status === 'storage-lost') return `waiting for its copy on ${host} to stop`;
  return `waiting for its copy on ${host} (${status})`;
}

/** The VM's disk, or its replica when the home datastore is down; null when neither is reachable. */
function diskFor(pass: Pass, service: Service): string | null {
  const { model, state } = pass.input;
  if (state.datastoresUp.get(service.datastore) !== false) return service.datastore;
  const replica = model.index.datastore.get(service.datastore)?.replicatedTo ?? null;
  if (replica !== null && state.datastoresUp.get(replica) !== false) return replica;
  return null;
}

function restartReason(view: { readonly lastHost: string | null; readonly shedReason: string | null }): string {
  if (view.lastHost === null) return 'initial placement';
  if (view.shedReason !== null) return 'capacity is back for a shed VM';
  return `restart after its copy on ${view.lastHost} was lost`;
}
