/**
 * `tomaranai storm FILE --seed N` replays one random fault storm on the twin, as the property test
 * runs it; `tomaranai storm FILE --seeds N --workers K [--base-seed B]` runs N storms whose seeds
 * are a pure function of B, spread over K worker threads, and prints every failing seed with the
 * command that replays it alone. Exit status 1 when any storm broke an invariant (the optimum
 * oracle's included) or did not converge.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { runStorm } from '../drill/sim/storm.ts';
import { runStormBatch, type SeedOutcome } from '../drill/sim/storm-pool.ts';
import { stormSeeds } from '../drill/sim/storm-seeds.ts';
import type { Blueprint } from '../model/index.ts';
import { parseSeed } from './arguments.ts';
import type { CliIo } from './io.ts';

function parseCount(limit: number, what: string): (value: string) => number {
  return (value) => {
    const count = Number(value);
    if (!/^\d+$/.test(value) || count < 1 || count > limit) throw new InvalidArgumentError(`${what} is a whole number from 1 to ${limit}`);
    return count;
  };
}

interface StormCommandOptions {
  seed?: number;
  seeds?: number;
  workers: number;
  baseSeed: number;
  json?: boolean;
}

export function registerStormCommand(program: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  program
    .command('storm')
    .description('random fault storms on the twin, with the invariants and the optimum oracle checked: replay one seed, or run many over worker threads')
    .argument('<file>', 'blueprint YAML')
    .option('--seed <n>', 'replay the storm of this seed (what a failing run printed)', parseSeed)
    .option('--seeds <n>', 'run this many storms, their seeds derived from --base-seed', parseCount(1_000_000, 'a seed count'))
    .option('--workers <k>', 'worker threads for --seeds', parseCount(256, 'a worker count'), 1)
    .option('--base-seed <n>', 'the base seed of --seeds (the same base gives the same seeds)', parseSeed, 1)
    .option('--json', 'print the result as one JSON document')
    .action(async (file: string, options: StormCommandOptions) => {
      if ((options.seed === undefined) === (options.seeds === undefined)) {
        io.err('storm: give either --seed N (replay one storm) or --seeds N (run many)\n');
        setExitCode(2);
        return;
      }
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) {
        setExitCode(1);
        return;
      }
      if (options.seed !== undefined) setExitCode(replayOne(io, blueprint, options.seed, options.json === true));
      else setExitCode(await runMany(io, { file, blueprint, count: options.seeds!, workers: options.workers, baseSeed: options.baseSeed, json: options.json === true }));
    });
}

function replayOne(io: CliIo, blueprint: Blueprint, seed: number, json: boolean): number {
  const result = runStorm({ blueprint, seed, hashJournal: true });
  const summary = {
    seed: result.seed,
    ok: result.ok,
    faults: result.faults,
    violations: result.violations,
    unconverged: result.unconverged,
    events: result.events,
    oracle: result.oracle,
    journalHead: result.journal.entries().at(-1)?.hash ?? null,
  };
  if (json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    io.out(`storm seed ${result.seed} on ${blueprint.name}: ${result.faults.length} faults, ${result.events} events, ${result.oracle.judged} settled points judged by the oracle\n`);
    for (const fault of result.faults) io.out(`  ${fault.atS.toFixed(1)} s → ${fault.healAtS.toFixed(1)} s  ${JSON.stringify(fault.fault)}\n`);
    for (const violation of result.violations) io.out(`  VIOLATION ${violation.invariant} ${violation.subject} at ${(violation.atMs / 1000).toFixed(1)} s: ${violation.detail}\n`);
    if (result.unconverged.length > 0) io.out(`  NOT CONVERGED after repair: ${result.unconverged.join(', ')}\n`);
    io.out(`${result.ok ? 'ok' : 'FAILED'}: invariants ${result.violations.length === 0 ? 'held' : 'broken'}, ${result.unconverged.length === 0 ? 'converged' : 'did not converge'}; journal head ${summary.journalHead}\n`);
  }
  return result.ok ? 0 : 1;
}

async function runMany(io: CliIo, run: { file: string; blueprint: Blueprint; count: number; workers: number; baseSeed: number; json: boolean }): Promise<number> {
  const seeds = stormSeeds(run.baseSeed, run.count);
  let reported = 0;
  const batch = await runStormBatch({
    source: readFileSync(run.file, 'utf8'),
    seeds,
    workers: run.workers,
    onProgress: (done) => {
      // A line per tenth: CI logs show it moving without a line per batch.
      if (run.json || done * 10 < (reported + 1) * run.count) return;
      reported = Math.floor((done * 10) / run.count);
      io.err(`storms: ${done} of ${run.count} seeds\n`);
    },
  });
  const failed = batch.outcomes.filter((outcome) => !outcome.ok);
  const violations = batch.outcomes.reduce((sum, outcome) => sum + outcome.violations.length, 0);
  const unconverged = batch.outcomes.filter((outcome) => outcome.unconverged.length > 0).length;
  const replay = (outcome: SeedOutcome) => `npx tomaranai storm ${run.file} --seed ${outcome.seed}`;
  const summary = {
    blueprint: run.blueprint.name,
    baseSeed: run.baseSeed,
    seeds: batch.outcomes.length,
    workers: batch.workers,
    wallS: Math.round(batch.wallMs) / 1000,
    failedSeeds: failed.length,
    violations,
    unconverged,
    settledPointsJudged: batch.outcomes.reduce((sum, outcome) => sum + outcome.judged, 0),
    oracleSolves: batch.outcomes.reduce((sum, outcome) => sum + outcome.solved, 0),
    events: batch.outcomes.reduce((sum, outcome) => sum + outcome.events, 0),
    failures: failed.map((outcome) => ({ seed: outcome.seed, violations: outcome.violations, unconverged: outcome.unconverged, replay: replay(outcome) })),
  };
  if (run.json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    for (const outcome of failed) {
      const first = outcome.violations[0];
      const what = first === undefined ? `did not converge: ${outcome.unconverged.join(', ')}` : `${first.invariant} ${first.subject}: ${first.detail}`;
      io.out(`FAILED seed ${outcome.seed}: ${what}\n  replay: ${replay(outcome)}\n`);
    }
    io.out(
      `storms: ${summary.seeds} seeds on ${summary.blueprint} (base seed ${run.baseSeed}), ${summary.failedSeeds} failed, ${violations} violations, ${unconverged} unconverged; ` +
        `${summary.settledPointsJudged} settled points judged by the oracle (${summary.oracleSolves} HiGHS solves); ${summary.wallS} s on ${batch.workers} worker(s)\n`,
    );
  }
  return failed.length === 0 ? 0 : 1;
}
