/**
 * Real VMs on the command line: `tomaranai lab up|down|status`, and (cli/agent.ts) `tomaranai agent`; and the qemu half of `tomaranai drill --substrate qemu`.
 */
import type { Command } from 'commander';
import type { Journal, JournalEntry } from '../ports/index.ts';
import { labStatus, REAL_SCENARIOS, runRealDrill, type RealDrillRun } from '../drill/lab/real.ts';
import { formatLabRansomware, labRansomwareHeld } from '../drill/lab/ransomware.ts';
import type { Blueprint } from '../model/index.ts';
import { LabLayout, readManifest, readToken } from '../substrate/qemu/lab.ts';
import { labDown, labUp } from '../substrate/qemu/power.ts';
import { writeFileSync } from 'node:fs';
import { calibrate, CALIBRATION_SCENARIOS, TOLERANCE, type Calibration } from '../drill/lab/calibrate.ts';
import { formatDrillReport, table } from './format.ts';
import { createLivePrinter } from './live.ts';
import type { CliIo } from './io.ts';
import { TomaranaiError } from '../errors/index.ts';

export function registerLabCommands(program: Command, io: CliIo, loadBlueprint: (file: string) => Blueprint | null, setExit: (code: number) => void): void {
  const lab = program.command('lab').description('real VMs on this machine: hosts as network namespaces with agents, QEMU guests (root)');
  lab
    .command('up')
    .description('build the lab for a small blueprint: namespaces, bridges, datastore, agents (the controller boots the VMs)')
    .argument('<file>', 'blueprint YAML (blueprints/lab.yaml)')
    .option('--lab <dir>', 'lab directory', '')
    .action(async (file: string, options: { lab: string }) => {
      const blueprint = loadBlueprint(file);
      if (blueprint === null) return setExit(1);
      const layout = layoutOf(options.lab);
      await guard(io, setExit, async () => {
        const manifest = await labUp({ layout, blueprint, blueprintFile: file });
        io.out(`lab ${manifest.blueprintName} is up in ${layout.root} (${manifest.accelerator}): ${manifest.hosts.map((host) => `${host.name} ${host.address}`).join(', ')}\n`);
        io.out(`next: tomaranai drill ${file} --substrate qemu --scenario host-failure\n`);
      });
    });
  lab
    .command('down')
    .description('tear the lab down: agents, QEMUs, namespaces, interfaces, nftables tables, the lab directory')
    .option('--lab <dir>', 'lab directory', '')
    .action(async (options: { lab: string }) => {
      await guard(io, setExit, async () => {
        await labDown({ layout: layoutOf(options.lab) });
        io.out('lab down: no tmr- namespace, interface, nftables table or process is left\n');
      });
    });
  lab
    .command('status')
    .description('hosts, power, agents and the VMs each runs')
    .option('--lab <dir>', 'lab directory', '')
    .option('--json', 'as JSON')
    .action(async (options: { lab: string; json?: boolean }) => {
      const layout = layoutOf(options.lab);
      const status = await labStatus(layout);
      if (status === null) return report(io, setExit, notUp(layout));
      if (options.json) {
        io.out(`${JSON.stringify({ blueprint: status.manifest.blueprintName, accelerator: status.manifest.accelerator, hosts: status.hosts }, null, 2)}\n`);
        return;
      }
      io.out(`lab ${status.manifest.blueprintName} (${status.manifest.accelerator})\n`);
      for (const host of status.hosts) io.out(`  ${host.name.padEnd(10)} power ${host.power.padEnd(3)}  agent ${host.agent ? 'up  ' : 'down'}  ${host.vms.join(', ') || '-'}\n`);
    });

  program
    .command('calibrate')
    .description('run each scenario on real VMs and on the twin; print RTO/RPO side by side and fit the twin to the real timings (root)')
    .argument('<file>', 'blueprint YAML (blueprints/lab.yaml)')
    .option('--lab <dir>', 'lab directory', '')
    .option('--scenario <names>', `comma-separated, of ${CALIBRATION_SCENARIOS.join(', ')}`, CALIBRATION_SCENARIOS.join(','))
    .option('--write <file>', 'write the fitted twin parameters here (use them with `drill --twin-parameters FILE`)', '')
    .option('--journals <dir>', 'keep the real runs\' journals here (SQLite, one per scenario)', 'out/calibrate')
    .option('--reuse', 'refit from the journals kept in --journals instead of running the real VMs again')
    .option('--json', 'print the whole calibration as JSON')
    .action(async (file: string, options: { lab: string; scenario: string; write: string; json?: boolean; journals: string; reuse?: boolean }) => {
      const blueprint = loadBlueprint(file);
      if (blueprint === null) return setExit(1);
      const scenarios = options.scenario.split(',').map((name) => name.trim());
      const unknown = scenarios.filter((name) => !(CALIBRATION_SCENARIOS as readonly string[]).includes(name));
      if (unknown.length > 0) {
        io.err(`TMR_DRILL_UNKNOWN_SCENARIO: ${unknown.join(', ')} cannot be calibrated (use ${CALIBRATION_SCENARIOS.join(', ')})\n`);
        return setExit(1);
      }
      await guard(io, setExit, async () => {
        const result = await calibrate({
          blueprint,
          blueprintFile: file,
          layout: layoutOf(options.lab),
          scenarios: scenarios as typeof CALIBRATION_SCENARIOS,
          journalDirectory: options.journals,
          reuse: options.reuse === true,
          onProgress: (line) => io.err(`${line}\n`),
        });
        if (options.write !== '') writeFileSync(options.write, `${JSON.stringify({ blueprint: result.blueprint, calibratedOn: result.accelerator, parameters: result.parameters, controllerTimings: result.controllerTimings }, null, 2)}\n`);
        if (options.json) io.out(`${JSON.stringify(result, null, 2)}\n`);
        else io.out(formatCalibration(result, options.write));
        setExit(result.rows.every((row) => row.within) ? 0 : 1);
      });
    });
}

function layoutOf(directory: string): LabLayout {
  return new LabLayout(directory === '' ? (process.env.TOMARANAI_LAB ?? undefined) : directory);
}

function notUp(layout: LabLayout): TomaranaiError {
  return new TomaranaiError('TMR_LAB_NOT_UP', `no lab is up in ${layout.root} (no lab.json)`, 'run `tomaranai lab up blueprints/lab.yaml` as root');
}

function report(io: CliIo, setExit: (code: number) => void, error: TomaranaiError): void {
  io.err(`${error.code}: ${error.message} (${error.hint})\n`);
  setExit(1);
}

async function guard(io: CliIo, setExit: (code: number) => void, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof TomaranaiError) return report(io, setExit, error);
    throw error;
  }
}

/** `tomaranai drill FILE --substrate qemu`: the drill on real VMs. */
export async function runQemuDrillCommand(options: {
  io: CliIo;
  file: string;
  blueprint: Blueprint;
  scenario: string;
  journal: Journal & { onAppend(listener: (entry: JournalEntry) => void): () => void; close?: () => void };
  journalPath: string;
  json: boolean;
  quiet: boolean;
  keepLab: boolean;
  lab: string;
  variant?: string;
  target?: string;
}): Promise<number> {
  const { io } = options;
  if (!(REAL_SCENARIOS as readonly string[]).includes(options.scenario)) {
    io.err(`TMR_DRILL_UNKNOWN_SCENARIO: scenario "${options.scenario}" does not run on real VMs (use one of: ${REAL_SCENARIOS.join(', ')})\n`);
    return 1;
  }
  let run: RealDrillRun;
  try {
    run = await runRealDrill({
      blueprint: options.blueprint,
      blueprintFile: options.file,
      scenario: options.scenario,
      layout: layoutOf(options.lab),
      journal: options.journal,
      keepLab: options.keepLab,
      ...(options.variant === undefined ? {} : { variant: options.variant }),
      ...(options.target === undefined ? {} : { target: options.target }),
      ...(options.quiet ? {} : { onEntry: createLivePrinter({ blueprint: options.blueprint, write: (line) => io.err(`${line}\n`), color: io.color ?? false }) }),
    });
  } catch (error) {
    if (error instanceof TomaranaiError) {
      io.err(`${error.code}: ${error.message} (${error.hint})\n`);
      return 1;
    }
    throw error;
  } finally {
    options.journal.close?.();
  }
  if (options.json) io.out(`${JSON.stringify({ ...run.report, checks: run.checks, ...(run.ransomware === undefined ? {} : { ransomware: run.ransomware }) }, null, 2)}\n`);
  else {
    io.out(`${formatDrillReport(run.report)}\n`);
    io.out(`\nOn the machine: copies per VM at the end ${JSON.stringify(run.checks.finalCopiesPerVm)}, most at any probe ${JSON.stringify(run.checks.maxCopiesPerVm)}\n`);
    io.out(`Acknowledged writes lost ${JSON.stringify(run.checks.ackedWritesLost)}; restarts after the fault ${JSON.stringify(run.checks.restartsPerVm)}\n`);
    const silent = Object.entries(run.checks.noAnswerMs).filter(([, ms]) => ms > 0);
    if (silent.length > 0) io.out(`Guests that kept running but did not answer for a while (not outages): ${silent.map(([vm, ms]) => `${vm} ${(ms / 1000).toFixed(1)} s`).join(', ')}\n`);
    if (run.ransomware !== undefined) io.out(`${formatLabRansomware(run.ransomware)}\n`);
  }
  if (!options.quiet) io.err(`journal: ${options.journalPath} (${run.journal.length} entries)\n`);
  if (run.ransomware !== undefined && !labRansomwareHeld(run.ransomware)) return 1;
  const report = run.report;
  const held = report.invariants.splitBrain === 0 && report.invariants.lostVms === 0 && Object.values(run.checks.finalCopiesPerVm).every((copies) => copies.writable === 1);
  const topTiersMet = report.services.every((service) => service.met || (service.tier !== 'continuous' && service.tier !== 'critical'));
  return held && topTiersMet ? 0 : 1;
}

const seconds = (value: number | null) => (value === null ? 'down' : `${value.toFixed(1)} s`);

export function formatCalibration(result: Calibration, written: string): string {
  const rows = result.rows.map((row) => [
    row.scenario,
    row.service,
    row.tier,
    seconds(row.realRtoS),
    seconds(row.twinShippedRtoS),
    seconds(row.twinCalibratedRtoS),
    row.realRtoS === null || row.twinCalibratedRtoS === null ? '—' : `${row.twinCalibratedRtoS - row.realRtoS >= 0 ? '+' : ''}${(row.twinCalibratedRtoS - row.realRtoS).toFixed(1)} s`,
    row.within ? 'yes' : 'NO',
    seconds(row.realRpoS),
    seconds(row.twinCalibratedRpoS),
  ]);
  const m = result.measured;
  const list = (values: readonly number[]) => (values.length === 0 ? '—' : values.map((value) => (value / 1000).toFixed(2)).join(', '));
  const lines = [
    `Twin vs real VMs on ${result.blueprint} (real: ${result.accelerator}); RTO within ${TOLERANCE.share * 100}% or ${TOLERANCE.seconds} s counts as agreeing`,
    '',
    table(['scenario', 'service', 'tier', 'real RTO', 'twin shipped', 'twin calibrated', 'diff', 'within', 'real RPO', 'twin RPO'], rows),
    '',
    `Measured on the real VMs (s): detection ${list(m.detectionMs)}; power fence ${list(m.powerFenceMs)}; fence to promoted standby answering ${list(m.promoteMs)}; standby ready ${list(m.standbySyncMs)}`,
    `Cold boots (s, with others booting at once): ${m.boots.map((boot) => `${(boot.ms / 1000).toFixed(1)}/${boot.concurrent}`).join(' ')}`,
    `Fitted twin parameters: ${JSON.stringify(result.parameters)}`,
    `Agreeing after calibration: ${result.rows.filter((row) => row.within).length} of ${result.rows.length}${written === '' ? '' : `; parameters written to ${written}`}`,
  ];
  return `${lines.join('\n')}\n`;
}
