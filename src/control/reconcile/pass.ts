/**
 * One pass of decide(): what it reads (the input) and what it builds (actions, marks, the next
 * wake-up, and the host load as the pass places VMs). Every reconciler reads the input and adds
 * to these outputs, in the order decide() calls them; none does I/O or reads a clock.
 */
import type { Blueprint } from '../../model/index.ts';
import { CapacityModel, HostLoad, type Placement, type VmInfo } from '../../capacity/capacity.ts';
import { actionKey, type Action } from '../actions.ts';
import type { HealthView } from '../health-history.ts';
import type { ControllerState, RecoveryTarget, StateMark } from '../state.ts';
import type { ControllerTimings } from '../timings.ts';
import type { WorkKey } from '../work-queue.ts';

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
   * The recovery to follow (computed once per failure set by simulating decide() itself).
   * Absent, decide() is greedy: it places in priority order and sheds as it goes.
   */
  readonly target?: RecoveryTarget | null;
  /** Hosts held for maintenance: they keep what runs on them but receive nothing new. */
  readonly held?: ReadonlySet<string>;
  /**
   * Hosts degraded by a gray failure (gray-failure.ts): they receive nothing new, and a copy on one
   * that fails its health check is stopped at once, to restart elsewhere.
   */
  readonly degraded?: ReadonlySet<string>;
  /** The copies' health over time; absent (the planner's simulations), a failing streak is judged alone. */
  readonly health?: HealthView;
  /** VMs held by a security case (quarantined, being restored): a dependant does not wait for them. */
  readonly quarantined?: ReadonlySet<string>;
}

export class Pass {
  readonly actions: Action[] = [];
  readonly marks: Mark[] = [];
  /** Cores and memory per host as this pass has them: what runs, what is claimed, what it placed. */
  readonly load: HostLoad;
  /** VMs this pass stops to make room: they are not restarted, nor shed again, in the same pass. */
  readonly shedNow = new Set<string>();
  readonly target: RecoveryTarget | null;
  private nextWakeMs: number | null = null;
  /** The room the target's own plan takes on each host, built on first use. */
  private targetLoad: HostLoad | null = null;

  constructor(readonly input: DecideInput) {
    this.load = new HostLoad(input.model);
    this.target = input.target ?? null;
  }

  get nowMs(): number {
    return this.input.nowMs;
  }

  get state(): ControllerState {
    return this.input.state;
  }

  /** Asks for a pass at `atMs` (the earliest asked for wins); a time not in the future is ignored. */
  wake(atMs: number): void {
    if (atMs > this.nowMs && (this.nextWakeMs === null || atMs < this.nextWakeMs)) this.nextWakeMs = atMs;
  }

  /** Whether an action on `key` is still in flight (or held by a security case). */
  busy(key: WorkKey): boolean {
    return this.state.inFlight.has(key);
  }

  /** Adds an action, unless the pass is full or the same key is already in flight. */
  act(action: Action): void {
    if (this.actions.length >= this.input.timings.maxActionsPerPass || this.busy(actionKey(action))) return;
    this.actions.push(action);
  }

  mark(mark: Mark): void {
    this.marks.push(mark);
  }

  /** Records why `vm` waits (null: it no longer does), when that changes. */
  wait(vm: string, reason: string | null): void {
    if (this.state.vms.get(vm)!.waitReason !== reason) this.marks.push({ type: 'vm.waiting', vm, reason });
  }

  /**
   * Whether the target plans more onto `host` than it holds: it was computed before something it
   * did not foresee landed there (a live migration, a copy started off the plan), so room it
   * promises there will never come.
   */
  targetOverfull(host: string): boolean {
    if (this.target === null) return false;
    if (this.targetLoad === null) {
      const load = new HostLoad(this.input.model);
      for (const [vm, planned] of this.target.primary) load.add(planned, vm);
      for (const [vm, planned] of this.target.secondary) load.add(planned, vm);
      this.targetLoad = load;
    }
    return this.targetLoad.freeCores(host) < -1e-9 || this.targetLoad.freeMemoryGiB(host) < -1e-9;
  }

  /** Each VM's place in the restart order: the canonical tie-break, never the order events arrived in. */
  get orderIndex(): ReadonlyMap<string, number> {
    return orderIndexOf(this.input.order);
  }

  /** Each VM's service and tier, in restart order: `infos[i]` is `order[i]`'s (a pass walks the order several times). */
  get infos(): readonly VmInfo[] {
    return infosOf(this.input.model, this.input.order);
  }

  decision(): Decision {
    return { actions: this.actions, marks: this.marks, nextWakeMs: this.nextWakeMs };
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

const infosCache = new WeakMap<readonly string[], { readonly model: CapacityModel; readonly infos: readonly VmInfo[] }>();

function infosOf(model: CapacityModel, order: readonly string[]): readonly VmInfo[] {
  const cached = infosCache.get(order);
  if (cached !== undefined && cached.model === model) return cached.infos;
  const infos = order.map((vm) => model.info(vm));
  infosCache.set(order, { model, infos });
  return infos;
}
