/**
 * Scoring the ransomware variants (issue 15): each drill's journal holds the attack's ground truth
 * (`attack.variant`: the first malicious write) beside what the controller did (`security.alert`,
 * the `restoreSnapshot` it chose first), so a run scores itself — detected, delay from the first
 * malicious write, and whether the restore point it chose lies before that write. A sweep runs one
 * variant over many seeds; the benign week runs the same hospital with no attacker for days and
 * counts the alerts (every one is false).
 */
import type { Blueprint } from '../../model/index.ts';
import type { JournalEntry } from '../../ports/index.ts';
import { runDrill } from './run.ts';
import type { Scenario } from './scenario.ts';
import type { AttackVariant } from './variants.ts';

export interface VariantRunScore {
  readonly seed: number;
  readonly variant: AttackVariant;
  readonly vm: string;
  readonly firstMaliciousWriteMs: number | null;
  readonly detected: boolean;
  /** Alert − first malicious write, seconds (negative: alerted before any write, e.g. on exfiltration). */
  readonly delayS: number | null;
  readonly rule: string | null;
  /** The restore point the controller chose first from the alert, and whether it predates the first malicious write. */
  readonly restorePointMs: number | null;
  readonly restoreBeforeFirstWrite: boolean | null;
  /** Alerts on VMs the attacker never touched (false alerts during the drill). */
  readonly falseAlerts: number;
  readonly filesTouched: number | null;
}

/** Scores one drill from its journal. */
export function scoreRansomwareRun(entries: readonly JournalEntry[], seed: number, variant: AttackVariant): VariantRunScore {
  const truth = entries.find((entry) => entry.type === 'attack.variant');
  const vm = truth?.subject ?? entries.find((entry) => entry.type === 'attack.intrusion')?.subject ?? '';
  const firstWrite = truth === undefined ? null : Number(truth.data.firstMaliciousWriteMs);
  const attacked = new Set(entries.filter((entry) => entry.type === 'attack.intrusion' || entry.type === 'attack.foothold').map((entry) => entry.subject));
  const alerts = entries.filter((entry) => entry.type === 'security.alert');
  const alert = alerts.find((entry) => entry.subject === vm);
  const restore = entries.find((entry) => entry.kind === 'action' && entry.type === 'restoreSnapshot' && entry.subject === vm);
  const restorePointMs = restore === undefined ? null : Number(restore.data.restorePointMs);
  const trueRecord = entries.find((entry) => entry.type === 'security.truth' && entry.subject === vm);
  return {
    seed,
    variant,
    vm,
    firstMaliciousWriteMs: firstWrite,
    detected: alert !== undefined,
    delayS: alert === undefined || firstWrite === null ? null : (alert.atMs - firstWrite) / 1000,
    rule: alert === undefined ? null : String(alert.data.rule ?? 'entropy'),
    restorePointMs,
    restoreBeforeFirstWrite: restorePointMs === null || firstWrite === null ? null : restorePointMs < firstWrite,
    falseAlerts: alerts.filter((entry) => !attacked.has(entry.subject)).length,
    filesTouched: trueRecord === undefined ? null : Number(trueRecord.data.filesTouched ?? 0),
  };
}

/** Runs the `ransomware` drill of one variant over the seeds. */
export function sweepVariant(blueprint: Blueprint, variant: AttackVariant, seeds: readonly number[], onRun?: (score: VariantRunScore) => void): VariantRunScore[] {
  return seeds.map((seed) => {
    const run = runDrill({ blueprint, scenario: 'ransomware', seed, variant });
    const score = scoreRansomwareRun(run.journal.entries(), seed, variant);
    onRun?.(score);
    return score;
  });
}

export interface VariantSummary {
  readonly variant: AttackVariant;
  readonly runs: number;
  readonly detected: number;
  readonly medianDelayS: number | null;
  readonly p90DelayS: number | null;
  readonly maxDelayS: number | null;
  /** Detected runs whose first chosen restore point predates the first malicious write. */
  readonly restoreBefore: number;
  readonly falseAlerts: number;
  /** Seeds not detected, or restored from after the first write: to replay. */
  readonly failures: readonly number[];
}

function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export function summarizeVariant(variant: AttackVariant, scores: readonly VariantRunScore[]): VariantSummary {
  const delays = scores.filter((score) => score.detected && score.delayS !== null).map((score) => score.delayS!).sort((a, b) => a - b);
  const median = delays.length === 0 ? null : delays.length % 2 === 1 ? delays[(delays.length - 1) / 2]! : (delays[delays.length / 2 - 1]! + delays[delays.length / 2]!) / 2;
  return {
    variant,
    runs: scores.length,
    detected: scores.filter((score) => score.detected).length,
    medianDelayS: median,
    p90DelayS: quantile(delays, 0.9),
    maxDelayS: delays.at(-1) ?? null,
    restoreBefore: scores.filter((score) => score.detected && score.restoreBeforeFirstWrite === true).length,
    falseAlerts: scores.reduce((sum, score) => sum + score.falseAlerts, 0),
    failures: scores.filter((score) => !score.detected || score.restoreBeforeFirstWrite !== true).map((score) => score.seed),
  };
}

export interface BenignWeek {
  readonly seed: number;
  readonly days: number;
  readonly vms: number;
  readonly vmDays: number;
  readonly alerts: number;
  readonly alertsPer100VmDays: number;
  /** Per-metric anomalies journaled below the alert (after rate limiting). */
  readonly anomalyEntries: number;
  readonly alertDetails: readonly { readonly vm: string; readonly atS: number; readonly rule: string }[];
}

/** The hospital with the security loop on and no attacker for `days`: every alert is a false one. */
export function benignWeek(blueprint: Blueprint, seed: number, days = 7): BenignWeek {
  const quiet: Scenario = {
    name: 'benign-week',
    summary: `${days} days of legitimate activity (backups, batch jobs, database maintenance, updates, log rotation, clean-ups) and no attacker`,
    security: true,
    plan: () => ({ description: `${days} days with no attacker`, steps: [{ afterS: days * 86_400, kind: 'attack', label: 'end of the quiet days', run: () => undefined }] }),
  };
  const run = runDrill({ blueprint, scenario: quiet, seed, horizonAfterFaultS: days * 86_400 + 3_600 });
  const entries = run.journal.entries();
  const policy = entries.find((entry) => entry.type === 'applyNetworkPolicy');
  const startMs = policy?.atMs ?? entries[0]?.atMs ?? 0;
  const endMs = entries.at(-1)?.atMs ?? startMs;
  const vmDays = (blueprint.vms.length * (endMs - startMs)) / 86_400_000;
  const alerts = entries.filter((entry) => entry.type === 'security.alert');
  return {
    seed,
    days,
    vms: blueprint.vms.length,
    vmDays,
    alerts: alerts.length,
    alertsPer100VmDays: vmDays === 0 ? 0 : (100 * alerts.length) / vmDays,
    anomalyEntries: entries.filter((entry) => entry.type === 'security.anomaly').length,
    alertDetails: alerts.map((entry) => ({ vm: entry.subject, atS: Math.round(entry.atMs / 1000), rule: String(entry.data.rule ?? 'entropy') })),
  };
}

const fmtS = (value: number | null) => (value === null ? '-' : `${Math.round(value)} s`);

/** The sweep as a table (Markdown, so it can go into docs as printed). */
export function formatSweep(summaries: readonly VariantSummary[]): string {
  const lines = ['| variant | detected | median delay | p90 | max | restore point before the first malicious write | false alerts (other VMs) |', '|---|---|---|---|---|---|---|'];
  for (const summary of summaries) {
    lines.push(`| ${summary.variant} | ${summary.detected}/${summary.runs} | ${fmtS(summary.medianDelayS)} | ${fmtS(summary.p90DelayS)} | ${fmtS(summary.maxDelayS)} | ${summary.restoreBefore}/${summary.detected} | ${summary.falseAlerts} |`);
  }
  return lines.join('\n');
}

export function formatBenign(week: BenignWeek): string {
  return `benign ${week.days} days, seed ${week.seed}: ${week.alerts} false alert(s) over ${week.vmDays.toFixed(0)} VM-days = ${week.alertsPer100VmDays.toFixed(2)} per 100 VM-days (target ≤ 1); ${week.anomalyEntries} per-metric anomalies journaled below the alert${week.alertDetails.length > 0 ? `; alerts: ${week.alertDetails.map((alert) => `${alert.vm}@${alert.atS}s(${alert.rule})`).join(', ')}` : ''}`;
}
