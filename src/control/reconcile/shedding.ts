/**
 * Shedding: VMs of lower tiers stop so that higher tiers run. Following a recovery target, the
 * VMs it sheds or moves stop first, so their room counts as free for everything placed in the
 * pass. Without one, a VM that fits nowhere stops VMs of strictly lower tiers on one host: the
 * least important first, and no more of them than the room needs.
 */
import type { Tier } from '../../model/index.ts';
import type { InstanceObservation } from '../../ports/index.ts';
import type { Hosts } from './hosts.ts';
import { livePrimary, type Instances } from './instances.ts';
import type { Pass } from './pass.ts';

/**
 * Stops what the recovery target sheds or moves; returns the VMs it moves or sheds. Only the VMs
 * the pass visits: the others run where the target wants them (reconcile/visits.ts).
 */
export function followTargetSheds(pass: Pass, hosts: Hosts, instances: Instances, visit: readonly number[]): ReadonlySet<string> {
  const moving = new Set<string>();
  const target = pass.target;
  if (target === null || hosts.settling) return moving;
  const { order, state } = pass.input;
  const infos = pass.infos;
  for (const index of visit) {
    if (!infos[index]!.tier.sheddable) continue;
    const vm = order[index]!;
    const live = livePrimary(instances, hosts, vm);
    if (live === undefined) continue;
    const want = target.primary.get(vm);
    // A live migration is moving it already (off a degraded or held host): the target follows it.
    if (want === live.host || pass.busy(`migrate:${vm}`)) continue;
    // A crash loop took it off the host the plan wants (it kept failing there): it stays where it runs.
    if (want !== undefined && pass.input.health?.restartPolicy(vm, pass.nowMs)?.avoid.includes(want) === true) continue;
    moving.add(vm);
    if (hosts.statusOf(live.host) !== 'fenced') pass.load.remove(live.host, vm);
    if (want === undefined) {
      const reason = target.shedReasons.get(vm) ?? 'the recovery plan has no room for it';
      if (state.vms.get(vm)!.shedReason !== reason) pass.mark({ type: 'vm.shed', vm, reason });
      pass.shedNow.add(vm);
      pass.act({ type: 'stopVm', vm, host: live.host, instanceId: live.id, reason, shed: true });
    } else {
      pass.act({ type: 'stopVm', vm, host: live.host, instanceId: live.id, reason: `moved to ${want} by the recovery plan, to make room`, shed: false });
    }
  }
  return moving;
}

/**
 * Stops lower-tier VMs on one host to make room for `vm`, claims that room for it and records
 * that it waits for them; returns whether it did. The host chosen is the one whose most important
 * victim is the least important, then the one with the fewest victims.
 */
export function shedFor(pass: Pass, hosts: Hosts, instances: Instances, vm: string, tier: Tier): boolean {
  let best: { host: string; victims: InstanceObservation[]; worst: number } | null = null;
  for (const host of pass.input.blueprint.hosts) {
    if (!hosts.eligible(host.name)) continue;
    const victims = victimsOn(pass, instances, host.name, vm, tier);
    if (victims === null) continue;
    const worst = Math.min(...victims.map((victim) => pass.input.model.priority(victim.vm)));
    if (best === null || worst > best.worst || (worst === best.worst && victims.length < best.victims.length)) {
      best = { host: host.name, victims, worst };
    }
  }
  if (best === null) return false;
  for (const victim of best.victims) {
    const reason = `shed to make room on ${best.host} for ${tier.name} ${vm}`;
    pass.mark({ type: 'vm.shed', vm: victim.vm, reason });
    pass.shedNow.add(victim.vm);
    pass.act({ type: 'stopVm', vm: victim.vm, host: victim.host, instanceId: victim.id, reason, shed: true });
    // The freed room is claimed now, so that a lower VM later in this pass does not take it.
    pass.load.remove(victim.host, victim.vm);
  }
  pass.load.add(best.host, vm);
  pass.mark({ type: 'vm.reserve', vm, host: best.host, untilMs: pass.nowMs + pass.input.timings.reservationMs });
  pass.wait(vm, `waiting for ${best.victims.length} lower-tier VM(s) on ${best.host} to stop`);
  return true;
}

/** The VMs of `host` whose stop makes room for `vm`, or null when all its lower tiers are not enough. */
function victimsOn(pass: Pass, instances: Instances, host: string, vm: string, tier: Tier): InstanceObservation[] | null {
  const { model } = pass.input;
  const cost = model.cost(vm);
  const orderIndex = pass.orderIndex;
  const candidates = (instances.byHost.get(host) ?? [])
    .filter((instance) => instance.state !== 'stopping' && !pass.shedNow.has(instance.vm))
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
  let freeCores = pass.load.freeCores(host);
  let freeMemory = pass.load.freeMemoryGiB(host);
  const victims: InstanceObservation[] = [];
  for (const candidate of candidates) {
    if (freeCores + 1e-9 >= cost.cores && freeMemory + 1e-9 >= cost.memoryGiB) break;
    victims.push(candidate);
    freeCores += model.cost(candidate.vm).cores;
    freeMemory += model.cost(candidate.vm).memoryGiB;
  }
  if (freeCores + 1e-9 < cost.cores || freeMemory + 1e-9 < cost.memoryGiB) return null;
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
  return victims;
}
