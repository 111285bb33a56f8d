/**
 * The controller's decisions: a pure function from what should be (blueprint, plan) and what is
 * (the controller's view) to actions, and to the bookkeeping that explains them. No I/O, no clock
 * reads: `nowMs` is an argument. Level-triggered: it looks at the whole state every time, so a
 * repeated pass repeats nothing that is already under way.
 *
 * It composes the reconcilers of reconcile/, each owning one concern, in a fixed order: hosts
 * (status, fencing), instances (what runs where, copies to stop), reservations (room held for
 * waiting VMs), the recovery target's sheds and moves, then every VM in restart order — a running
 * one is settled and, if continuous, re-protected with a secondary; one that does not run is
 * restarted, shedding lower tiers for it when nothing has room. A VM that is settled (running
 * where it should, nothing to do for it) is skipped: the walk gives the same decision without it.
 */
import { copiesOf, reconcileInstances, settleRunning, type Instances } from './reconcile/instances.ts';
import { reconcileHosts, type Hosts } from './reconcile/hosts.ts';
import { Pass, type DecideInput, type Decision } from './reconcile/pass.ts';
import { reconcileReservations, type Claims } from './reconcile/reservations.ts';
import { restartVm } from './reconcile/restarts.ts';
import { protectWithSecondary, unshedableWaiting } from './reconcile/secondaries.ts';
import { followTargetSheds } from './reconcile/shedding.ts';
import { vmsToVisit } from './reconcile/visits.ts';

export { actionKey, type Action } from './actions.ts';
export type { DecideInput, Decision, Mark } from './reconcile/pass.ts';
export { DEFAULT_TIMINGS, type ControllerTimings } from './timings.ts';

export function decide(input: DecideInput): Decision {
  const pass = new Pass(input);
  const hosts = reconcileHosts(pass);
  const instances = reconcileInstances(pass, hosts);
  const claims = reconcileReservations(pass, hosts, instances);
  return decideInOrder(pass, hosts, instances, claims);
}

/**
 * The rest of a pass, once hosts, instances and claims are known: the recovery target's sheds and
 * moves, then the VMs in restart order. Only the VMs that are not settled are looked at
 * (reconcile/visits.ts): for the others every step is a no-op.
 */
export function decideInOrder(pass: Pass, hosts: Hosts, instances: Instances, claims: Claims): Decision {
  const visit = vmsToVisit(pass, hosts);
  const protection = { hosts, unshedableWaiting: unshedableWaiting(pass, hosts, instances, visit) };
  const restarts = { hosts, instances, claims };
  const moving = followTargetSheds(pass, hosts, instances, visit);
  const { order } = pass.input;
  const infos = pass.infos;
  for (const index of visit) {
    const vm = order[index]!;
    if (moving.has(vm)) continue;
    const copies = copiesOf(instances, hosts, vm);
    const primary = copies.live[0];
    if (primary === undefined) {
      restartVm(pass, restarts, vm, copies);
      continue;
    }
    settleRunning(pass, vm, copies);
    const failover = infos[index]!.tier.mechanism === 'failover';
    pass.wait(vm, failover ? protectWithSecondary(pass, protection, primary, copies.secondaries) : null);
  }
  return pass.decision();
}
