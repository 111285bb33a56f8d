/**
 * Ransomware detection on the reference hospital (issue 15). Prints numbers; asserts nothing.
 *   - false alerts over the benign week: the hospital with its security loop on and no attacker
 *     for 7 simulated days — backups, local dumps, batch jobs, database maintenance, updates, log
 *     rotation, clean-ups — per 100 VM-days (target ≤ 1), and the wall time it takes;
 *   - each attacker variant over 5 seeds: detected, median delay from the first malicious write.
 * The 50-seed table: `tomaranai drill blueprints/university-hospital.yaml --scenario ransomware
 * --variant all --seeds 1-50 --benign-days 7` (docs/detection.md).
 */
import { readFileSync } from 'node:fs';
import { benignWeek, summarizeVariant, sweepVariant } from '../src/drill/sim/ransomware-sweep.ts';
import { ATTACK_VARIANTS } from '../src/drill/sim/variants.ts';
import { loadBlueprint } from '../src/model/index.ts';
import type { BenchResult } from './twin.ts';

export async function benchRansomware(): Promise<BenchResult[]> {
  const loaded = loadBlueprint(readFileSync(new URL('../blueprints/university-hospital.yaml', import.meta.url)));
  if (!loaded.ok) throw new Error('university-hospital is not valid');
  const blueprint = loaded.blueprint;
  const results: BenchResult[] = [];
  const startedAt = performance.now();
  const week = benignWeek(blueprint, 1, 7);
  results.push({
    name: 'false alerts, benign week (no attacker), reference hospital',
    value: week.alertsPer100VmDays,
    unit: 'per 100 VM-days',
    note: `target ≤ 1; ${week.alerts} alert(s) over ${week.vmDays.toFixed(0)} VM-days, ${week.anomalyEntries} per-metric anomalies journaled below the alert, ${((performance.now() - startedAt) / 1000).toFixed(0)} s wall`,
  });
  for (const variant of ATTACK_VARIANTS) {
    const summary = summarizeVariant(variant, sweepVariant(blueprint, variant, [1, 2, 3, 4, 5]));
    results.push({
      name: `ransomware --variant ${variant}, seeds 1-5: median delay from the first malicious write`,
      value: summary.medianDelayS ?? Number.NaN,
      unit: 's',
      note: `detected ${summary.detected}/${summary.runs}, restore point before the first write ${summary.restoreBefore}/${summary.detected}, false alerts ${summary.falseAlerts}`,
    });
  }
  return results;
}
