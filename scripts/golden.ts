/**
 * Golden outputs for refactors: one line per deterministic run — every shipped twin scenario on
 * every shipped blueprint (report digest, journal length and head hash), a set of storm seeds, the
 * failure analysis of the balanced placement and the demand scenarios. A change that claims to
 * alter structure only must leave this output byte-identical:
 *
 *   node --import tsx scripts/golden.ts > before.txt   (on the old commit)
 *   node --import tsx scripts/golden.ts > after.txt && diff before.txt after.txt
 *
 * `--check FILE` compares against a stored copy and exits 1 naming the first lines that differ.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runDemandScenario, DEMAND_SCENARIOS } from '../src/drill/sim/demand.ts';
import { runDrill } from '../src/drill/sim/run.ts';
import { ALL_SCENARIOS } from '../src/drill/sim/scenarios.ts';
import { runStorm } from '../src/drill/sim/storm.ts';
import { loadBlueprint, type Blueprint } from '../src/model/index.ts';
import { analyseFailures, failureCases } from '../src/analysis/failure-analysis.ts';
import { planPlacement } from '../src/capacity/placement.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BLUEPRINTS = ['university-hospital', 'regional-hospital', 'lab'] as const;

function load(name: string): Blueprint {
  const result = loadBlueprint(readFileSync(`${ROOT}blueprints/${name}.yaml`));
  if (!result.ok) throw new Error(`${name}: ${result.problems.map((problem) => problem.message).join('; ')}`);
  return result.blueprint;
}

function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

function* lines(): Generator<string> {
  for (const name of BLUEPRINTS) {
    const blueprint = load(name);
    for (const scenario of ALL_SCENARIOS) {
      for (const seed of [1, 2]) {
        let line: string;
        try {
          const run = runDrill({ blueprint, scenario: scenario.name, seed });
          const entries = run.journal.entries();
          line = `drill ${name} ${scenario.name} ${seed} report=${digest(run.report)} entries=${entries.length} head=${entries.at(-1)?.hash.slice(0, 16) ?? '-'}`;
        } catch (error) {
          line = `drill ${name} ${scenario.name} ${seed} error=${(error as Error).message}`;
        }
        yield line;
      }
    }
    for (let seed = 1; seed <= (name === 'university-hospital' ? 6 : 12); seed += 1) {
      const storm = runStorm({ blueprint, seed, hashJournal: true });
      const entries = storm.journal.entries();
      yield `storm ${name} ${seed} ok=${storm.ok} events=${storm.events} entries=${entries.length} head=${entries.at(-1)?.hash.slice(0, 16) ?? '-'}`;
    }
    const placement = planPlacement(blueprint);
    const outcomes = analyseFailures(blueprint, placement.placements, failureCases(blueprint, { pairs: true }));
    yield `analysis ${name} placement=${digest([...placement.placements])} outcomes=${digest(outcomes)}`;
    if (name !== 'lab') {
      for (const scenario of DEMAND_SCENARIOS) {
        for (const rebalance of [false, true]) {
          const run = runDemandScenario({ blueprint, scenario, seed: 1, rebalance });
          yield `demand ${name} ${scenario} rebalance=${rebalance} ${digest(run)}`;
        }
      }
    }
  }
}

const check = process.argv.indexOf('--check');
if (check >= 0) {
  const expected = readFileSync(process.argv[check + 1] ?? '', 'utf8').trimEnd().split('\n');
  let failed = 0;
  let index = 0;
  for (const line of lines()) {
    if (line !== expected[index]) {
      failed += 1;
      console.log(`line ${index + 1} differs:\n  expected ${expected[index]}\n  actual   ${line}`);
    }
    index += 1;
  }
  console.log(failed === 0 ? `golden: ${index} lines identical` : `golden: ${failed} of ${index} lines differ`);
  process.exit(failed === 0 ? 0 : 1);
} else {
  for (const line of lines()) console.log(line);
}
