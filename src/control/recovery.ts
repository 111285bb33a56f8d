/**
 * The recovery the controller performs, computed at once (see simulateRecovery). The controller
 * follows it; the failure analysis (analysis/failure-analysis.ts) predicts with it. Here too: what
 * a recovery is computed for (the failure set) and the state the computation starts from.
 */
import type { CapacityModel, Placement } from '../capacity/capacity.ts';
import type { Blueprint } from '../model/index.ts';
import type { InstanceObservation } from '../ports/index.ts';
import { decide as greedyDecide, DEFAULT_TIMINGS, type DecideInput, type Decision } from './decide.ts';
import { InstanceTable } from './instance-table.ts';
import { applyMark, hostStatus, type ControllerState, type HostStatus, type RecoveryTarget } from './state.ts';

export interface RecoverySimulation extends RecoveryTarget {
  readonly state: ControllerState;
  readonly restarted: ReadonlySet<string>;
  readonly promoted: ReadonlySet<string>;
  readonly coldRestarted: ReadonlySet<string>;
}

/**
 * The recovery the controller performs, computed at once: decide() (in its greedy mode) on an
 * instantaneous substrate until nothing changes. The planner calls it for every failure case;
 * the controller calls it when the set of failed hosts changes and then follows the result, so
 * the two agree whatever order the substrate's answers arrive in. `state` is consumed.
 */
export function simulateRecovery(input: {
  blueprint: Blueprint;
  model: CapacityModel;
  order: readonly string[];
  plan: ReadonlyMap<string, Placement>;
  state: ControllerState;
  /** decide() itself unless a test gives a variant (see ControllerOptions.decide). */
  decide?: (input: DecideInput) => Decision;
}): RecoverySimulation {
  const { blueprint, model, order, plan, state } = input;
  const decide = input.decide ?? greedyDecide;
  const timings = { ...DEFAULT_TIMINGS, dependencyWaitMaxMs: 0, maxActionsPerPass: 10_000 };
  // The simulation's own clock: a pass a simulated second, from a start after its hosts' last heartbeats.
  let nowMs = 10_000;
  let sequence = 0;
  const restarted = new Set<string>();
  const promoted = new Set<string>();
  const coldRestarted = new Set<string>();
  const shedReasons = new Map<string, string>();
  // A fixpoint, bounded: each pass starts, stops or promotes something, or the loop ends.
  for (let pass = 0; pass < 200; pass++) {
    const decision = decide({ blueprint, model, plan, order, state, nowMs, timings });
    for (const mark of decision.marks) {
      applyMark(state, mark);
      if (mark.type === 'vm.cold-restart') coldRestarted.add(mark.vm);
      if (mark.type === 'vm.shed' && mark.reason !== null) shedReasons.set(mark.vm, mark.reason);
    }
    if (decision.actions.length === 0) break;
    for (const action of decision.actions) {
      switch (action.type) {
        case 'startVm': {
          const id = `${action.vm}#a${++sequence}`;
          state.instances.set(id, {
            id,
            vm: action.vm,
            host: action.host,
            role: action.role,
            state: 'running',
            healthy: true,
            synced: action.role === 'secondary',
            datastore: action.datastore,
          });
          if (action.role === 'primary') restarted.add(action.vm);
          break;
        }
        case 'stopVm':
          state.instances.delete(action.instanceId);
          break;
        case 'promoteSecondary': {
          const instance = state.instances.get(action.instanceId);
          if (instance) state.instances.set(instance.id, { ...instance, role: 'primary', synced: false });
          promoted.add(action.vm);
          break;
        }
        case 'fenceHost':
          break;
      }
    }
    nowMs += 1_000;
  }
  const primary = new Map<string, string>();
  const secondary = new Map<string, string>();
  for (const instance of state.instances.values()) {
    // An isolated host's VMs keep running where they are (decide() leaves them alone while they
    // answer): they are placed, not lost, so the recovery target neither sheds nor moves them.
    const status = state.hostStatus.get(instance.host);
    if (status !== 'up' && status !== 'isolated') continue;
    if (instance.role === 'primary') primary.set(instance.vm, instance.host);
    else secondary.set(instance.vm, instance.host);
  }
  for (const vm of [...shedReasons.keys()]) if (primary.has(vm)) shedReasons.delete(vm);
  return { state, primary, secondary, shedReasons, restarted, promoted, coldRestarted };
}

/**
 * What cannot run VMs now — lost, isolated or held hosts, datastores down — as a canonical key, or
 * null while a host is suspect (a correlated failure may still be unfolding: no recovery yet).
 */
export function failureSet(state: ControllerState, held: ReadonlySet<string>, nowMs: number, detectionTimeoutMs: number, degraded: ReadonlySet<string> = new Set()): string | null {
  const unavailable: string[] = [];
  for (const host of state.hosts.values()) {
    const status = hostStatus(host, nowMs, detectionTimeoutMs);
    if (status === 'suspect') return null;
    if (status !== 'up') unavailable.push(`${host.name}:${status === 'isolated' ? 'isolated' : 'lost'}`);
  }
  for (const [store, up] of state.datastoresUp) if (!up) unavailable.push(`${store}:down`);
  for (const host of held) unavailable.push(`${host}:held`);
  for (const host of degraded) unavailable.push(`${host}:degraded`);
  return unavailable.sort().join(',');
}

/**
 * The controller's view as the recovery simulation starts from it: lost hosts as already fenced,
 * every copy that can run as running and healthy, nothing waiting, claimed or in flight.
 */
export function recoveryStart(state: ControllerState, held: ReadonlySet<string>, nowMs: number, detectionTimeoutMs: number, degraded: ReadonlySet<string> = new Set()): ControllerState {
  const statuses = new Map<string, HostStatus>();
  for (const host of state.hosts.values()) {
    const status = hostStatus(host, nowMs, detectionTimeoutMs);
    // A held host keeps its VMs but takes nothing new: in the simulation it is like an isolated one.
    // A degraded host's VMs move away: in the simulation it is like a lost one, and they get new homes.
    const effective = status === 'up' && degraded.has(host.name) ? 'fenced' : status === 'up' && held.has(host.name) ? 'isolated' : status;
    statuses.set(host.name, effective === 'up' || effective === 'isolated' ? effective : 'fenced');
  }
  const instances = new InstanceTable();
  for (const instance of state.instances.values()) {
    const status = statuses.get(instance.host);
    if (status === 'fenced' || instance.state === 'stopping') continue;
    instances.set(instance.id, { ...instance, state: 'running', healthy: true, synced: instance.role === 'secondary' ? instance.synced || instance.state === 'running' : false });
  }
  return {
    hosts: new Map(
      [...state.hosts.values()].map((host) => [
        host.name,
        {
          name: host.name,
          channels: {
            // Silent for ever, on the simulation's own clock (it starts at its own zero): isolated, not suspect.
            management: statuses.get(host.name) === 'isolated' ? { up: false, lastSeenAtMs: Number.NEGATIVE_INFINITY } : { up: true, lastSeenAtMs: nowMs },
            datastore: { up: true, lastSeenAtMs: nowMs },
          },
          fencedAtMs: statuses.get(host.name) === 'fenced' ? nowMs : null,
          poweredOn: host.poweredOn,
        },
      ]),
    ),
    instances,
    datastoresUp: new Map(state.datastoresUp),
    vms: new Map([...state.vms].map(([vm, view]) => [vm, { pendingSinceMs: null, waitReason: null, shedReason: view.shedReason, coldRestart: false, lastHost: view.lastHost }])),
    inFlight: new Map(),
    hostStatus: statuses,
    unhealthySinceMs: new Map(),
    reservations: new Map(),
  };
}
