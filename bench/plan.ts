/**
 * Benchmarks of the capacity planner. Prints numbers; asserts nothing.
 *   - plan time of the reference hospital (target < 100 ms), balanced and fewest-hosts;
 *   - plan time of generated clusters of 2,000 VMs / 100 hosts and 10,000 VMs / 500 hosts
 *     (target < 3 s);
 *   - on 30 generated small clusters (20–60 VMs, 4–10 hosts), the hosts the heuristic uses against
 *     the MILP optimum (HiGHS), fewest-hosts objective: average and worst ratio (target: within 5 %
 *     on average), and how many optima HiGHS proved within its time limit.
 * Run alone with `node --import tsx bench/plan.ts`, or with every benchmark by `npm run bench`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadBlueprint, type Blueprint } from '../src/model/index.ts';
import { planPlacementExact } from '../src/plan/exact.ts';
import { generateCluster } from '../src/plan/generate.ts';
import { planPlacement, type PlacementObjective } from '../src/capacity/placement.ts';

export interface PlanBenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

const SMALL_INSTANCES = 30;
const EXACT_TIME_LIMIT_S = 20;

/** The small instances of the heuristic-versus-exact comparison: seed → size. */
export function smallInstance(seed: number): { vms: number; hosts: number; seed: number } {
  return { vms: 20 + ((seed * 13) % 41), hosts: 4 + (seed % 7), seed };
}

function shipped(name: string): Blueprint {
  const result = loadBlueprint(readFileSync(new URL(`../blueprints/${name}.yaml`, import.meta.url)));
  if (!result.ok) throw new Error(`${name} is not valid`);
  return result.blueprint;
}

/** Median wall time of `runs` plans after one warm-up, in ms. */
function timePlan(blueprint: Blueprint, objective: PlacementObjective, runs: number): { ms: number; hostsUsed: number; violations: number } {
  let result = planPlacement(blueprint, { objective });
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    result = planPlacement(blueprint, { objective });
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, hostsUsed: result.hostsUsed, violations: result.violations.length };
}

export async function benchPlan(): Promise<PlanBenchResult[]> {
  const results: PlanBenchResult[] = [];
  const reference = shipped('university-hospital');
  for (const objective of ['balanced', 'fewest-hosts'] as const) {
    const timing = timePlan(reference, objective, 20);
    results.push({
      name: `plan time, reference hospital (74 VMs, 14 hosts), ${objective}`,
      value: timing.ms,
      unit: 'ms',
      note: `target < 100 ms; ${timing.hostsUsed} hosts used, ${timing.violations} violations`,
    });
  }
  for (const [vms, hosts] of [
    [2000, 100],
    [10000, 500],
  ] as const) {
    const blueprint = generateCluster({ vms, hosts, seed: 1 });
    for (const objective of ['balanced', 'fewest-hosts'] as const) {
      const timing = timePlan(blueprint, objective, 3);
      results.push({
        name: `plan time, generated ${vms.toLocaleString('en')} VMs / ${hosts} hosts, ${objective}`,
        value: timing.ms,
        unit: 'ms',
        note: `target < 3000 ms; ${timing.hostsUsed} hosts used, ${timing.violations} violations`,
      });
    }
  }

  const ratios: number[] = [];
  let worst = { ratio: 0, seed: 0, heuristic: 0, exact: 0 };
  let proved = 0;
  let heuristicViolations = 0;
  let exactViolations = 0;
  let exactSolverS = 0;
  for (let seed = 1; seed <= SMALL_INSTANCES; seed++) {
    const size = smallInstance(seed);
    const blueprint = generateCluster(size);
    const heuristic = planPlacement(blueprint, { objective: 'fewest-hosts' });
    const exact = await planPlacementExact(blueprint, { objective: 'fewest-hosts', timeLimitS: EXACT_TIME_LIMIT_S });
    if (exact.optimal) proved++;
    heuristicViolations += heuristic.violations.length;
    exactViolations += exact.violations.length;
    exactSolverS += exact.solverTimeS;
    const ratio = heuristic.hostsUsed / exact.hostsUsed;
    ratios.push(ratio);
    if (ratio > worst.ratio) worst = { ratio, seed, heuristic: heuristic.hostsUsed, exact: exact.hostsUsed };
  }
  const average = ratios.reduce((sum, ratio) => sum + ratio, 0) / ratios.length;
  results.push({
    name: `heuristic / exact hosts used, ${SMALL_INSTANCES} small clusters, average`,
    value: average,
    unit: '×',
    note: `target ≤ 1.05; ${ratios.filter((ratio) => ratio > 1).length} of ${SMALL_INSTANCES} instances above the optimum`,
  });
  results.push({
    name: 'heuristic / exact hosts used, worst case',
    value: worst.ratio,
    unit: '×',
    note: `seed ${worst.seed} (${smallInstance(worst.seed).vms} VMs, ${smallInstance(worst.seed).hosts} hosts): heuristic ${worst.heuristic}, exact ${worst.exact}`,
  });
  results.push({
    name: 'MILP optima proved',
    value: proved,
    unit: `of ${SMALL_INSTANCES}`,
    note: `time limit ${EXACT_TIME_LIMIT_S} s each; HiGHS time ${exactSolverS.toFixed(1)} s in all; hard-constraint violations: heuristic ${heuristicViolations}, exact ${exactViolations}`,
  });
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const result of await benchPlan()) {
    const value = result.value >= 100 || Number.isInteger(result.value) ? result.value.toFixed(0) : result.value.toFixed(result.unit === '×' ? 3 : 2);
    console.log(`${result.name}: ${value} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
  }
}
