/**
 * The controller's decisions: a pure function from what should be (blueprint, plan) and what is
 * (the controller's view) to actions, and to the bookkeeping that explains them. No I/O, no clock
 * reads: `nowMs` is an argument. Level-triggered: it looks at the whole state every time, so a
 * repeated pass repeats nothing that is already under way.
 */
import type { Blueprint, Service, Tier } from '../model/index.ts';
import { CapacityModel, domainDistance, HostLoad, type Placement } from '../capacity/capacity.ts';
import { chooseHost } from '../capacity/first-fit.ts';
import type { InstanceObservation, InstanceRole } from '../ports/index.ts';
import { hostStatus, type ControllerState, type HostStatus, type RecoveryTarget, type StateMark } from './state.ts';

export interface ControllerTimings {
  /** Both heartbeat channels silent this long ⇒ failed; one channel ⇒ isolated or storage-lost. */
  readonly detectionTimeoutMs: number;
  /** A VM waits at most this long for its dependencies before it starts anyway. */
  readonly dependencyWaitMaxMs: number;
  /** A running instance that fails its health check this long on a healthy host is restarted. */
  readonly unhealthyGraceMs: number;
  /**
   * An isolated host (management silent, datastore heartbeat alive) keeps its VMs while they still
   * serve; once one of its primaries has failed its health check this long, the isolation has cut
   * the service too, and the host is fenced so its VMs can restart elsewhere (the isolation response).
   */
  readonly isolationResponseMs: number;
  readonly fenceTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly promoteTimeoutMs: number;
  /** Added to twice the boot time before a start is given up and retried. */
  readonly startTimeoutExtraMs: number;
  /** Bound on actions per pass, so one pass never floods the substrate. */
  readonly maxActionsPerPass: number;
  /** Events arriving within this window are handled by one pass. */
  readonly passBatchMs: number;
  /** How long room claimed for a waiting VM is held for it. */
  readonly reservationMs: number;
}

export const DEFAULT_TIMINGS: ControllerTimings = Object.freeze({
  detectionTimeoutMs: 2_000,
  dependencyWaitMaxMs: 120_000,
  unhealthyGraceMs: 60_000,
  isolationResponseMs: 1_000,
  fenceTimeoutMs: 15_000,
  stopTimeoutMs: 15_000,
  promoteTimeoutMs: 5_000,
  startTimeoutExtraMs: 60_000,
  maxActionsPerPass: 256,
  passBatchMs: 50,
  reservationMs: 600_000,
});

export type Action =
  | { readonly type: 'fenceHost'; readonly host: string; readonly reason: string }
  | {
      readonly type: 'startVm';
      readonly vm: string;
      readonly host: string;
      readonly role: InstanceRole;
      readonly datastore: string;
      readonly reason: string;
      readonly coldRestart: boolean;
    }
  | { readonly type: 'stopVm'; readonly vm: string; readonly host: string; readonly instanceId: string; readonly reason: string; readonly shed: boolean }
  | { readonly type: 'promoteSecondary'; readonly vm: string; readonly host: string; readonly instanceId: string; readonly reason: string };

/** State changes that explain decisions; the controller applies them and journals the changes. */
export type Mark = StateMark;

export interface Decision {
  readonly actions: Action[];
  readonly marks: Mark[];
  /** When the next pass is due even if nothing is reported (a detection or wait deadline). */
  readonly nextWakeMs: number | null;
}

export interface DecideInput {
  readonly blueprint: Blueprint;
  readonly model: CapacityModel;
  readonly plan: ReadonlyMap<string, Placement>;
  readonly order: readonly string[];
  readonly state: ControllerState;
  readonly nowMs: number;
  readonly timings: ControllerTimings;
  /**
   * The recovery to follow (computed once per failure set by simulating this very function).
   * Absent, decide() is greedy: it places in priority order and sheds as it goes.
   */
  readonly target?: RecoveryTarget | null;
  /** Hosts held for maintenance: they keep what runs on them but receive nothing new. */
  readonly held?: ReadonlySet<string>;
}

export function actionKey(action: Action): string {
  switch (action.type) {
    case 'fenceHost':
      return `fence:${action.host}`;
    case 'startVm':
      return `start:${action.vm}:${action.role}`;
    case 'stopVm':
      return `stop:${action.instanceId}`;
    case 'promoteSecondary':
      return `promote:${action.vm}`;
  }
}

export function decide(input: DecideInput): Decision {
  const { blueprint, model, state, nowMs, timings } = input;
  const actions: Action[] = [];
  const marks: Mark[] = [];
  let nextWakeMs: number | null = null;
  const wake = (atMs: number) => {
    if (atMs > nowMs && (nextWakeMs === null || atMs < nextWakeMs)) nextWakeMs = atMs;
  };
  const busy = (key: string) => state.inFlight.has(key);
  const shedThisPass = new Set<string>();
  const orderIndex = orderIndexOf(input.order);
  const act = (action: Action): void => {
    if (actions.length >= timings.maxActionsPerPass || busy(actionKey(action))) return;
    actions.push(action);
  };

  // 1. Hosts: what each one is, from its two heartbeat channels.
  const statuses = new Map<string, HostStatus>();
  for (const host of state.hosts.values()) {
    const status = hostStatus(host, nowMs, timings.detectionTimeoutMs);
    statuses.set(host.name, status);
    if (state.hostStatus.get(host.name) !== status) marks.push({ type: 'host.status', host: host.name, status });
    if (!host.channels.management.up) wake(host.channels.management.lastSeenAtMs + timings.detectionTimeoutMs);
    if (!host.channels.datastore.up) wake(host.channels.datastore.lastSeenAtMs + timings.detectionTimeoutMs);
    if (status === 'failed') {
      act({ type: 'fenceHost', host: host.name, reason: 'no heartbeat on the management network nor on the datastore' });
    }
  }
  const statusOf = (host: string): HostStatus => statuses.get(host) ?? 'failed';
  const reachable = (host: string) => {
    const status = statusOf(host);
    return status === 'up' || status === 'suspect' || status === 'isolated';
  };

  // 2. Instances: group by VM, stop what must stop, and account the load they hold.
  const load = new HostLoad(model);
  const byVm = new Map<string, InstanceObservation[]>();
  const byHost = new Map<string, InstanceObservation[]>();
  for (const instance of state.instances.values()) {
    const onHost = byHost.get(instance.host);
    if (onHost === undefined) byHost.set(instance.host, [instance]);
    else onHost.push(instance);
    const list = byVm.get(instance.vm);
    if (list === undefined) byVm.set(instance.vm, [instance]);
    else list.push(instance);
    // A copy being stopped frees its room already: what is claimed next can boot as it goes.
    if (statusOf(instance.host) !== 'fenced' && instance.state !== 'stopping') load.add(instance.host, instance.vm);
    if (instance.state === 'stopping') continue;
    const hostState = statusOf(instance.host);
    if (hostState === 'storage-lost') {
      act({ type: 'stopVm', vm: instance.vm, host: instance.host, instanceId: instance.id, reason: 'its host lost the path to storage', shed: false });
      continue;
    }
    if (hostState === 'isolated' && instance.role === 'primary' && instance.state === 'running' && !instance.healthy) {
      const since = state.unhealthySinceMs.get(instance.id);
      if (since !== undefined && nowMs - since >= timings.isolationResponseMs) {
        act({ type: 'fenceHost', host: instance.host, reason: `isolated, and ${instance.vm} on it no longer answers its health check: the isolation cut the service` });
      } else if (since !== undefined) wake(since + timings.isolationResponseMs);
      continue;
    }
    if (hostState !== 'up' && hostState !== 'suspect') continue;
    if (state.datastoresUp.get(instance.datastore) === false) {
      act({
        type: 'stopVm',
        vm: instance.vm,
        host: instance.host,
        instanceId: instance.id,
        reason: `its disk on ${instance.datastore} is unreachable; restart it from a reachable copy`,
        shed: false,
      });
      continue;
    }
    const unhealthySince = state.unhealthySinceMs.get(instance.id);
    if (instance.state === 'running' && !instance.healthy && unhealthySince !== undefined) {
      if (nowMs - unhealthySince >= timings.unhealthyGraceMs) {
        act({
          type: 'stopVm',
          vm: instance.vm,
          host: instance.host,
          instanceId: instance.id,
          reason: `health check failing for ${Math.round((nowMs - unhealthySince) / 1000)} s on a healthy host`,
          shed: false,
        });
      } else wake(unhealthySince + timings.unhealthyGraceMs);
    }
  }

  const held = input.held;
  const eligible = (host: string) => statusOf(host) === 'up' && (held === undefined || !held.has(host));
  const target = input.target ?? null;
  // Room claimed by a VM that waits (for a fence, its dependencies, shed VMs to stop) is held
  // for it: counted once before anything else is placed, released to it when its turn comes. A
  // recovery target shares capacity out over the whole failure itself: claims made before it lapse.
  const claims = new Map<string, string>();
  for (const [vm, reservation] of state.reservations) {
    const live = (byVm.get(vm) ?? []).some((instance) => instance.role === 'primary' && instance.state !== 'stopping' && reachable(instance.host));
    if (target !== null || reservation.untilMs <= nowMs || live || !eligible(reservation.host)) {
      marks.push({ type: 'vm.reserve', vm, host: null, untilMs: 0 });
      continue;
    }
    claims.set(vm, reservation.host);
    load.add(reservation.host, vm);
    wake(reservation.untilMs);
  }

  // While a host is suspect (a heartbeat late, not yet past the timeout), a correlated failure
  // (a rack, a room) may still be unfolding: restarts wait until every host is known, so that
  // capacity is shared out once, in priority order, over the whole failure. Bounded by the
  // detection timeout.
  const settling = [...statuses.values()].some((status) => status === 'suspect');
  const healthyServices = new Set<string>();
  for (const instance of state.instances.values()) {
    if (instance.role === 'primary' && instance.healthy && reachable(instance.host)) {
      healthyServices.add(model.info(instance.vm).service.name);
    }
  }
  const siblingsOf = (service: Service) =>
    service.vms.flatMap((vm) => (byVm.get(vm.name) ?? []).filter((instance) => instance.role === 'primary').map((instance) => instance.host));

  // New secondaries wait while a VM that may not be shed still waits for a host: restoring a
  // critical service comes before restoring the redundancy of one that already runs.
  let unshedableWaiting = false;
  for (const vmName of input.order) {
    const { tier } = model.info(vmName);
    if (tier.sheddable) continue;
    const running = (byVm.get(vmName) ?? []).some((instance) => instance.role === 'primary' && instance.state !== 'stopping' && reachable(instance.host));
    if (!running) {
      unshedableWaiting = true;
      break;
    }
  }

  // Following a recovery target: first stop what it moves or sheds, so that its room counts as
  // free for everything placed in this pass.
  const moving = new Set<string>();
  if (target !== null && !settling) {
    for (const vmName of input.order) {
      const { tier } = model.info(vmName);
      if (!tier.sheddable) continue;
      const live = (byVm.get(vmName) ?? []).find((instance) => instance.role === 'primary' && instance.state !== 'stopping' && reachable(instance.host));
      if (live === undefined) continue;
      const want = target.primary.get(vmName);
      if (want === live.host) continue;
      moving.add(vmName);
      if (statusOf(live.host) !== 'fenced') load.remove(live.host, vmName);
      if (want === undefined) {
        const reason = target.shedReasons.get(vmName) ?? 'the recovery plan has no room for it';
        if (state.vms.get(vmName)!.shedReason !== reason) marks.push({ type: 'vm.shed', vm: vmName, reason });
        shedThisPass.add(vmName);
        act({ type: 'stopVm', vm: vmName, host: live.host, instanceId: live.id, reason, shed: true });
      } else {
        act({ type: 'stopVm', vm: vmName, host: live.host, instanceId: live.id, reason: `moved to ${want} by the recovery plan, to make room`, shed: false });
      }
    }
  }

  // 3. VMs, in restart order: tier, then dependencies, then blueprint order.
  for (const vmName of input.order) {
    const { service, tier } = model.info(vmName);
    const view = state.vms.get(vmName)!;
    const instances = byVm.get(vmName) ?? [];
    const live: InstanceObservation[] = [];
    const blocked: InstanceObservation[] = [];
    const secondaries: InstanceObservation[] = [];
    for (const instance of instances) {
      if (instance.role === 'secondary') secondaries.push(instance);
      else if (instance.state !== 'stopping' && reachable(instance.host)) live.push(instance);
      else if (statusOf(instance.host) !== 'fenced') blocked.push(instance);
    }

    if (moving.has(vmName)) continue;
    if (live.length > 0) {
      if (view.pendingSinceMs !== null) marks.push({ type: 'vm.pending', vm: vmName, sinceMs: null });
      if (state.reservations.has(vmName)) marks.push({ type: 'vm.reserve', vm: vmName, host: null, untilMs: 0 });
      if (view.shedReason !== null && !shedThisPass.has(vmName)) marks.push({ type: 'vm.shed', vm: vmName, reason: null });
      if (live.length > 1) {
        // Two copies answer: keep the oldest healthy one. Fencing should make this unreachable.
        for (const extra of live.slice(1)) {
          act({ type: 'stopVm', vm: vmName, host: extra.host, instanceId: extra.id, reason: 'a second running copy', shed: false });
        }
      }
      const reason = tier.mechanism === 'failover' ? protectWithSecondary(live[0]!, secondaries) : null;
      if (view.waitReason !== reason) marks.push({ type: 'vm.waiting', vm: vmName, reason });
      continue;
    }
    // A copy on a host not yet fenced (or still stopping) blocks a restart, but not the claim on
    // a host: capacity goes in priority order whatever order the fences complete in.
    let blockedReason: string | null = null;
    if (blocked.length > 0) {
      if (view.shedReason !== null || shedThisPass.has(vmName)) continue;
      const host = blocked[0]!.host;
      blockedReason =
        statusOf(host) === 'failed'
          ? `waiting for host ${host} to be fenced`
          : statusOf(host) === 'storage-lost'
            ? `waiting for its copy on ${host} to stop`
            : `waiting for its copy on ${host} (${statusOf(host)})`;
      const failsOver =
        tier.mechanism === 'failover' &&
        secondaries.some((instance) => instance.synced && instance.state === 'running' && (statusOf(instance.host) === 'up' || statusOf(instance.host) === 'suspect'));
      if (failsOver) {
        wait(vmName, view.waitReason, blockedReason);
        continue;
      }
    }
    const pendingSinceMs = view.pendingSinceMs ?? nowMs;
    if (view.pendingSinceMs === null) marks.push({ type: 'vm.pending', vm: vmName, sinceMs: nowMs });

    if (tier.mechanism === 'failover' && blockedReason === null) {
      const ready = secondaries.find(
        (instance) => instance.synced && instance.state === 'running' && (statusOf(instance.host) === 'up' || statusOf(instance.host) === 'suspect'),
      );
      if (ready !== undefined) {
        act({
          type: 'promoteSecondary',
          vm: vmName,
          host: ready.host,
          instanceId: ready.id,
          reason: `primary lost${view.lastHost === null ? '' : ` on ${view.lastHost}`}; the synchronised secondary takes over`,
        });
        continue;
      }
      if (busy(`promote:${vmName}`)) continue;
      for (const stale of secondaries) {
        if (stale.state !== 'stopping' && reachable(stale.host) && !stale.synced) {
          act({ type: 'stopVm', vm: vmName, host: stale.host, instanceId: stale.id, reason: 'secondary lost its primary before it was in sync', shed: false });
        }
      }
      if (!view.coldRestart && view.lastHost !== null) {
        marks.push({
          type: 'vm.cold-restart',
          vm: vmName,
          reason: 'both copies lost at once; restarted like a critical VM from replicated storage',
        });
      }
    }
    if (busy(`start:${vmName}:primary`)) continue;
    if (settling && view.lastHost !== null) {
      wait(vmName, view.waitReason, 'waiting until every suspect host is confirmed up or failed');
      continue;
    }

    const datastore = diskFor(service);
    if (datastore === null) {
      wait(vmName, view.waitReason, `no copy of its disk is reachable (${service.datastore} and its replica are down)`);
      continue;
    }
    // A claim made in an earlier pass sticks while it still fits, so a VM that waits (for a
    // fence, its dependencies, or shed VMs to stop) does not wander and make new victims.
    if (target !== null) {
      const want = target.primary.get(vmName);
      if (want === undefined) {
        const reason = target.shedReasons.get(vmName) ?? 'no capacity on the surviving hosts; it returns when capacity does';
        if (tier.sheddable) {
          if (view.shedReason !== reason) marks.push({ type: 'vm.shed', vm: vmName, reason });
        } else wait(vmName, view.waitReason, 'no capacity on the surviving hosts, and nothing of a lower tier left to shed');
        continue;
      }
      if (!eligible(want) || !load.fits(want, vmName)) {
        wait(vmName, view.waitReason, blockedReason ?? `waiting for room the recovery plan frees on ${want}`);
        continue;
      }
      load.add(want, vmName);
      if (blockedReason !== null) {
        wait(vmName, view.waitReason, blockedReason);
        continue;
      }
      const missingNow = service.dependsOn.filter((dependency) => !healthyServices.has(dependency));
      if (missingNow.length > 0 && nowMs - pendingSinceMs < timings.dependencyWaitMaxMs) {
        wait(vmName, view.waitReason, `waiting for ${missingNow.join(', ')} to pass its health check`);
        wake(pendingSinceMs + timings.dependencyWaitMaxMs);
        continue;
      }
      act({
        type: 'startVm',
        vm: vmName,
        host: want,
        role: 'primary',
        datastore,
        coldRestart: view.coldRestart,
        reason: restartReason(view),
      });
      continue;
    }
    const claimed = claims.get(vmName);
    if (claimed !== undefined) load.remove(claimed, vmName);
    const preferred = claimed ?? (view.lastHost === null ? input.plan.get(vmName)?.primary : undefined);
    const host =
      preferred !== undefined && eligible(preferred) && load.fits(preferred, vmName)
        ? preferred
        : chooseHost({ model, load, vm: vmName, avoid: siblingsOf(service), awayFrom: null, eligible });
    if (host === null) {
      // Shedding claims the freed room at once (a copy being stopped no longer counts), so a
      // lower tier later in this pass, or in the next, cannot take it first.
      if (tryShedding(vmName, tier)) continue;
      if (blockedReason !== null) {
        wait(vmName, view.waitReason, blockedReason);
        continue;
      }
      if (tier.sheddable) {
        if (view.shedReason === null) {
          marks.push({ type: 'vm.shed', vm: vmName, reason: 'no capacity on the surviving hosts; it returns when capacity does' });
        }
      } else wait(vmName, view.waitReason, 'no capacity on the surviving hosts, and nothing of a lower tier left to shed');
      continue;
    }
    // The host is claimed in priority order even while the VM waits for its dependencies, so a
    // lower tier that happens to be ready first can never take the room a higher tier needs.
    load.add(host, vmName);
    const claim = (): void => {
      if (claimed !== host) marks.push({ type: 'vm.reserve', vm: vmName, host, untilMs: nowMs + timings.reservationMs });
    };
    if (blockedReason !== null) {
      claim();
      wait(vmName, view.waitReason, blockedReason);
      continue;
    }
    const missing = service.dependsOn.filter((dependency) => !healthyServices.has(dependency));
    if (missing.length > 0 && nowMs - pendingSinceMs < timings.dependencyWaitMaxMs) {
      claim();
      wait(vmName, view.waitReason, `waiting for ${missing.join(', ')} to pass its health check`);
      wake(pendingSinceMs + timings.dependencyWaitMaxMs);
      continue;
    }
    if (claimed !== undefined) marks.push({ type: 'vm.reserve', vm: vmName, host: null, untilMs: 0 });
    act({
      type: 'startVm',
      vm: vmName,
      host,
      role: 'primary',
      datastore,
      coldRestart: view.coldRestart,
      reason: restartReason(view),
    });
  }

  return { actions, marks, nextWakeMs };

  function wait(vm: string, current: string | null, reason: string): void {
    if (current !== reason) marks.push({ type: 'vm.waiting', vm, reason });
  }

  function diskFor(service: Service): string | null {
    if (state.datastoresUp.get(service.datastore) !== false) return service.datastore;
    const replica = model.index.datastore.get(service.datastore)?.replicatedTo ?? null;
    if (replica !== null && state.datastoresUp.get(replica) !== false) return replica;
    return null;
  }

  /** Starts a secondary for a continuous VM that lacks one; returns why it stays unprotected, or null. */
  function protectWithSecondary(primary: InstanceObservation, secondaries: InstanceObservation[]): string | null {
    const usable = secondaries.filter((instance) => instance.state !== 'stopping' && reachable(instance.host));
    if (usable.length > 0) return null;
    if (secondaries.some((instance) => statusOf(instance.host) === 'failed')) return 'unprotected: its secondary is on a failed host, waiting for fencing';
    if (busy(`start:${primary.vm}:secondary`)) return null;
    if (primary.state !== 'running' || !primary.healthy) return 'unprotected: the primary must run and be healthy before a secondary can sync';
    let host: string | null;
    if (target !== null) {
      const want = target.secondary.get(primary.vm);
      if (want === undefined) return 'unprotected: the recovery plan has no room for a secondary in another failure domain';
      if (!eligible(want) || !load.fits(want, primary.vm)) return `unprotected: waiting for room on ${want} for its secondary`;
      host = want;
    } else {
      if (unshedableWaiting) return 'unprotected: a new secondary waits until every critical VM has a host';
      const planned = input.plan.get(primary.vm)?.secondary ?? null;
      const plannedFits =
        planned !== null && eligible(planned) && load.fits(planned, primary.vm) && domainDistance(model.host(planned), model.host(primary.host)) >= 2;
      host = plannedFits ? planned : chooseHost({ model, load, vm: primary.vm, avoid: [primary.host], awayFrom: primary.host, eligible });
    }
    if (host === null) return 'unprotected: no host in another failure domain has room for a new secondary';
    const service = model.info(primary.vm).service;
    const room = model.host(host).room;
    const home = model.index.datastore.get(service.datastore);
    const replica = home?.replicatedTo ?? null;
    const candidates = [service.datastore, ...(replica === null ? [] : [replica])].filter((name) => state.datastoresUp.get(name) !== false);
    const datastore = candidates.find((name) => model.index.datastore.get(name)?.room === room) ?? candidates[0];
    if (datastore === undefined) return 'unprotected: no copy of its disk is reachable';
    load.add(host, primary.vm);
    act({
      type: 'startVm',
      vm: primary.vm,
      host,
      role: 'secondary',
      datastore,
      coldRestart: false,
      reason: `protect ${primary.vm}: a synchronised secondary in another failure domain than ${primary.host}`,
    });
    return null;
  }

  /** Stops lower-tier VMs on one host to make room for `vm`; true when it decided to. */
  function tryShedding(vm: string, tier: Tier): boolean {
    const cost = model.cost(vm);
    let best: { host: string; victims: InstanceObservation[]; worst: number } | null = null;
    for (const host of blueprint.hosts) {
      if (!eligible(host.name)) continue;
      const candidates = (byHost.get(host.name) ?? [])
        .filter((instance) => instance.state !== 'stopping' && !shedThisPass.has(instance.vm))
        .filter((instance) => {
          const victimTier = model.info(instance.vm).tier;
          return victimTier.sheddable && victimTier.priority > tier.priority;
        })
        .sort(
          (a, b) =>
            model.priority(b.vm) - model.priority(a.vm) ||
            model.cost(b.vm).cores - model.cost(a.vm).cores ||
            // A canonical tie-break (restart order), never the order events happened to arrive in.
            (orderIndex.get(b.vm) ?? 0) - (orderIndex.get(a.vm) ?? 0),
        );
      let freeCores = load.freeCores(host.name);
      let freeMemory = load.freeMemoryGiB(host.name);
      const victims: InstanceObservation[] = [];
      for (const candidate of candidates) {
        if (freeCores + 1e-9 >= cost.cores && freeMemory + 1e-9 >= cost.memoryGiB) break;
        victims.push(candidate);
        freeCores += model.cost(candidate.vm).cores;
        freeMemory += model.cost(candidate.vm).memoryGiB;
      }
      if (freeCores + 1e-9 < cost.cores || freeMemory + 1e-9 < cost.memoryGiB) continue;
      // The prefix takes every VM of a lower tier before the first of a higher one, and the bigger
      // first: once a higher-tier VM had to go, smaller ones taken before it may no longer be
      // needed. Keep them, the most important and then the smallest first.
      for (let index = victims.length - 1; index >= 0; index--) {
        const victim = model.cost(victims[index]!.vm);
        if (freeCores - victim.cores + 1e-9 < cost.cores || freeMemory - victim.memoryGiB + 1e-9 < cost.memoryGiB) continue;
        freeCores -= victim.cores;
        freeMemory -= victim.memoryGiB;
        victims.splice(index, 1);
      }
      const worst = Math.min(...victims.map((victim) => model.priority(victim.vm)));
      if (best === null || worst > best.worst || (worst === best.worst && victims.length < best.victims.length)) {
        best = { host: host.name, victims, worst };
      }
    }
    if (best === null) return false;
    for (const victim of best.victims) {
      const reason = `shed to make room on ${best.host} for ${tier.name} ${vm}`;
      marks.push({ type: 'vm.shed', vm: victim.vm, reason });
      shedThisPass.add(victim.vm);
      act({ type: 'stopVm', vm: victim.vm, host: victim.host, instanceId: victim.id, reason, shed: true });
      // The freed room is claimed now, so that a lower VM later in this pass does not take it.
      load.remove(victim.host, victim.vm);
    }
    load.add(best.host, vm);
    marks.push({ type: 'vm.reserve', vm, host: best.host, untilMs: nowMs + timings.reservationMs });
    const view = state.vms.get(vm)!;
    wait(vm, view.waitReason, `waiting for ${best.victims.length} lower-tier VM(s) on ${best.host} to stop`);
    return true;
  }
}

const orderIndexCache = new WeakMap<readonly string[], Map<string, number>>();

function orderIndexOf(order: readonly string[]): Map<string, number> {
  let index = orderIndexCache.get(order);
  if (index === undefined) {
    index = new Map(order.map((vm, position) => [vm, position]));
    orderIndexCache.set(order, index);
  }
  return index;
}

function restartReason(view: { readonly lastHost: string | null; readonly shedReason: string | null }): string {
  if (view.lastHost === null) return 'initial placement';
  if (view.shedReason !== null) return 'capacity is back for a shed VM';
  return `restart after its copy on ${view.lastHost} was lost`;
}
