/**
 * The `tomaranai` command line. It is the edge: it reads files and the environment, parses flags
 * with commander, and hands typed values to the core. Each command group registers itself from its
 * own module (blueprint, drills, demand, security, service, plan, lab, report); this one builds the
 * program, runs it and turns its outcome into an exit status.
 */
import { Command, CommanderError } from 'commander';

import { blueprintOrReport, registerBlueprintCommands } from './blueprint.ts';
import { registerDemandCommand } from './demand.ts';
import { registerDemoCommand, registerDrillCommand } from './drill.ts';
import { registerStormCommand } from './storm.ts';
import type { CliIo } from './io.ts';
import { registerLabCommands } from './lab.ts';
import { registerAgentCommands } from './agent.ts';
import { registerPlanCommands } from './plan.ts';
import { registerReportCommands } from './report.ts';
import { registerSecurityCommands } from './security.ts';
import { registerServiceCommands } from './service.ts';
import { TomaranaiError } from '../errors/index.ts';
import { registerNotifyCommands } from './notify.ts';
import { registerVsphereCommands } from './vsphere.ts';

export type { CliIo } from './io.ts';
export { readBlueprintFile } from './blueprint.ts';
export { REFERENCE_BLUEPRINT } from './drill.ts';

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  color: process.stderr.isTTY === true && process.env.NO_COLOR === undefined,
};

export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode = 0;
  const setExitCode = (code: number) => {
    exitCode = code;
  };
  const loadBlueprintOrReport = (file: string) => blueprintOrReport(file, io);
  const program = new Command('tomaranai')
    .description('SLA-driven continuity control plane for hospital systems on virtual machines')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  // In this order `tomaranai --help` lists them.
  registerBlueprintCommands(program, io, setExitCode);
  registerDrillCommand(program, io, loadBlueprintOrReport, setExitCode);
  registerSecurityCommands(program, io, loadBlueprintOrReport, setExitCode);
  registerServiceCommands(program, io, setExitCode);
  registerPlanCommands(program, io, loadBlueprintOrReport, setExitCode);
  registerLabCommands(program, io, loadBlueprintOrReport, setExitCode);
  registerAgentCommands(program, io, setExitCode);
  registerReportCommands(program, io, setExitCode);
  registerDemandCommand(program, io, loadBlueprintOrReport, setExitCode);
  registerStormCommand(program, io, loadBlueprintOrReport, setExitCode);
  registerDemoCommand(program, io, loadBlueprintOrReport, setExitCode);
  registerNotifyCommands(program, io, setExitCode);
  registerVsphereCommands(program, io, loadBlueprintOrReport, setExitCode);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof TomaranaiError) {
      io.err(`${error.code}: ${error.message} (${error.hint})\n`);
      return 1;
    }
    throw error;
  }
  return exitCode;
}
