/**
 * The recovery the controller performs, computed at once (see simulateRecovery). The controller
 * follows it; the failure analysis (analysis/failure-analysis.ts) predicts with it.
 */
import type { CapacityModel, Placement } from '../capacity/capacity.ts';
import type { Blueprint } from '../model/index.ts';
import { decide, DEFAULT_TIMINGS } from './decide.ts';
import { applyMark, type ControllerState, type RecoveryTarget } from './state.ts';

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
}): RecoverySimulation {
  const { blueprint, model, order, plan, state } = input;
  const timings = { ...DEFAULT_TIMINGS, dependencyWaitMaxMs: 0, maxActionsPerPass: 10_000 };
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
