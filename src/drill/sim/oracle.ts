/**
 * The storm's independent oracle: what an optimal controller would keep running on the capacity
 * that survives, solved exactly as a mixed-integer program by HiGHS (and, for the property tests,
 * by exhaustive enumeration), sharing no code with decide() but the blueprint's cost rule
 * (vmCost: vCPU / the tier's CPU overcommit; memory in full, or at 1 / 1.5 where the tier allows
 * memory overcommit).
 *
 * The problem, at a point where the controller's recovery has settled:
 *   - the hosts that may receive VMs (up, not held), each with the room left after the copies the
 *     oracle does not place: the secondaries of continuous VMs (the controller's protection, taken
 *     as they are) and the primaries of VMs that may not be shed (they are never stopped to make
 *     room, so they stay where they run);
 *   - every other VM whose disk is reachable (its datastore or the replica is up). A VM that runs
 *     may stay on its host or be stopped (shed) — the controller never moves a running VM to make
 *     room, except by shedding it; a VM that does not run may start on any host;
 *   - capacity per host in cores and memory (CapacityModel's rule: the controller ignores GHz);
 *   - the objective: the most VMs of the most important tier, then of the next, and so on
 *     (lexicographic, as the shedding rule ranks them), written as one weighted sum whose weight
 *     per tier exceeds the count of every VM below it. Within a tier, a VM that runs is stopped
 *     only for a more important one: the controller never stops a running VM to start another of
 *     the same or a lower tier, so neither does the optimum (it first keeps the tier's running VMs
 *     where they are, then adds what fits).
 * Not modelled, because the controller treats them as preferences, not rules: distinct hosts for
 * the VMs of one service and the generator feed for restarted VMs (chooseHost only prefers them).
 *
 * The verdict compares, tier by tier from the most important, how many of the candidate VMs the
 * controller keeps (a healthy primary) with the optimum. The stated tolerance (ORACLE_TOLERANCE)
 * is 0 VMs: at the first tier where the two differ, the controller may not keep fewer. It is 0,
 * not a packing slack, because the problem is posed from the state the controller settled in: a VM
 * it keeps is where the controller put it (the greedy's choice of host for a restart is taken as
 * it is, and the optimum may only stop it for a more important VM), so what the optimum can gain
 * is only a VM that does not run and would, by stopping lower tiers anywhere — which the shedding
 * rule promises to do. Measured: 0 shortfalls in 10,000 CI storm seeds and 3,000 brute-forced
 * small hospitals (docs/testing.md). The limit, stated: the oracle does not ask whether another
 * choice of hosts for the VMs the controller restarted would have kept more.
 */
import type { Highs } from 'highs';
import { loadHighs } from '../../plan/exact.ts';

/** Loaded once per thread when this module is first imported, so that a storm, synchronous as it is, can solve. */
const solver: Highs = await loadHighs();

/** Room in which a fractional vCPU sum (0.5 + 1.5 + ...) still counts as fitting. */
const EPSILON = 1e-9;

export interface OracleHost {
  readonly name: string;
  /** Room left on the host for the VMs the oracle places. */
  readonly cores: number;
  readonly memoryGiB: number;
}

export interface OracleVm {
  readonly name: string;
  /** The tier's priority: lower is more important. */
  readonly priority: number;
  readonly cores: number;
  readonly memoryGiB: number;
  /** The host it runs on now (it may stay there or stop), or null (it may start anywhere). */
  readonly runningOn: string | null;
}

export interface OracleProblem {
  readonly hosts: readonly OracleHost[];
  readonly vms: readonly OracleVm[];
}

export interface Optimum {
  /** The VMs an optimal controller keeps running (one optimum; others may keep other VMs). */
  readonly kept: ReadonlySet<string>;
  /** VMs kept per tier priority: the same in every optimum. */
  readonly keptByPriority: ReadonlyMap<number, number>;
  readonly optimal: boolean;
}

/** A VM as the problem builder reads it. */
export interface VmFacts {
  readonly name: string;
  readonly priority: number;
  readonly sheddable: boolean;
  readonly cores: number;
  readonly memoryGiB: number;
}

/**
 * The oracle's problem from a settled state: `hosts` are the hosts that may receive VMs (their
 * full capacity), `copies` what runs (a primary on a host outside `hosts` stays where it is and is
 * left out), `healthy` the VMs whose primary answers, `candidates` the VMs whose disk is reachable.
 */
export function settledProblem(input: {
  readonly hosts: readonly OracleHost[];
  readonly copies: readonly { readonly vm: string; readonly host: string; readonly role: 'primary' | 'secondary' }[];
  readonly healthy: ReadonlySet<string>;
  readonly vms: readonly VmFacts[];
}): { problem: OracleProblem; kept: KeptByController } {
  const facts = new Map(input.vms.map((vm) => [vm.name, vm]));
  const room = new Map(input.hosts.map((host) => [host.name, { cores: host.cores, memoryGiB: host.memoryGiB }]));
  const primaryHost = new Map<string, string>();
  const fixed = new Set<string>();
  for (const copy of input.copies) {
    const vm = facts.get(copy.vm);
    const hostRoom = room.get(copy.host);
    if (copy.role === 'primary') primaryHost.set(copy.vm, copy.host);
    // A primary outside the hosts that receive VMs (an isolated host's) stays where it is.
    if (copy.role === 'primary' && hostRoom === undefined) fixed.add(copy.vm);
    if (vm === undefined || hostRoom === undefined || (copy.role === 'primary' && vm.sheddable)) continue;
    // A secondary, or a primary that may not be shed, is taken as it is: its room is not the oracle's.
    if (copy.role === 'primary') fixed.add(copy.vm);
    hostRoom.cores -= vm.cores;
    hostRoom.memoryGiB -= vm.memoryGiB;
  }
  const vms: OracleVm[] = [];
  const running = new Map<string, string>();
  for (const vm of input.vms) {
    if (fixed.has(vm.name)) continue;
    const at = primaryHost.get(vm.name) ?? null;
    vms.push({ name: vm.name, priority: vm.priority, cores: vm.cores, memoryGiB: vm.memoryGiB, runningOn: at });
    if (at !== null && input.healthy.has(vm.name)) running.set(vm.name, at);
  }
  const hosts = [...room].map(([name, left]) => ({ name, cores: left.cores, memoryGiB: left.memoryGiB }));
  return { problem: { hosts, vms }, kept: { running } };
}

/** How far the controller may fall short of the optimum: not at all (see the header for why 0 holds). */
export const ORACLE_TOLERANCE = Object.freeze({ toleranceVms: 0 });

/** Priorities present, most important first. */
function prioritiesOf(problem: OracleProblem): number[] {
  return [...new Set(problem.vms.map((vm) => vm.priority))].sort((a, b) => a - b);
}

/**
 * The objective's weights, as two levels per tier, most important first: first keep the tier's
 * VMs that run where they run (the controller stops a running VM only for a more important one,
 * never to start another of the same tier), then keep as many of the tier as fit. Each level's
 * weight exceeds the total of every level below it, so one weighted sum is the lexicographic order.
 */
function weightsOf(problem: OracleProblem): { count: Map<number, number>; staying: Map<number, number> } {
  const priorities = prioritiesOf(problem);
  const count = new Map<number, number>();
  const staying = new Map<number, number>();
  let weight = 1;
  for (let index = priorities.length - 1; index >= 0; index--) {
    const tierVms = problem.vms.filter((vm) => vm.priority === priorities[index]);
    count.set(priorities[index]!, weight);
    weight *= tierVms.length + 1;
    staying.set(priorities[index]!, weight);
    weight *= tierVms.filter((vm) => vm.runningOn !== null).length + 1;
  }
  if (weight > 2 ** 50) throw new Error('oracle: too many VMs and tiers for exact weights');
  return { count, staying };
}

/** The weight of keeping `vm` on `host`. */
function weightOf(weights: ReturnType<typeof weightsOf>, vm: OracleVm, host: string): number {
  return weights.count.get(vm.priority)! + (vm.runningOn === host ? weights.staying.get(vm.priority)! : 0);
}

function countByPriority(problem: OracleProblem, kept: ReadonlySet<string>): Map<number, number> {
  const counts = new Map<number, number>(prioritiesOf(problem).map((priority) => [priority, 0]));
  for (const vm of problem.vms) if (kept.has(vm.name)) counts.set(vm.priority, counts.get(vm.priority)! + 1);
  return counts;
}

const cache = new Map<string, Optimum>();
const CACHE_LIMIT = 4096;

/** The optimum by HiGHS (cached per problem: storms meet the same failure again and again). */
export function solveOptimum(problem: OracleProblem): Optimum {
  const key = JSON.stringify(problem);
  const known = cache.get(key);
  if (known !== undefined) return known;
  const optimum = solveWithHighs(problem);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(key, optimum);
  return optimum;
}

function solveWithHighs(problem: OracleProblem): Optimum {
  const weights = weightsOf(problem);
  const hostIndex = new Map(problem.hosts.map((host, index) => [host.name, index]));
  const columns: { vm: number; host: number; name: string }[] = [];
  problem.vms.forEach((vm, index) => {
    const hosts = vm.runningOn === null ? problem.hosts.map((_, host) => host) : hostIndex.has(vm.runningOn) ? [hostIndex.get(vm.runningOn)!] : [];
    for (const host of hosts) {
      if (vm.cores > problem.hosts[host]!.cores + EPSILON || vm.memoryGiB > problem.hosts[host]!.memoryGiB + EPSILON) continue;
      columns.push({ vm: index, host, name: `x${index}_${host}` });
    }
  });
  if (columns.length === 0) return { kept: new Set(), keptByPriority: countByPriority(problem, new Set()), optimal: true };
  const lines = ['Maximize', ' objective:'];
  for (const column of columns) lines.push(`  + ${weightOf(weights, problem.vms[column.vm]!, problem.hosts[column.host]!.name)} ${column.name}`);
  lines.push('Subject To');
  const byVm = new Map<number, string[]>();
  const byHost = new Map<number, typeof columns>();
  for (const column of columns) {
    byVm.set(column.vm, [...(byVm.get(column.vm) ?? []), column.name]);
    byHost.set(column.host, [...(byHost.get(column.host) ?? []), column]);
  }
  for (const [vm, names] of byVm) if (names.length > 1) lines.push(` once${vm}: ${names.map((name) => `+ ${name}`).join(' ')} <= 1`);
  for (const [host, hostColumns] of byHost) {
    const room = problem.hosts[host]!;
    const cores = hostColumns.map((column) => `+ ${number(problem.vms[column.vm]!.cores)} ${column.name}`);
    const memory = hostColumns.map((column) => `+ ${number(problem.vms[column.vm]!.memoryGiB)} ${column.name}`);
    lines.push(` cores${host}: ${cores.join(' ')} <= ${number(room.cores + EPSILON)}`);
    lines.push(` memory${host}: ${memory.join(' ')} <= ${number(room.memoryGiB + EPSILON)}`);
  }
  lines.push('Binary', ...columns.map((column) => ` ${column.name}`), 'End');
  const model = solver.createModel({ format: 'lp', data: lines.join('\n') });
  try {
    model.options.set({ output_flag: false, time_limit: 30, mip_rel_gap: 0, mip_abs_gap: 0.5, random_seed: 0 });
    model.run();
    const optimal = model.getModelStatus() === solver.constants.modelStatus.optimal;
    const values = model.getSolution().colValue;
    const names = new Map<string, number>();
    const count = model.getDimensions().numCols;
    for (let index = 0; index < count; index++) names.set(model.getColName(index), index);
    const kept = new Set<string>();
    for (const column of columns) if ((values[names.get(column.name)!] ?? 0) > 0.5) kept.add(problem.vms[column.vm]!.name);
    return { kept, keptByPriority: countByPriority(problem, kept), optimal };
  } finally {
    model.dispose();
  }
}

/**
 * The optimum by exhaustive enumeration: every VM on each host it may use, or not kept. For the
 * property tests only (hospitals of a few hosts and VMs): it checks the HiGHS model, and the
 * controller, against a reference that is plain enumeration.
 */
export function bruteForceOptimum(problem: OracleProblem): Optimum {
  const weights = weightsOf(problem);
  const coresLeft = problem.hosts.map((host) => host.cores);
  const memoryLeft = problem.hosts.map((host) => host.memoryGiB);
  const choice: (string | null)[] = problem.vms.map(() => null);
  let best = -1;
  let bestKept = new Set<string>();
  const visit = (index: number, value: number): void => {
    if (index === problem.vms.length) {
      if (value > best) {
        best = value;
        bestKept = new Set(problem.vms.filter((_, vm) => choice[vm] !== null).map((vm) => vm.name));
      }
      return;
    }
    const vm = problem.vms[index]!;
    choice[index] = null;
    visit(index + 1, value);
    problem.hosts.forEach((host, hostIndex) => {
      if (vm.runningOn !== null && vm.runningOn !== host.name) return;
      if (vm.cores > coresLeft[hostIndex]! + EPSILON || vm.memoryGiB > memoryLeft[hostIndex]! + EPSILON) return;
      coresLeft[hostIndex]! -= vm.cores;
      memoryLeft[hostIndex]! -= vm.memoryGiB;
      choice[index] = host.name;
      visit(index + 1, value + weightOf(weights, vm, host.name));
      choice[index] = null;
      coresLeft[hostIndex]! += vm.cores;
      memoryLeft[hostIndex]! += vm.memoryGiB;
    });
  };
  visit(0, 0);
  return { kept: bestKept, keptByPriority: countByPriority(problem, bestKept), optimal: true };
}

/** What the controller keeps, as the oracle judges it: the candidates that run, and where. */
export interface KeptByController {
  /** Candidate VM → the host of its healthy primary. */
  readonly running: ReadonlyMap<string, string>;
}

/**
 * The verdict: null when the controller keeps as much as the optimum (within the tolerance of the
 * header), else what it fell short by.
 */
export function shortfall(problem: OracleProblem, controller: KeptByController, optimum: Optimum, toleranceVms: number = ORACLE_TOLERANCE.toleranceVms): string | null {
  const kept = new Set(controller.running.keys());
  const counts = countByPriority(problem, kept);
  for (const priority of prioritiesOf(problem)) {
    const have = counts.get(priority)!;
    const best = optimum.keptByPriority.get(priority)!;
    if (have >= best) {
      if (have > best) return null;
      continue;
    }
    const missing = problem.vms.filter((vm) => vm.priority === priority && !kept.has(vm.name));
    const needless = missing.filter((vm) => fitsBesideController(problem, controller, vm));
    const detail = `keeps ${have} VM(s) of priority ${priority}, an optimum keeps ${best} (and as many of every more important tier)`;
    if (needless.length > 0) return `${detail}; ${needless.map((vm) => vm.name).join(', ')} would fit on a host with only lower tiers stopped`;
    if (best - have > toleranceVms) return `${detail}: beyond the tolerance of ${toleranceVms}`;
    return null;
  }
  return null;
}

/** Whether `vm` fits on a host beside what the controller keeps there of its tier and above. */
function fitsBesideController(problem: OracleProblem, controller: KeptByController, vm: OracleVm): boolean {
  const byName = new Map(problem.vms.map((candidate) => [candidate.name, candidate]));
  return problem.hosts.some((host) => {
    if (vm.runningOn !== null && vm.runningOn !== host.name) return false;
    let cores = host.cores;
    let memory = host.memoryGiB;
    for (const [name, at] of controller.running) {
      const other = byName.get(name)!;
      if (at !== host.name || other.priority > vm.priority) continue;
      cores -= other.cores;
      memory -= other.memoryGiB;
    }
    return vm.cores <= cores + EPSILON && vm.memoryGiB <= memory + EPSILON;
  });
}

function number(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(12).replace(/0+$/, '');
}
