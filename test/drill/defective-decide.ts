/**
 * A test-only variant of decide() with the reservation defect that 390b602 fixed put back: every
 * held reservation is counted on its host's load a second time (the old code had two loops that
 * each added it) and released once at its VM's turn, so a VM that shed lower tiers for room finds
 * its own claim in the way and sheds again. It composes the reconcilers exactly as decide() does
 * (src/control/decide.ts, whose decideInOrder() it shares) plus the second loop, so the production
 * code keeps no switch for it.
 */
import { decideInOrder, type DecideInput, type Decision } from '../../src/control/decide.ts';
import { reconcileInstances } from '../../src/control/reconcile/instances.ts';
import { reconcileHosts } from '../../src/control/reconcile/hosts.ts';
import { Pass } from '../../src/control/reconcile/pass.ts';
import { reconcileReservations } from '../../src/control/reconcile/reservations.ts';

export function decideWithDoubleCountedReservations(input: DecideInput): Decision {
  const pass = new Pass(input);
  const hosts = reconcileHosts(pass);
  const instances = reconcileInstances(pass, hosts);
  const claims = reconcileReservations(pass, hosts, instances);
  // The defect: the old second loop, which added every unexpired claim of a VM without a primary again.
  for (const [vm, reservation] of input.state.reservations) {
    if (reservation.untilMs <= input.nowMs || (instances.byVm.get(vm) ?? []).some((instance) => instance.role === 'primary')) continue;
    pass.load.add(reservation.host, vm);
  }
  return decideInOrder(pass, hosts, instances, claims);
}
