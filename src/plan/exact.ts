/**
 * The exact planner (`--exact`): the placement as a mixed-integer linear program solved by HiGHS
 * (the `highs` WebAssembly build; it does no I/O of ours, but its loader reads highs.wasm from
 * node_modules through node:fs inside the package). For small clusters only: above
 * EXACT_VARIABLE_LIMIT placement variables it refuses with TMR_PLAN_EXACT_TOO_LARGE, and every
 * solve has a time limit; the result says whether the optimum was proved and the gap if not.
 *
 * The model, over the copies of validate-placement.ts (a primary per VM, a secondary per
 * continuous VM) and the eligible hosts:
 *   x[c,h] = 1 when copy c runs on host h; y[h] = 1 when host h carries anything;
 *   fewest-hosts: minimise Σ y[h]; balanced: minimise u, the largest CPU or memory share of a host;
 *   each copy on one host; per host Σ cores x ≤ capacity·y (·u), same for memory; x ≤ y;
 *   a VM's two copies in different rooms (racks, hosts: its tier's domain) — at most one copy per
 *   domain; distinct hosts for the siblings of a service that requires it (Σ x ≤ y per host and
 *   role); not every primary of a multi-VM service in one rack (Σ over the rack ≤ VMs − 1);
 *   identical hosts are used in order (y[a] ≥ y[b]), which removes symmetric solutions.
 * A continuous or critical copy on a host that is not generator-backed is allowed but costs more
 * than every host together, so the solver uses it only when nothing else fits, and the result
 * lists it as a violation like the heuristic does. The soft preference for distinct hosts of the
 * other tiers is not modelled: the exact optimum is therefore a lower bound for the heuristic's
 * host count. The heuristic's plan is passed as the starting solution.
 */
import highsPackage, { type Highs } from 'highs';
import type { Blueprint } from '../model/index.ts';
import { packingResult, planPlacement, type PlacementObjective, type PlacementResult } from '../capacity/placement.ts';
import { placementRules, type PlacementRules, type RuleOptions } from '../capacity/placement-rules.ts';
import { TomaranaiError } from '../errors/index.ts';

/** Copies × hosts above which the exact planner refuses (about 60 VMs with secondaries on 10 hosts is 700). */
export const EXACT_VARIABLE_LIMIT = 8000;
export const EXACT_TIME_LIMIT_S = 10;

export interface ExactOptions extends RuleOptions {
  readonly objective?: PlacementObjective;
  readonly timeLimitS?: number;
  readonly variableLimit?: number;
}

export interface ExactResult extends PlacementResult {
  /** HiGHS's model status, e.g. "Optimal", "Time limit reached", "Infeasible". */
  readonly status: string;
  readonly optimal: boolean;
  /** The objective of the returned plan, the best proved bound, and their relative gap (0 when optimal). */
  readonly objectiveValue: number | null;
  readonly bound: number | null;
  readonly gap: number | null;
  readonly solverTimeS: number;
}

type HighsLoader = () => Promise<Highs>;
let highsLoading: Promise<Highs> | null = null;

/** The HiGHS solver, loaded once per thread (the storm oracle shares it). */
export function loadHighs(): Promise<Highs> {
  return highs();
}

function highs(): Promise<Highs> {
  if (highsLoading === null) {
    // The package's types describe its CommonJS build; under ESM the default import is the loader
    // itself, under a CommonJS interop it is an object whose `default` is.
    const exported = highsPackage as unknown as HighsLoader | { default: HighsLoader };
    const loader = typeof exported === 'function' ? exported : exported.default;
    highsLoading = loader();
  }
  return highsLoading;
}

export async function planPlacementExact(blueprint: Blueprint, options: ExactOptions = {}): Promise<ExactResult> {
  // The same default as planPlacement; sizing asks for fewest-hosts.
  const objective = options.objective ?? 'balanced';
  const rules = placementRules(blueprint, options);
  const copies = copiesOf(rules);
  const variables = copies.length * rules.hosts.length;
  const limit = options.variableLimit ?? EXACT_VARIABLE_LIMIT;
  if (variables > limit) {
    throw new TomaranaiError(
      'TMR_PLAN_EXACT_TOO_LARGE',
      `the exact planner takes at most ${limit} placement variables; ${copies.length} copies on ${rules.hosts.length} hosts need ${variables} (use the heuristic planner, or plan a subset of the hosts)`,
    );
  }
  const start = planPlacement(blueprint, { ...options, objective });
  const text = lpModel(rules, copies, objective);
  const solver = await highs();
  const model = solver.createModel({ format: 'lp', data: text });
  try {
    model.options.set({
      output_flag: false,
      time_limit: options.timeLimitS ?? EXACT_TIME_LIMIT_S,
      mip_rel_gap: 0,
      mip_abs_gap: 1e-6,
      random_seed: 0,
    });
    const columns = new Map<string, number>();
    const columnCount = model.getDimensions().numCols;
    for (let index = 0; index < columnCount; index++) columns.set(model.getColName(index), index);
    const warm = warmStart(rules, start, objective, columns);
    if (warm !== null) {
      try {
        model.setSolution(warm);
      } catch {
        // A start HiGHS refuses (the heuristic had to relax a rule) only costs the solver time.
      }
    }
    model.run();
    const statusCode = model.getModelStatus();
    const status = statusName(solver, statusCode);
    const optimal = statusCode === solver.constants.modelStatus.optimal;
    const solution = hasSolution(model) ? model.getSolution().colValue : null;
    const copyHost = new Int32Array(2 * rules.vms.length).fill(-1);
    if (solution !== null) {
      copies.forEach((copy) => {
        for (let host = 0; host < rules.hosts.length; host++) {
          const column = columns.get(xName(copy, host));
          if (column !== undefined && solution[column]! > 0.5) copyHost[copy] = host;
        }
      });
    }
    const unplaced = new Map<string, string>();
    if (solution === null) {
      for (const vm of rules.vms) unplaced.set(vm.name, `the exact planner found no plan: ${status}`);
    }
    const result = packingResult(rules, copyHost, {
      objective,
      method: 'exact',
      unplaced,
      constructionHostsUsed: start.hostsUsed,
      moves: 0,
      emptied: 0,
    });
    const objectiveValue = solution === null ? null : model.getObjectiveValue();
    const bound = readInfo(model, 'mip_dual_bound');
    const gap = optimal ? 0 : readInfo(model, 'mip_gap');
    return { ...result, status, optimal, objectiveValue, bound, gap, solverTimeS: model.getRunTime() };
  } finally {
    model.dispose();
  }
}

function copiesOf(rules: PlacementRules): number[] {
  const copies: number[] = [];
  rules.vms.forEach((vm, index) => {
    copies.push(2 * index);
    if (vm.failover) copies.push(2 * index + 1);
  });
  return copies;
}

const xName = (copy: number, host: number) => `x${copy}_${host}`;
const yName = (host: number) => `y${host}`;

/** Writes the model in CPLEX LP format, a few terms per line. */
function lpModel(rules: PlacementRules, copies: readonly number[], objective: PlacementObjective): string {
  const hostCount = rules.hosts.length;
  const lines: string[] = [];
  const row = (name: string, terms: readonly string[], sense: string) => {
    lines.push(` ${name}:`);
    for (let index = 0; index < terms.length; index += 8) lines.push(`  ${terms.slice(index, index + 8).join(' ')}`);
    lines.push(`  ${sense}`);
  };
  const fewest = objective === 'fewest-hosts';
  // Any generator violation costs more than the whole objective can otherwise reach.
  const penalty = fewest ? hostCount + 1 : 2;
  const objectiveTerms: string[] = [];
  if (fewest) for (let host = 0; host < hostCount; host++) objectiveTerms.push(`+ ${yName(host)}`);
  else objectiveTerms.push('+ u');
  for (const copy of copies) {
    if (!rules.vms[copy >> 1]!.needsGenerator || (copy & 1) === 1) continue;
    for (let host = 0; host < hostCount; host++) {
      if (rules.hostGenerator[host] === 0) objectiveTerms.push(`+ ${penalty} ${xName(copy, host)}`);
    }
  }
  lines.push('Minimize');
  row('objective', objectiveTerms, '');
  lines.pop();
  lines.push('Subject To');
  for (const copy of copies) {
    const terms: string[] = [];
    for (let host = 0; host < hostCount; host++) terms.push(`+ ${xName(copy, host)}`);
    row(`assign${copy}`, terms, '= 1');
  }
  for (let host = 0; host < hostCount; host++) {
    const cores: string[] = [];
    const memory: string[] = [];
    for (const copy of copies) {
      const vm = rules.vms[copy >> 1]!;
      cores.push(`+ ${number(vm.cores)} ${xName(copy, host)}`);
      memory.push(`+ ${number(vm.memoryGiB)} ${xName(copy, host)}`);
    }
    const scale = fewest ? yName(host) : 'u';
    row(`cores${host}`, [...cores, `- ${number(rules.capacityCores[host]!)} ${scale}`], '<= 0');
    row(`memory${host}`, [...memory, `- ${number(rules.capacityMemoryGiB[host]!)} ${scale}`], '<= 0');
    if (fewest) for (const copy of copies) row(`link${copy}_${host}`, [`+ ${xName(copy, host)}`, `- ${yName(host)}`], '<= 0');
  }
  rules.vms.forEach((vm, index) => {
    if (!vm.failover) return;
    const domains = new Map<number, number[]>();
    for (let host = 0; host < hostCount; host++) {
      const domain = vm.secondaryDomain === 'room' ? rules.hostRoom[host]! : vm.secondaryDomain === 'rack' ? rules.hostRack[host]! : host;
      domains.set(domain, [...(domains.get(domain) ?? []), host]);
    }
    for (const [domain, hosts] of domains) {
      row(`apart${index}_${domain}`, hosts.flatMap((host) => [`+ ${xName(2 * index, host)}`, `+ ${xName(2 * index + 1, host)}`]), '<= 1');
    }
  });
  rules.services.forEach((service, serviceIndex) => {
    if (service.distinctHard && service.vms.length >= 2) {
      for (const role of [0, 1]) {
        if (role === 1 && !rules.vms[service.vms[0]!]!.failover) continue;
        for (let host = 0; host < hostCount; host++) {
          const terms = service.vms.map((vm) => `+ ${xName(2 * vm + role, host)}`);
          if (fewest) row(`distinct${serviceIndex}_${role}_${host}`, [...terms, `- ${yName(host)}`], '<= 0');
          else row(`distinct${serviceIndex}_${role}_${host}`, terms, '<= 1');
        }
      }
    }
    if (service.rackSpread) {
      const racks = new Map<number, number[]>();
      for (let host = 0; host < hostCount; host++) racks.set(rules.hostRack[host]!, [...(racks.get(rules.hostRack[host]!) ?? []), host]);
      for (const [rack, hosts] of racks) {
        const terms = service.vms.flatMap((vm) => hosts.map((host) => `+ ${xName(2 * vm, host)}`));
        row(`spread${serviceIndex}_${rack}`, terms, `<= ${service.vms.length - 1}`);
      }
    }
  });
  if (fewest) {
    // Hosts alike in every respect the rules see are interchangeable: use them in blueprint order.
    const previousAlike = new Map<string, number>();
    for (let host = 0; host < hostCount; host++) {
      const key = [rules.hostRoom[host], rules.hostRack[host], rules.hostGenerator[host], rules.capacityCores[host], rules.capacityMemoryGiB[host]].join('/');
      const previous = previousAlike.get(key);
      if (previous !== undefined) row(`order${host}`, [`+ ${yName(previous)}`, `- ${yName(host)}`], '>= 0');
      previousAlike.set(key, host);
    }
  }
  lines.push('Bounds');
  if (!fewest) lines.push(' 0 <= u <= 1');
  lines.push('Binary');
  const binaries: string[] = [];
  for (const copy of copies) for (let host = 0; host < hostCount; host++) binaries.push(xName(copy, host));
  if (fewest) for (let host = 0; host < hostCount; host++) binaries.push(yName(host));
  for (let index = 0; index < binaries.length; index += 10) lines.push(` ${binaries.slice(index, index + 10).join(' ')}`);
  lines.push('End');
  return lines.join('\n');
}

/** The heuristic's plan as a sparse starting solution for HiGHS, or null if it placed nothing. */
function warmStart(
  rules: PlacementRules,
  start: PlacementResult,
  objective: PlacementObjective,
  columns: ReadonlyMap<string, number>,
): { indices: number[]; values: number[] } | null {
  if (start.unplaced.size > 0) return null;
  const values = new Map<number, number>();
  for (const column of columns.values()) values.set(column, 0);
  const set = (name: string, value: number) => {
    const column = columns.get(name);
    if (column !== undefined) values.set(column, value);
  };
  rules.vms.forEach((vm, index) => {
    const placement = start.placements.get(vm.name);
    if (placement === undefined) return;
    const primary = rules.hostIndex.get(placement.primary)!;
    set(xName(2 * index, primary), 1);
    set(yName(primary), 1);
    if (placement.secondary !== null) {
      const secondary = rules.hostIndex.get(placement.secondary)!;
      set(xName(2 * index + 1, secondary), 1);
      set(yName(secondary), 1);
    }
  });
  if (objective === 'balanced') set('u', Math.min(1, Math.max(start.stats.maxCoreUtilisation, start.stats.maxMemoryUtilisation)));
  const indices = [...values.keys()].sort((a, b) => a - b);
  return { indices, values: indices.map((index) => values.get(index)!) };
}

function number(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(12).replace(/0+$/, '');
}

type Model = ReturnType<Highs['createModel']>;

function hasSolution(model: Model): boolean {
  // primal_solution_status 2 = feasible.
  return readInfo(model, 'primal_solution_status') === 2;
}

function readInfo(model: Model, name: string): number | null {
  try {
    const value = model.info.get(name);
    return typeof value === 'bigint' ? Number(value) : Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

function statusName(solver: Highs, code: number): string {
  const names: Record<string, string> = {
    optimal: 'Optimal',
    infeasible: 'Infeasible',
    timeLimit: 'Time limit reached',
    unboundedOrInfeasible: 'Infeasible or unbounded',
  };
  for (const [name, value] of Object.entries(solver.constants.modelStatus)) {
    if (value === code) return names[name] ?? name;
  }
  return `status ${code}`;
}
