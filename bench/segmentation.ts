/**
 * Benchmarks of segmentation and attack paths on the reference hospital. Prints numbers; asserts nothing.
 *   - compile time of the per-VM policy (median of many runs);
 *   - attack-path analysis time (reach, shortest paths, blast radii, flow ranking, covers, flat baseline);
 *   - `allows` lookups per second (the check the twin makes on every simulated connection).
 *
 * Run: node --import tsx bench/segmentation.ts
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadBlueprint, type Blueprint } from '../src/model/index.ts';
import { analyzeAttackPaths } from '../src/plan/attack-paths.ts';
import { allows, compileSegmentation } from '../src/model/segmentation.ts';

export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

const COMPILE_RUNS = 200;
const ANALYSIS_RUNS = 9;
const LOOKUPS = 2_000_000;

function blueprint(name: string): Blueprint {
  const result = loadBlueprint(readFileSync(new URL(`../blueprints/${name}.yaml`, import.meta.url)));
  if (!result.ok) throw new Error(`${name} is not valid`);
  return result.blueprint;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function timeMs(runs: number, work: () => void): number {
  const samples: number[] = [];
  for (let run = 0; run < runs; run++) {
    const start = performance.now();
    work();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

export async function benchSegmentation(): Promise<BenchResult[]> {
  const reference = blueprint('university-hospital');
  const results: BenchResult[] = [];

  for (let warm = 0; warm < 20; warm++) compileSegmentation(reference);
  const policy = compileSegmentation(reference);
  const compileMs = timeMs(COMPILE_RUNS, () => compileSegmentation(reference));
  results.push({
    name: 'segmentation compile, reference hospital',
    value: compileMs,
    unit: 'ms (median)',
    note: `${COMPILE_RUNS} runs; ${reference.flows.length} flows → ${policy.totals.rules} rules, ${policy.totals.vmPairsAllowed} of ${policy.totals.vmPairsFlat} VM pairs (${policy.totals.reductionPercent} % fewer than flat)`,
  });

  analyzeAttackPaths(reference, { policy });
  const analysisMs = timeMs(ANALYSIS_RUNS, () => analyzeAttackPaths(reference, { policy }));
  results.push({
    name: 'attack-path analysis, reference hospital',
    value: analysisMs,
    unit: 'ms (median)',
    note: `${ANALYSIS_RUNS} runs; reach, paths, blast radii, flow ranking, two greedy covers, flat baseline`,
  });

  // Queries cycle through a fixed mix of allowed and denied (from, to, port) so both paths count.
  const names = [...policy.vms.map((vm) => vm.vm), ...policy.networks.map((network) => network.name)];
  const ports = [22, 53, 104, 389, 443, 514, 1521, 2575, 3389, 8443];
  const queries = Array.from({ length: 4096 }, (_, index) => ({
    from: names[(index * 7) % names.length]!,
    to: names[(index * 13 + 5) % names.length]!,
    port: ports[index % ports.length]!,
  }));
  // Every fourth query is a rule of the policy, spread over all of them.
  for (let index = 0; index < queries.length; index += 4) {
    const rule = policy.rules[(index * 31) % policy.rules.length]!;
    queries[index] = { from: rule.from, to: rule.to, port: rule.port };
  }
  allows(policy, queries[0]!.from, queries[0]!.to, queries[0]!.port);
  let allowed = 0;
  const start = performance.now();
  for (let index = 0; index < LOOKUPS; index++) {
    const query = queries[index & 4095]!;
    if (allows(policy, query.from, query.to, query.port)) allowed++;
  }
  const elapsedS = (performance.now() - start) / 1000;
  results.push({
    name: 'allows() lookups, reference hospital',
    value: LOOKUPS / elapsedS,
    unit: 'lookups/s',
    note: `${LOOKUPS} lookups, ${((100 * allowed) / LOOKUPS).toFixed(1)} % allowed`,
  });
  return results;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  for (const result of await benchSegmentation()) {
    const value = result.value >= 100 ? result.value.toFixed(0) : result.value.toFixed(2);
    console.log(`${result.name}: ${value} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
  }
}
