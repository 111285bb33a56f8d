/**
 * `tomaranai drill FILE --scenario ransomware --variant V|all --seeds A-B [--benign-days N]`: the
 * ransomware variants over many seeds, scored from each drill's journal against its ground truth,
 * printed as a table, and the same hospital with no attacker for N days with its false alerts.
 * Exit status 0 when every target of issue 15 holds: detected in ≥ 95 % of runs, median delay ≤ 5
 * min from the first malicious write, the chosen restore point before that write in every detected
 * run, and (with --benign-days) ≤ 1 false alert per 100 VM-days.
 */
import type { Blueprint } from '../model/index.ts';
import { benignWeek, formatBenign, formatSweep, summarizeVariant, sweepVariant, type VariantSummary } from '../drill/sim/ransomware-sweep.ts';
import { ATTACK_VARIANTS, type AttackVariant } from '../drill/sim/variants.ts';
import type { CliIo } from './io.ts';

export interface SweepCommand {
  readonly io: CliIo;
  readonly file: string;
  readonly blueprint: Blueprint;
  readonly variant: AttackVariant | 'all';
  readonly seeds: readonly number[];
  readonly benignDays: number | null;
  readonly quiet: boolean;
}

function meets(summary: VariantSummary): boolean {
  return summary.detected >= 0.95 * summary.runs && summary.medianDelayS !== null && summary.medianDelayS <= 300 && summary.restoreBefore === summary.detected;
}

/** Runs the sweep; returns the exit status. */
export function runRansomwareSweep(command: SweepCommand): number {
  const { io, blueprint, seeds } = command;
  const variants = command.variant === 'all' ? ATTACK_VARIANTS.filter((variant) => variant !== 'full') : [command.variant];
  const summaries: VariantSummary[] = [];
  for (const variant of variants) {
    const startedAt = performance.now();
    const scores = sweepVariant(blueprint, variant, seeds);
    const summary = summarizeVariant(variant, scores);
    summaries.push(summary);
    if (!command.quiet) io.err(`${variant}: ${seeds.length} drills in ${((performance.now() - startedAt) / 1000).toFixed(0)} s${summary.failures.length > 0 ? `; to replay: ${summary.failures.map((seed) => `--variant ${variant} --seed ${seed}`).join(', ')}` : ''}\n`);
  }
  io.out(`ransomware variants on ${blueprint.name}, seeds ${seeds[0]}-${seeds.at(-1)} (delay: alert − first malicious write)\n\n${formatSweep(summaries)}\n`);
  let ok = summaries.every(meets);
  if (command.benignDays !== null) {
    const week = benignWeek(blueprint, seeds[0]!, command.benignDays);
    io.out(`\n${formatBenign(week)}\n`);
    ok &&= week.alertsPer100VmDays <= 1;
  }
  io.out(`\nreplay one: npx tomaranai drill ${command.file} --scenario ransomware --variant ${variants[0]} --seed ${seeds[0]}\n`);
  return ok ? 0 : 1;
}
