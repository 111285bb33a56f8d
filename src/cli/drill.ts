/**
 * The drills on the command line: `drill FILE --scenario S` (on the twin, or on real VMs through
 * lab.ts) and `demo` (the reference hospital's incident, paced for people); the storms are in
 * storm.ts. The edge of each: it opens the journal
 * file, reads a calibration file, prints the report and turns the outcome into an exit status.
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { z } from 'zod';
import type { ControllerTimings } from '../control/decide.ts';
import { REAL_SCENARIOS } from '../drill/lab/real.ts';
import { runDrill, runDrillPaced, type DrillOptions, type DrillRun } from '../drill/sim/run.ts';
import { ALL_SCENARIOS } from '../drill/sim/scenarios.ts';
import { MemoryJournal } from '../journal/memory.ts';
import { SqliteJournal } from '../journal/sqlite.ts';
import type { Blueprint } from '../model/index.ts';
import type { Journal, JournalEntry } from '../ports/index.ts';
import type { TwinParameters } from '../substrate/twin/twin.ts';
import { parseDays, parseSeed, parseSeedRange } from './arguments.ts';
import { ATTACK_VARIANTS, type AttackVariant } from '../drill/sim/variants.ts';
import { runRansomwareSweep } from './ransomware-sweep.ts';
import { formatDrillReport } from './format.ts';
import type { CliIo } from './io.ts';
import { runQemuDrillCommand } from './lab.ts';
import { LAB_RANSOMWARE_VARIANTS } from '../drill/lab/ransomware.ts';
import { createLivePrinter } from './live.ts';

export const REFERENCE_BLUEPRINT = new URL('../../blueprints/university-hospital.yaml', import.meta.url).pathname;

const TWIN_PARAMETERS_ERROR = 'TMR_DRILL_TWIN_PARAMETERS';
const VARIANT_ERROR = 'TMR_DRILL_VARIANT';

function parseSpeed(value: string): number {
  const speed = Number(value);
  if (!Number.isFinite(speed) || speed < 1 || speed > 100_000) throw new InvalidArgumentError('a speed-up from 1 to 100000');
  return speed;
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

interface DrillCommandOptions {
  scenario: string;
  substrate: string;
  seed: number;
  journal: string;
  target?: string;
  json?: boolean;
  quiet?: boolean;
  lab: string;
  keepLab?: boolean;
  twinParameters: string;
  variant?: string;
  seeds?: number[];
  benignDays?: number;
}

export function registerDrillCommand(program: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
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
    .option('--variant <name>', `cyber drills: how the attacker destroys the data — on the twin ${[...ATTACK_VARIANTS].join(', ')} (full: whole-file encryption; with --seeds, all runs every variant); on real VMs (qemu) the guest's encryptor plays ${LAB_RANSOMWARE_VARIANTS.join(', ')} (full = whole)`)
    .option('--seeds <range>', 'ransomware: run seeds A-B and print the detection table (detected, delay from the first malicious write, restore point)', parseSeedRange)
    .option('--benign-days <n>', 'with --seeds: also run the hospital with no attacker for n days and print its false alerts per 100 VM-days', parseDays)
    .option('--json', 'print the report as one JSON document on stdout')
    .option('--quiet', 'no live progress on stderr')
    .action(async (file: string, options: DrillCommandOptions) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) {
        setExitCode(1);
        return;
      }
      if (options.substrate === 'qemu') {
        const journalPath = options.journal === '' ? `out/journal-qemu-${options.scenario}.db` : options.journal;
        setExitCode(await runQemuDrillCommand({ io, file, blueprint, scenario: options.scenario, journal: openJournal(journalPath), journalPath, json: options.json === true, quiet: options.quiet === true, keepLab: options.keepLab === true, lab: options.lab, ...(options.variant ? { variant: options.variant } : {}), ...(options.target ? { target: options.target } : {}) }));
        return;
      }
      if (options.variant !== undefined && !([...ATTACK_VARIANTS, 'all'] as readonly string[]).includes(options.variant)) {
        io.err(`${VARIANT_ERROR}: the twin's attacker has no variant "${options.variant}": use one of ${[...ATTACK_VARIANTS, 'all'].join(', ')}\n`);
        setExitCode(1);
        return;
      }
      const variant = options.variant as AttackVariant | 'all' | undefined;
      const cyber = ALL_SCENARIOS.find((scenario) => scenario.name === options.scenario)?.security === true;
      if ((options.variant !== undefined && !cyber) || (options.seeds !== undefined && options.scenario !== 'ransomware') || (options.benignDays !== undefined && options.seeds === undefined) || (options.variant === 'all' && options.seeds === undefined)) {
        io.err(`${VARIANT_ERROR}: --variant is for the cyber scenarios, --seeds for --scenario ransomware, --benign-days and --variant all go with --seeds (e.g. \`drill ${file} --scenario ransomware --variant all --seeds 1-50 --benign-days 7\`)\n`);
        setExitCode(1);
        return;
      }
      if (options.seeds !== undefined) {
        setExitCode(runRansomwareSweep({ io, file, blueprint, variant: variant ?? 'full', seeds: options.seeds, benignDays: options.benignDays ?? null, quiet: options.quiet === true }));
        return;
      }
      if (!ALL_SCENARIOS.some((scenario) => scenario.name === options.scenario)) {
        io.err(`TMR_DRILL_UNKNOWN_SCENARIO: scenario "${options.scenario}" runs on real VMs only (--substrate qemu); on the twin use one of: ${ALL_SCENARIOS.map((scenario) => scenario.name).join(', ')}\n`);
        setExitCode(1);
        return;
      }
      const calibration = options.twinParameters === '' ? null : readCalibration(options.twinParameters, io);
      if (calibration === false) {
        setExitCode(1);
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
        ...(variant !== undefined && variant !== 'all' ? { variant } : {}),
        ...(options.quiet ? {} : { onEntry: createLivePrinter({ blueprint, write: (line) => io.err(`${line}\n`), color: io.color ?? false }) }),
      };
      const run = journal instanceof SqliteJournal ? journal.batch(() => runDrill(drillOptions)) : runDrill(drillOptions);
      journal.close?.();
      if (options.json) io.out(`${JSON.stringify(run.report, null, 2)}\n`);
      else io.out(`${formatDrillReport(run.report)}\n`);
      if (!options.quiet) io.err(`journal: ${journalPath} (${run.journal.length} entries); replay with --seed ${options.seed}\n`);
      setExitCode(drillExitCode(run));
    });
}

export function registerDemoCommand(program: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  program
    .command('demo')
    .description('the reference hospital on the twin: a live incident, paced for people, then its report (npm start)')
    .option('--blueprint <file>', 'blueprint YAML', REFERENCE_BLUEPRINT)
    .addOption(new Option('--scenario <name>', 'what fails').choices(ALL_SCENARIOS.map((scenario) => scenario.name)).default('host-failure'))
    .option('--seed <n>', 'seed of the simulated run', parseSeed, 1)
    .option('--speed <x>', 'simulated seconds per wall second while the incident unfolds', parseSpeed, 20)
    .action(async (options: { blueprint: string; scenario: string; seed: number; speed: number }) => {
      const blueprint = loadBlueprintOrReport(options.blueprint);
      if (blueprint === null) {
        setExitCode(1);
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
      setExitCode(drillExitCode(run));
    });
}
