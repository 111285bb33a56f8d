/**
 * `tomaranai demand FILE --scenario S`: a clinical demand scenario on the twin, run twice — without
 * and with the rebalancer — and compared side by side by CPU ready time per tier. Exit status 0 when
 * no continuous or critical VM waited 2 % of its time or more.
 */
import { Option, type Command } from 'commander';
import { DEMAND_SCENARIOS, runDemandScenario, type DemandRun, type DemandScenarioName } from '../drill/sim/demand.ts';
import type { Blueprint } from '../model/index.ts';
import { parseSeed } from './arguments.ts';
import { table } from './format.ts';
import type { CliIo } from './io.ts';

interface DemandCommandOptions {
  scenario: DemandScenarioName;
  placement: 'balanced' | 'fewest-hosts';
  seed: number;
  json?: boolean;
}

export function registerDemandCommand(program: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  program
    .command('demand')
    .description('clinical demand on the twin: CPU ready time per VM, without and with the rebalancer, side by side')
    .argument('<file>', 'blueprint YAML')
    .addOption(new Option('--scenario <name>', 'the demand').choices([...DEMAND_SCENARIOS]).makeOptionMandatory())
    .addOption(new Option('--placement <objective>', 'initial placement: spread for headroom, or consolidated on the fewest hosts').choices(['balanced', 'fewest-hosts']).default('balanced'))
    .option('--seed <n>', 'seed of the simulated run', parseSeed, 1)
    .option('--json', 'print both runs as one JSON document')
    .action((file: string, options: DemandCommandOptions) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) {
        setExitCode(1);
        return;
      }
      const runs = [false, true].map((rebalance) => runDemandScenario({ blueprint, scenario: options.scenario, seed: options.seed, rebalance, placement: options.placement }));
      const [without, withRebalancer] = runs as [DemandRun, DemandRun];
      if (options.json) {
        io.out(`${JSON.stringify({ scenario: options.scenario, placement: options.placement, seed: options.seed, withoutRebalancer: without, withRebalancer }, null, 2)}\n`);
      } else {
        io.out(formatDemandComparison(blueprint, options, without, withRebalancer));
      }
      const worstTop = Math.max(...runs.flatMap((run) => run.vms.filter((vm) => vm.tier === 'continuous' || vm.tier === 'critical').map((vm) => vm.maxReadyPercent)));
      setExitCode(worstTop < 2 ? 0 : 1);
    });
}

/** The two runs side by side: CPU ready per tier, the busiest host, the worst top-tier VM. */
function formatDemandComparison(blueprint: Blueprint, options: DemandCommandOptions, without: DemandRun, withRebalancer: DemandRun): string {
  let text = `Demand ${options.scenario} on ${blueprint.name} (${options.placement} placement, seed ${options.seed}): ${without.description}\n`;
  text += `CPU ready time, sampled every minute over ${without.samples} minutes; target for continuous and critical VMs: under 2 %\n\n`;
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
  text += `${table(['tier', 'max ready (off)', 'mean (off)', 'VM-min > 2 % (off)', 'max ready (on)', 'mean (on)', 'VM-min > 2 % (on)'], rows)}\n\n`;
  const hostMax = (run: DemandRun) => Math.max(...run.hosts.map((host) => host.maxUtilisationPercent));
  text += `busiest host CPU demand: ${hostMax(without).toFixed(1)} % without the rebalancer, ${hostMax(withRebalancer).toFixed(1)} % with it (${withRebalancer.migrations} live migrations, ${withRebalancer.shareChanges} share changes)\n`;
  const worst = (run: DemandRun) =>
    run.vms.filter((vm) => vm.tier === 'continuous' || vm.tier === 'critical').sort((a, b) => b.maxReadyPercent - a.maxReadyPercent)[0];
  const w0 = worst(without);
  const w1 = worst(withRebalancer);
  if (w0 && w1) text += `worst continuous/critical VM: ${w0.vm} (${w0.role}) ${w0.maxReadyPercent} % without, ${w1.vm} (${w1.role}) ${w1.maxReadyPercent} % with\n`;
  return text;
}
