/**
 * The `tomaranai` command line. It is the edge: it reads files and the environment, parses flags
 * with commander, and hands typed values to the core.
 */
import { readFileSync, statSync } from 'node:fs';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import type { ControllerTimings } from '../control/decide.ts';
import type { TwinParameters } from '../substrate/twin/twin.ts';
import type { Journal, JournalEntry } from '../ports/index.ts';
import { DrillError, runDrill, runDrillPaced, type DrillOptions, type DrillRun } from '../drill/sim/run.ts';
import { ALL_SCENARIOS } from '../drill/sim/scenarios.ts';
import { runStorm } from '../drill/sim/storm.ts';
import { DEMAND_SCENARIOS, runDemandScenario, type DemandRun, type DemandScenarioName } from '../drill/sim/demand.ts';
import { table } from './format.ts';
import { MemoryJournal } from '../journal/memory.ts';
import { SqliteJournal } from '../journal/sqlite.ts';
import type { Blueprint } from '../model/index.ts';
import { formatDrillReport } from './format.ts';
import { createLivePrinter } from './live.ts';
import { registerLabCommands, runQemuDrillCommand } from './lab.ts';
import { registerPlanCommands } from './plan.ts';
import { REAL_SCENARIOS } from '../drill/lab/real.ts';
import { registerReportCommands } from './report.ts';
import { registerSecurityCommands } from './security.ts';
import { registerServiceCommands } from './service.ts';
import { registerNotifyCommands } from './notify.ts';
import { blueprintJsonSchema, formatProblem, loadBlueprint, BLUEPRINT_SIZE_LIMIT_BYTES, type LoadResult } from '../model/index.ts';

export type { CliIo } from './io.ts';
import type { CliIo } from './io.ts';

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  color: process.stderr.isTTY === true && process.env.NO_COLOR === undefined,
};

export const REFERENCE_BLUEPRINT = new URL('../../blueprints/university-hospital.yaml', import.meta.url).pathname;

function parseSeed(value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > 0xffffffff) {
    throw new InvalidArgumentError('a seed is a whole number from 0 to 4294967295');
  }
  return Number(value);
}

function parseSpeed(value: string): number {
  const speed = Number(value);
  if (!Number.isFinite(speed) || speed < 1 || speed > 100_000) throw new InvalidArgumentError('a speed-up from 1 to 100000');
  return speed;
}

/** Loads a blueprint or prints its problems; null means "exit 1". */
function blueprintOrReport(file: string, io: CliIo): Blueprint | null {
  const result = readBlueprintFile(file);
  if (result.ok) return result.blueprint;
  for (const entry of result.problems) io.err(`${formatProblem(file, entry)}\n`);
  io.err(`${file}: not a valid blueprint; fix the problems above (\`tomaranai validate ${file}\`)\n`);
  return null;
}

function openJournal(spec: string): Journal & { onAppend(listener: (entry: JournalEntry) => void): () => void; close?: () => void } {
  if (spec === ':memory:') return new MemoryJournal();
  mkdirSync(dirname(spec), { recursive: true });
  // A drill's journal is a fresh record of that drill: an old file of the same name is replaced.
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${spec}${suffix}`, { force: true });
  return new SqliteJournal(spec);
}

/** Exit status of a drill: 0 when every invariant held and no continuous or critical service missed. */
function drillExitCode(run: DrillRun): number {
  const report = run.report;
  const invariantsHeld = report.invariants.splitBrain === 0 && report.invariants.lostVms === 0 && report.invariants.immutableViolations === 0;
  const topTiersMet = report.services.every((service) => service.met || (service.tier !== 'continuous' && service.tier !== 'critical'));
  return invariantsHeld && topTiersMet ? 0 : 1;
}

const CalibrationFile = z.strictObject({
  blueprint: z.string(),
  calibratedOn: z.string().optional(),
  parameters: z.strictObject({
    heartbeatIntervalMs: z.number().positive().optional(),
    stopLatencyMs: z.number().nonnegative().optional(),
    promoteLatencyMs: z.number().nonnegative().optional(),
    storageFenceLatencyMs: z.number().nonnegative().optional(),
    powerFenceLatencyMs: z.number().nonnegative().optional(),
    hostBootMs: z.number().nonnegative().optional(),
    bootContention: z.number().nonnegative().optional(),
    bootTimeFactor: z.number().positive().optional(),
    bootContentionScope: z.enum(['host', 'substrate']).optional(),
    secondarySyncMsPerGiB: z.number().nonnegative().optional(),
    secondarySyncMinMs: z.number().nonnegative().optional(),
    storageFailoverMs: z.number().nonnegative().optional(),
    migrationBaseMs: z.number().nonnegative().optional(),
    migrationMsPerGiB: z.number().nonnegative().optional(),
  }),
  controllerTimings: z.record(z.string(), z.number().nonnegative()).optional(),
});

const TWIN_PARAMETERS_ERROR = 'TMR_DRILL_TWIN_PARAMETERS';

/** Reads `tomaranai calibrate --write FILE`'s output; false (after saying why) when it is not one. */
function readCalibration(file: string, io: CliIo): { parameters: Partial<TwinParameters>; controllerTimings: Partial<ControllerTimings> } | false {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    io.err(`${TWIN_PARAMETERS_ERROR}: ${file}: ${error instanceof Error ? error.message : String(error)} (give the file \`tomaranai calibrate FILE --write OUT\` wrote)\n`);
    return false;
  }
  const result = CalibrationFile.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    io.err(`${TWIN_PARAMETERS_ERROR}: ${file}: at ${issue.path.join('.') || 'top level'}: ${issue.message} (give the file \`tomaranai calibrate FILE --write OUT\` wrote)\n`);
    return false;
  }
  return { parameters: result.data.parameters, controllerTimings: (result.data.controllerTimings ?? {}) as Partial<ControllerTimings> };
}

/** Reads and validates a blueprint file; never throws. */
export function readBlueprintFile(file: string): LoadResult {
  try {
    const size = statSync(file).size;
    if (size > BLUEPRINT_SIZE_LIMIT_BYTES) {
      // A huge file is neither read nor parsed: its size is the problem.
      return {
        ok: false,
        problems: [
          {
            code: 'TMR_BLUEPRINT_TOO_LARGE',
            severity: 'error',
            path: [],
            line: 1,
            col: 1,
            message: `the file is ${(size / 1024 / 1024).toFixed(1)} MiB, larger than the ${BLUEPRINT_SIZE_LIMIT_BYTES / 1024 / 1024} MiB a blueprint may be`,
            hint: 'a hospital blueprint is a few hundred KiB; check that this is the right file',
          },
        ],
      };
    }
    return loadBlueprint(readFileSync(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      problems: [
        {
          code: 'TMR_BLUEPRINT_NOT_TEXT',
          severity: 'error',
          path: [],
          line: 1,
          col: 1,
          message: code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'this is a directory, not a file' : `cannot read the file (${code ?? 'error'})`,
          hint: 'give the path of a blueprint YAML file, e.g. blueprints/university-hospital.yaml',
        },
      ],
    };
  }
}

export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('tomaranai')
    .description('SLA-driven continuity control plane for hospital systems on virtual machines')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  program
    .command('validate')
    .description('check a blueprint; prints FILE:LINE:COL: message (hint) per problem')
    .argument('<file>', 'blueprint YAML')
    .option('--json', 'print the problems as one JSON document')
    .action((file: string, options: { json?: boolean }) => {
      const result = readBlueprintFile(file);
      const problems = result.ok ? result.warnings : result.problems;
      if (options.json) {
        io.out(`${JSON.stringify({ file, valid: result.ok, problems }, null, 2)}\n`);
      } else {
        for (const entry of problems) io.out(`${formatProblem(file, entry)}\n`);
        if (result.ok) {
          const blueprint = result.blueprint;
          io.err(
            `${file}: valid: ${blueprint.services.length} services, ${blueprint.vms.length} VMs, ${blueprint.hosts.length} hosts in ${blueprint.rooms.length} rooms\n`,
          );
        }
      }
      exitCode = result.ok ? 0 : 1;
    });

  program
    .command('schema')
    .description('print the JSON Schema of the blueprint format (for editors)')
    .action(() => {
      io.out(`${JSON.stringify(blueprintJsonSchema(), null, 2)}\n`);
    });

  program
    .command('drill')
    .description('run a failure drill on the digital twin and report measured RTO/RPO per service')
    .argument('<file>', 'blueprint YAML')
    .addOption(new Option('--scenario <name>', 'what fails').choices([...new Set([...ALL_SCENARIOS.map((scenario) => scenario.name), ...REAL_SCENARIOS])]).makeOptionMandatory())
    .addOption(new Option('--substrate <name>', 'where the drill runs: the digital twin, or real QEMU VMs in a lab on this machine (root)').choices(['twin', 'qemu']).default('twin'))
    .option('--twin-parameters <file>', 'twin: timings fitted to real VMs by `tomaranai calibrate --write FILE`', '')
    .option('--lab <dir>', 'qemu: the lab directory (default .lab/lab)', '')
    .option('--keep-lab', 'qemu: leave a lab the drill brought up running afterwards')
    .option('--seed <n>', 'seed of the simulated run (the same seed replays it exactly)', parseSeed, 1)
    .option('--journal <path>', 'SQLite journal file, or :memory:', '')
    .option('--target <system>', 'cyber drills: the system (or VM) to attack; by default the seed picks a non-continuous one')
    .option('--json', 'print the report as one JSON document on stdout')
    .option('--quiet', 'no live progress on stderr')
    .action(async (file: string, options: { scenario: string; substrate: string; seed: number; journal: string; target?: string; json?: boolean; quiet?: boolean; lab: string; keepLab?: boolean; twinParameters: string }) => {
      const blueprint = blueprintOrReport(file, io);
      if (blueprint === null) {
        exitCode = 1;
        return;
      }
      if (options.substrate === 'qemu') {
        const journalPath = options.journal === '' ? `out/journal-qemu-${options.scenario}.db` : options.journal;
        exitCode = await runQemuDrillCommand({ io, file, blueprint, scenario: options.scenario, journal: openJournal(journalPath), journalPath, json: options.json === true, quiet: options.quiet === true, keepLab: options.keepLab === true, lab: options.lab });
        return;
      }
      if (!ALL_SCENARIOS.some((scenario) => scenario.name === options.scenario)) {
        io.err(`TMR_DRILL_UNKNOWN_SCENARIO: scenario "${options.scenario}" runs on real VMs only (--substrate qemu); on the twin use one of: ${ALL_SCENARIOS.map((scenario) => scenario.name).join(', ')}\n`);
        exitCode = 1;
        return;
      }
      const calibration = options.twinParameters === '' ? null : readCalibration(options.twinParameters, io);
      if (calibration === false) {
        exitCode = 1;
        return;
      }
      const journalPath = options.journal === '' ? `out/journal-${options.scenario}-seed${options.seed}.db` : options.journal;
      const journal = openJournal(journalPath);
      const drillOptions: DrillOptions = {
        blueprint,
        ...(calibration === null ? {} : { twinParameters: calibration.parameters, controllerTimings: calibration.controllerTimings }),
        scenario: options.scenario,
        seed: options.seed,
        journal,
        ...(options.target ? { target: options.target } : {}),
        ...(options.quiet ? {} : { onEntry: createLivePrinter({ blueprint, write: (line) => io.err(`${line}\n`), color: io.color ?? false }) }),
      };
      const run = journal instanceof SqliteJournal ? journal.batch(() => runDrill(drillOptions)) : runDrill(drillOptions);
      journal.close?.();
      if (options.json) io.out(`${JSON.stringify(run.report, null, 2)}\n`);
      else io.out(`${formatDrillReport(run.report)}\n`);
      if (!options.quiet) io.err(`journal: ${journalPath} (${run.journal.length} entries); replay with --seed ${options.seed}\n`);
      exitCode = drillExitCode(run);
    });

  registerSecurityCommands(program, io, (file) => blueprintOrReport(file, io), (code) => {
    exitCode = code;
  });
  registerServiceCommands(program, io, (code) => {
    exitCode = code;
  });
  registerPlanCommands(program, io, (file) => blueprintOrReport(file, io), (code) => {
    exitCode = code;
  });
  registerLabCommands(program, io, (file) => blueprintOrReport(file, io), (code) => {
    exitCode = code;
  });
  registerReportCommands(program, io, (code) => {
    exitCode = code;
  });
  registerNotifyCommands(program, io, (code) => (exitCode = code));

  program
    .command('demand')
    .description('clinical demand on the twin: CPU ready time per VM, without and with the rebalancer, side by side')
    .argument('<file>', 'blueprint YAML')
    .addOption(new Option('--scenario <name>', 'the demand').choices([...DEMAND_SCENARIOS]).makeOptionMandatory())
    .addOption(new Option('--placement <objective>', 'initial placement: spread for headroom, or consolidated on the fewest hosts').choices(['balanced', 'fewest-hosts']).default('balanced'))
    .option('--seed <n>', 'seed of the simulated run', parseSeed, 1)
    .option('--json', 'print both runs as one JSON document')
    .action((file: string, options: { scenario: DemandScenarioName; placement: 'balanced' | 'fewest-hosts'; seed: number; json?: boolean }) => {
      const blueprint = blueprintOrReport(file, io);
      if (blueprint === null) {
        exitCode = 1;
        return;
      }
      const runs = [false, true].map((rebalance) => runDemandScenario({ blueprint, scenario: options.scenario, seed: options.seed, rebalance, placement: options.placement }));
      const [without, withRebalancer] = runs as [DemandRun, DemandRun];
      if (options.json) {
        io.out(`${JSON.stringify({ scenario: options.scenario, placement: options.placement, seed: options.seed, withoutRebalancer: without, withRebalancer }, null, 2)}\n`);
      } else {
        io.out(`Demand ${options.scenario} on ${blueprint.name} (${options.placement} placement, seed ${options.seed}): ${without.description}\n`);
        io.out(`CPU ready time, sampled every minute over ${without.samples} minutes; target for continuous and critical VMs: under 2 %\n\n`);
        const tiers = [...blueprint.tiers.keys()];
        const byTier = (run: DemandRun, tier: string) => run.vms.filter((vm) => vm.tier === tier);
        const rows = tiers.map((tier) => {
          const a = byTier(without, tier);
          const b = byTier(withRebalancer, tier);
          const max = (list: typeof a) => Math.max(0, ...list.map((vm) => vm.maxReadyPercent));
          const mean = (list: typeof a) => list.reduce((sum, vm) => sum + vm.meanReadyPercent, 0) / Math.max(1, list.length);
          const minutes = (list: typeof a) => list.reduce((sum, vm) => sum + vm.minutesAbove2Percent, 0);
          return [tier, `${max(a).toFixed(2)} %`, `${mean(a).toFixed(2)} %`, String(minutes(a)), `${max(b).toFixed(2)} %`, `${mean(b).toFixed(2)} %`, String(minutes(b))];
        });
        io.out(`${table(['tier', 'max ready (off)', 'mean (off)', 'VM-min > 2 % (off)', 'max ready (on)', 'mean (on)', 'VM-min > 2 % (on)'], rows)}\n\n`);
        const hostMax = (run: DemandRun) => Math.max(...run.hosts.map((host) => host.maxUtilisationPercent));
        io.out(`busiest host CPU demand: ${hostMax(without).toFixed(1)} % without the rebalancer, ${hostMax(withRebalancer).toFixed(1)} % with it (${withRebalancer.migrations} live migrations, ${withRebalancer.shareChanges} share changes)\n`);
        const worst = (run: DemandRun) =>
          run.vms.filter((vm) => vm.tier === 'continuous' || vm.tier === 'critical').sort((a, b) => b.maxReadyPercent - a.maxReadyPercent)[0];
        const w0 = worst(without);
        const w1 = worst(withRebalancer);
        if (w0 && w1) io.out(`worst continuous/critical VM: ${w0.vm} (${w0.role}) ${w0.maxReadyPercent} % without, ${w1.vm} (${w1.role}) ${w1.maxReadyPercent} % with\n`);
      }
      const worstTop = Math.max(...runs.flatMap((run) => run.vms.filter((vm) => vm.tier === 'continuous' || vm.tier === 'critical').map((vm) => vm.maxReadyPercent)));
      exitCode = worstTop < 2 ? 0 : 1;
    });

  program
    .command('storm')
    .description('replay one random fault storm on the twin and check the invariants (what the property test runs)')
    .argument('<file>', 'blueprint YAML')
    .requiredOption('--seed <n>', 'the storm seed a failing test printed', parseSeed)
    .option('--json', 'print the result as one JSON document')
    .action((file: string, options: { seed: number; json?: boolean }) => {
      const blueprint = blueprintOrReport(file, io);
      if (blueprint === null) {
        exitCode = 1;
        return;
      }
      const result = runStorm({ blueprint, seed: options.seed, hashJournal: true });
      const summary = {
        seed: result.seed,
        ok: result.ok,
        faults: result.faults,
        violations: result.violations,
        unconverged: result.unconverged,
        events: result.events,
        journalHead: result.journal.entries().at(-1)?.hash ?? null,
      };
      if (options.json) io.out(`${JSON.stringify(summary, null, 2)}\n`);
      else {
        io.out(`storm seed ${result.seed} on ${blueprint.name}: ${result.faults.length} faults, ${result.events} events\n`);
        for (const fault of result.faults) io.out(`  ${fault.atS.toFixed(1)} s → ${fault.healAtS.toFixed(1)} s  ${JSON.stringify(fault.fault)}\n`);
        for (const violation of result.violations) io.out(`  VIOLATION ${violation.invariant} ${violation.subject} at ${(violation.atMs / 1000).toFixed(1)} s: ${violation.detail}\n`);
        if (result.unconverged.length > 0) io.out(`  NOT CONVERGED after repair: ${result.unconverged.join(', ')}\n`);
        io.out(`${result.ok ? 'ok' : 'FAILED'}: invariants ${result.violations.length === 0 ? 'held' : 'broken'}, ${result.unconverged.length === 0 ? 'converged' : 'did not converge'}; journal head ${summary.journalHead}\n`);
      }
      exitCode = result.ok ? 0 : 1;
    });

  program
    .command('demo')
    .description('the reference hospital on the twin: a live incident, paced for people, then its report (npm start)')
    .option('--blueprint <file>', 'blueprint YAML', REFERENCE_BLUEPRINT)
    .addOption(new Option('--scenario <name>', 'what fails').choices(ALL_SCENARIOS.map((scenario) => scenario.name)).default('host-failure'))
    .option('--seed <n>', 'seed of the simulated run', parseSeed, 1)
    .option('--speed <x>', 'simulated seconds per wall second while the incident unfolds', parseSpeed, 20)
    .action(async (options: { blueprint: string; scenario: string; seed: number; speed: number }) => {
      const blueprint = blueprintOrReport(options.blueprint, io);
      if (blueprint === null) {
        exitCode = 1;
        return;
      }
      let printed = 0;
      const printer = createLivePrinter({
        blueprint,
        write: (line) => {
          printed++;
          io.out(`${line}\n`);
        },
        color: io.color ?? false,
      });
      io.out(
        `Tomaranai demo: ${blueprint.services.length} clinical systems, ${blueprint.vms.length} VMs on ${blueprint.hosts.length} hosts in ${blueprint.rooms.length} rooms, on the digital twin (simulated time, ${options.speed}x while the incident unfolds)\n\n`,
      );
      let lastPrinted = 0;
      let lastMs = 0;
      const run = await runDrillPaced({ blueprint, scenario: options.scenario, seed: options.seed, onEntry: printer }, async (atMs, live) => {
        const elapsedMs = atMs - lastMs;
        lastMs = atMs;
        // Quiet stretches pass at once; stretches with news pass at the chosen speed.
        if (live && printed > lastPrinted) await sleep(Math.min(1000, elapsedMs / options.speed));
        lastPrinted = printed;
      });
      io.out(`\n${formatDrillReport(run.report)}\n`);
      io.out(`\nReplay exactly: npx tomaranai drill ${options.blueprint === REFERENCE_BLUEPRINT ? 'blueprints/university-hospital.yaml' : options.blueprint} --scenario ${options.scenario} --seed ${options.seed}\n`);
      exitCode = drillExitCode(run);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof DrillError) {
      io.err(`${error.code}: ${error.message} (${error.hint})\n`);
      return 1;
    }
    throw error;
  }
  return exitCode;
}
