/**
 * When and on what the storm auditor asks the oracle (oracle.ts): at every point where the
 * controller's recovery has settled — nothing in flight, no host suspect, and neither the set of
 * hosts and datastores that work nor what runs where and answers has changed for `settleMs` (3 min
 * by default: a VM waits up to 2 min for its dependencies, then starts) — and once more at
 * the end, after the repairs. The problem is read from the twin's truth (what runs, and where) and
 * from the host statuses the controller acts on (which hosts may receive VMs); the verdict is an
 * auditor violation like the others.
 */
import type { Controller } from '../../control/controller.ts';
import type { Blueprint } from '../../model/index.ts';
import type { Twin } from '../../substrate/twin/twin.ts';
import { ORACLE_TOLERANCE, settledProblem, shortfall, solveOptimum, type KeptByController, type OracleProblem } from './oracle.ts';

export interface OracleJudgement {
  readonly atMs: number;
  readonly problem: OracleProblem;
  readonly kept: KeptByController;
  /** Null when the controller kept as much as the optimum (within the tolerance). */
  readonly shortfall: string | null;
}

export class OracleCheck {
  /** Settled points judged (each settled state once), and how many needed a solve. */
  judged = 0;
  solved = 0;
  readonly judgements: OracleJudgement[] = [];
  /** What the last instant looked like (null: not comparable, an action was in flight). */
  private signature: readonly number[] | null = null;
  private stableSinceMs = 0;
  private judgedSignature: readonly number[] | null = null;
  /** Each name (host, VM, status, datastore) as a number, for signatures built without strings. */
  private readonly names = new Map<string, number>();

  constructor(
    private readonly blueprint: Blueprint,
    private readonly twin: Twin,
    private readonly controller: Controller,
    /**
     * How long the state must hold still to count as settled: longer than a VM may wait for its
     * dependencies (it then starts without them), with a minute to boot.
     */
    private readonly settleMs = controller.timings.dependencyWaitMaxMs + 60_000,
  ) {}

  /**
   * Called after every simulated instant (a change happens only at one): judges the state once it
   * has settled. Looking less often could miss a change and its undoing in between. `quietUntilMs`
   * is when the next event is due (nothing changes before it), so a state that will hold still
   * long enough is judged now rather than never.
   */
  observe(nowMs: number, quietUntilMs: number | null = nowMs): OracleJudgement | null {
    const state = this.controller.state;
    if (state.inFlight.size > 0 || [...state.hostStatus.values()].includes('suspect')) {
      this.signature = null;
      return null;
    }
    const signature = this.currentSignature();
    if (!sameSignature(signature, this.signature)) {
      this.signature = signature;
      this.stableSinceMs = nowMs;
      return null;
    }
    const holdsUntilMs = quietUntilMs ?? Number.POSITIVE_INFINITY;
    if (holdsUntilMs - this.stableSinceMs < this.settleMs || sameSignature(signature, this.judgedSignature)) return null;
    this.judgedSignature = signature;
    return this.judge(nowMs);
  }

  /** Judges the state as it is (at the end of a storm, after the repairs). */
  judge(nowMs: number): OracleJudgement {
    this.judged++;
    const { problem, kept } = this.problem(nowMs);
    // Keeping every candidate is optimal without a solve: the common case.
    const optimum = kept.running.size === problem.vms.length ? null : solveOptimum(problem);
    if (optimum !== null) this.solved++;
    const verdict = optimum === null ? null : shortfall(problem, kept, optimum, ORACLE_TOLERANCE.toleranceVms);
    const judgement = { atMs: nowMs, problem, kept, shortfall: verdict };
    if (verdict !== null) this.judgements.push(judgement);
    return judgement;
  }

  /**
   * The state as numbers (it is taken after every instant of every storm: no strings): each
   * section starts with its length, each name is its number.
   */
  private currentSignature(): number[] {
    const state = this.controller.state;
    const parts: number[] = [state.hostStatus.size];
    for (const [host, status] of state.hostStatus) parts.push(this.nameOf(host), this.nameOf(status));
    parts.push(state.hosts.size);
    for (const host of state.hosts.values()) parts.push(this.nameOf(host.name), (host.channels.management.up ? 1 : 0) + (host.channels.datastore.up ? 2 : 0));
    parts.push(state.datastoresUp.size);
    for (const [store, up] of state.datastoresUp) parts.push(this.nameOf(store), up ? 1 : 0);
    // What runs where and what answers: a fault the controller has not seen yet changes this first.
    const healthy = this.twin.healthyPrimaries();
    const copies = this.twin.copies();
    parts.push(copies.length);
    for (const copy of copies) parts.push(this.nameOf(copy.vm), this.nameOf(copy.host), copy.role === 'primary' ? (healthy.has(copy.vm) ? 2 : 1) : 0);
    return parts;
  }

  private nameOf(name: string): number {
    let number = this.names.get(name);
    if (number === undefined) {
      number = this.names.size;
      this.names.set(name, number);
    }
    return number;
  }

  /** The problem of the oracle's header, and what the controller keeps of its candidates. */
  problem(nowMs: number = Number.POSITIVE_INFINITY): { problem: OracleProblem; kept: KeptByController } {
    const { model, state } = this.controller;
    const health = this.controller.health.view();
    // A degraded host is not capacity the controller may use (it takes VMs again once trusted).
    const degraded = this.controller.health.degraded;
    const hosts = this.blueprint.hosts.filter((host) => state.hostStatus.get(host.name) === 'up' && !degraded.has(host.name)).map((host) => ({ name: host.name, cores: host.cores, memoryGiB: host.memoryGiB }));
    // The oracle judges shedding, not health: a primary that runs is kept, answering or not (the
    // controller restarts a failing one by its own health rules: a window, a shared cause, backoff);
    // a VM a crash-loop backoff holds is not the oracle's to place until the backoff ends.
    const running = new Set(this.twin.copies().filter((copy) => copy.role === 'primary').map((copy) => copy.vm));
    const vms = this.blueprint.vms
      .filter((vm) => this.diskReachable(vm.name))
      .filter((vm) => running.has(vm.name) || (health.restartPolicy(vm.name, nowMs)?.notBeforeMs ?? 0) <= nowMs)
      .map((vm) => {
        const { tier } = model.info(vm.name);
        const cost = model.cost(vm.name);
        return { name: vm.name, priority: tier.priority, sheddable: tier.sheddable, cores: cost.cores, memoryGiB: cost.memoryGiB };
      });
    return settledProblem({ hosts, copies: this.twin.copies(), healthy: running, vms });
  }

  private diskReachable(vm: string): boolean {
    const { model, state } = this.controller;
    const datastore = model.info(vm).service.datastore;
    if (state.datastoresUp.get(datastore) !== false) return true;
    const replica = model.index.datastore.get(datastore)?.replicatedTo ?? null;
    return replica !== null && state.datastoresUp.get(replica) !== false;
  }
}

function sameSignature(a: readonly number[], b: readonly number[] | null): boolean {
  if (b === null || a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}
