/**
 * Which VMs a pass looks at. decide() is level-triggered: every pass judges the whole estate. But
 * on a large one (10,000 VMs) almost every VM is *settled* — one primary running on a reachable
 * host, nothing blocking it, its secondary there if it has one, where the recovery target wants it,
 * and nothing in its view (no wait, no claim, not pending, not shed) — and for a settled VM every
 * walk of the pass is a no-op: nothing to restart, stop, protect, shed, mark or wake for. So a pass
 * visits, in restart order, only the VMs that are not settled; it gives exactly the decision a walk
 * of every VM gives (test/control/visits.test.ts compares the two on storms).
 *
 * Whether a VM is settled depends on its copies, the status of the hosts they are on and the
 * target; it is kept per controller state and recomputed only for what changed: the VMs whose
 * copies the instance table logged as changed, those on a host whose status changed, and all of
 * them when the target, the restart order or the instance table is another (or the table's log
 * no longer reaches back). Views are read on every pass (an array scan: cheap). A state whose
 * instances are a plain Map (no change log) has every VM visited, as before.
 */
import type { CapacityModel } from '../../capacity/capacity.ts';
import type { InstanceObservation } from '../../ports/index.ts';
import { indexInstances, type InstanceIndex } from '../instance-table.ts';
import type { ControllerState, HostStatus, RecoveryTarget, VmView } from '../state.ts';
import type { Hosts } from './hosts.ts';
import { copiesOf } from './instances.ts';
import type { Pass } from './pass.ts';
import { usableSecondary } from './secondaries.ts';

interface Settled {
  readonly order: readonly string[];
  readonly model: CapacityModel;
  readonly index: InstanceIndex;
  readonly target: RecoveryTarget | null;
  /** Each VM's view, in restart order (views are never replaced, only changed in place). */
  readonly views: readonly VmView[];
  /** 1: settled, by restart order. */
  readonly settled: Uint8Array;
  /** The host statuses the flags were computed with. */
  readonly statuses: Map<string, HostStatus>;
  /** Where the instance table's change log stood. */
  position: number;
}

const settledByState = new WeakMap<ControllerState, Settled>();
const everyIndex = new WeakMap<readonly string[], readonly number[]>();

/** The restart-order indexes, ascending, of the VMs this pass must look at. */
export function vmsToVisit(pass: Pass, hosts: Hosts): readonly number[] {
  const { state, order, model } = pass.input;
  const index = indexInstances(state.instances);
  const position = index.changePosition;
  if (position === null) return allOf(order);
  let known = settledByState.get(state);
  const changed = known === undefined ? null : index.vmsChangedSince(known.position);
  if (known === undefined || changed === null || known.order !== order || known.model !== model || known.index !== index || known.target !== pass.target) {
    known = settleAll(pass, hosts, index, position);
    settledByState.set(state, known);
  } else {
    const orderIndex = pass.orderIndex;
    for (const vm of changed) {
      const at = orderIndex.get(vm);
      if (at !== undefined) known.settled[at] = isSettled(pass, hosts, index, at) ? 1 : 0;
    }
    for (const host of state.hosts.keys()) {
      const status = hosts.statusOf(host);
      if (known.statuses.get(host) === status) continue;
      known.statuses.set(host, status);
      for (const instance of index.byHost.get(host) ?? NONE) {
        const at = orderIndex.get(instance.vm);
        if (at !== undefined) known.settled[at] = isSettled(pass, hosts, index, at) ? 1 : 0;
      }
    }
    known.position = position;
  }
  const { settled, views } = known;
  const reservations = state.reservations;
  const visit: number[] = [];
  for (let at = 0; at < order.length; at++) {
    if (settled[at] === 1) {
      const view = views[at]!;
      if (view.pendingSinceMs === null && view.waitReason === null && view.shedReason === null && (reservations.size === 0 || !reservations.has(order[at]!))) continue;
    }
    visit.push(at);
  }
  return visit;
}

function settleAll(pass: Pass, hosts: Hosts, index: InstanceIndex, position: number): Settled {
  const { state, order, model } = pass.input;
  const settled = new Uint8Array(order.length);
  for (let at = 0; at < order.length; at++) settled[at] = isSettled(pass, hosts, index, at) ? 1 : 0;
  const statuses = new Map<string, HostStatus>();
  for (const host of state.hosts.keys()) statuses.set(host, hosts.statusOf(host));
  const views = order.map((vm) => state.vms.get(vm)!);
  return { order, model, index, target: pass.target, views, settled, statuses, position };
}

/**
 * Exactly one primary runs on a reachable host and no lost one blocks (copiesOf: one live, none
 * blocked), a continuous VM has a secondary that is not stopping on a reachable host
 * (protectWithSecondary: nothing to do), and the recovery target, if any, wants it where it runs
 * (followTargetSheds: nothing to move or shed).
 */
function isSettled(pass: Pass, hosts: Hosts, index: InstanceIndex, at: number): boolean {
  const vm = pass.input.order[at]!;
  const copies = copiesOf(index, hosts, vm);
  if (copies.live.length !== 1 || copies.blocked.length > 0) return false;
  if (pass.infos[at]!.tier.mechanism === 'failover' && !copies.secondaries.some((instance) => usableSecondary(hosts, instance))) return false;
  return pass.target === null || pass.target.primary.get(vm) === copies.live[0]!.host;
}

function allOf(order: readonly string[]): readonly number[] {
  let all = everyIndex.get(order);
  if (all === undefined) {
    all = order.map((_, at) => at);
    everyIndex.set(order, all);
  }
  return all;
}

const NONE: readonly InstanceObservation[] = Object.freeze([]);
