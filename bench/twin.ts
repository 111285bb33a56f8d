/**
 * Benchmarks of the twin and the controller on it. Prints numbers; asserts nothing.
 *   - simulated seconds per wall second over a simulated week of the reference hospital with
 *     random background failures (target: the week in under 2 s);
 *   - wall time of one host-failure drill;
 *   - fault-storm seeds checked per second (target: at least 50).
 */
import { readFileSync } from 'node:fs';
import { runDrill } from '../src/drill/sim/run.ts';
import { runSoak } from '../src/drill/sim/soak.ts';
import { runStorm } from '../src/drill/sim/storm.ts';
import { loadBlueprint, type Blueprint } from '../src/model/index.ts';

export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

function blueprint(name: string): Blueprint {
  const result = loadBlueprint(readFileSync(new URL(`../blueprints/${name}.yaml`, import.meta.url)));
  if (!result.ok) throw new Error(`${name} is not valid`);
  return result.blueprint;
}

export async function benchTwin(): Promise<BenchResult[]> {
  const reference = blueprint('university-hospital');
  const regional = blueprint('regional-hospital');
  const results: BenchResult[] = [];

  runSoak({ blueprint: reference, seed: 0, days: 1 });
  const weekStart = performance.now();
  const week = runSoak({ blueprint: reference, seed: 1, days: 7 });
  const weekWallS = (performance.now() - weekStart) / 1000;
  results.push({ name: 'simulated week, reference hospital, background failures', value: weekWallS, unit: 's wall', note: `target < 2 s; ${week.faults} faults, ${week.events} events, ${week.journalEntries} journal entries, ${week.violations} invariant violations` });
  results.push({ name: 'simulation speed', value: week.simulatedS / weekWallS, unit: 'simulated s per wall s' });

  for (let warm = 0; warm < 3; warm++) runDrill({ blueprint: reference, scenario: 'host-failure', seed: warm });
  const drillRuns = 10;
  const drillStart = performance.now();
  for (let seed = 1; seed <= drillRuns; seed++) runDrill({ blueprint: reference, scenario: 'host-failure', seed });
  results.push({ name: 'host-failure drill, reference hospital', value: (performance.now() - drillStart) / drillRuns, unit: 'ms wall per drill', note: 'boot of 74 VMs, fault, recovery, repair, report' });

  for (const [name, target, seeds] of [
    ['reference hospital', reference, 100],
    ['regional hospital', regional, 200],
  ] as const) {
    let failures = 0;
    const stormStart = performance.now();
    for (let seed = 1; seed <= seeds; seed++) if (!runStorm({ blueprint: target, seed }).ok) failures++;
    const perSecond = seeds / ((performance.now() - stormStart) / 1000);
    results.push({ name: `fault-storm seeds checked, ${name}`, value: perSecond, unit: 'seeds/s', note: `target ≥ 50; ${failures} of ${seeds} seeds failed` });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const result of await benchTwin()) console.log(`${result.name}: ${result.value.toFixed(2)} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
}
