/**
 * Twin against reality (`npm run calibrate`): each scenario runs on the lab's real VMs and on the
 * twin, the twin first as shipped and then with the timings measured on the real run fed back
 * into its parameters — boot time and how boots slow each other, power fencing, standby
 * promotion, standby sync — and the measured RTO/RPO are printed side by side, with the
 * remaining difference.
 *
 * Every real scenario starts from a fresh lab, so both substrates start from the controller's own
 * initial placement, and the fault strikes the same host on both (the host of the continuous
 * service's primary; for maintenance, the busiest host without a continuous VM).
 */
import type { ControllerTimings } from '../../control/decide.ts';
import { asEvent, isEvent, type JournalEntry } from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteJournal } from '../../journal/sqlite.ts';
import { buildDrillReport, type DrillReport } from '../../report/drill-report.ts';
import { LabLayout } from '../../substrate/qemu/lab.ts';
import { labDown } from '../../substrate/qemu/power.ts';
import type { Fault, TwinParameters } from '../../substrate/twin/twin.ts';
import { LAB_CONTROLLER_TIMINGS, runRealDrill } from './real.ts';
import { targetHost, type RealScenario } from './scenarios.ts';
import { runDrill } from '../sim/run.ts';
import type { Scenario, ScenarioContext, ScenarioStep } from '../sim/scenarios.ts';

export const CALIBRATION_SCENARIOS: readonly RealScenario[] = ['host-failure', 'host-isolation', 'storage-path-loss', 'migrate'];

/** The twin's RTO is trusted for a scenario when it is within this share or this many seconds of the real one. */
export const TOLERANCE = { share: 0.25, seconds: 2 } as const;

export interface Measured {
  /** Cold boots: launch to the first healthy answer, with how many other guests were booting or running. */
  readonly boots: readonly { readonly vm: string; readonly concurrent: number; readonly ms: number }[];
  readonly powerFenceMs: readonly number[];
  /** A confirmed fence to the promoted standby answering. */
  readonly promoteMs: readonly number[];
  /** A standby's launch to its guest being ready to take over. */
  readonly standbySyncMs: readonly number[];
  /** Fault to the controller's verdict on the host (failed, isolated, storage-lost). */
  readonly detectionMs: readonly number[];
}

export interface CalibrationRow {
  readonly scenario: string;
  readonly service: string;
  readonly tier: string;
  readonly realRtoS: number | null;
  readonly twinShippedRtoS: number | null;
  readonly twinCalibratedRtoS: number | null;
  readonly realRpoS: number | null;
  readonly twinCalibratedRpoS: number | null;
  /** |twin − real| ≤ max(2 s, 25 % of real), after calibration. */
  readonly within: boolean;
}

export interface Calibration {
  readonly blueprint: string;
  readonly accelerator: string;
  readonly measured: Measured;
  readonly parameters: Partial<TwinParameters>;
  readonly controllerTimings: Partial<ControllerTimings>;
  readonly rows: readonly CalibrationRow[];
}

/** The twin's name for what each real scenario does to a host. */
function twinScenario(scenario: RealScenario, pickHost: (context: ScenarioContext) => string): Scenario {
  return {
    name: `lab-${scenario}`,
    summary: `the twin's counterpart of the real ${scenario} drill`,
    plan(context) {
      const host = pickHost(context);
      const steps: ScenarioStep[] = [];
      const fault = (kind: Fault['kind']): Fault => ({ kind, host }) as Fault;
      switch (scenario) {
        case 'host-failure':
          // The lab's power cut is unannounced: the controller learns of it from silence, as from a
          // crash (the twin's power-loss fault lets the power controller report the outlet off).
          steps.push({ afterS: 0, kind: 'inject', fault: fault('host-crash') }, { afterS: 60, kind: 'heal', fault: fault('host-crash') }, { afterS: 61, kind: 'power-on', host });
          break;
        case 'host-isolation':
          // The lab's uplink carries management and VM traffic: on the twin, every network is lost.
          steps.push({ afterS: 0, kind: 'inject', fault: fault('host-network-loss') }, { afterS: 60, kind: 'heal', fault: fault('host-network-loss') }, { afterS: 61, kind: 'power-on', host });
          break;
        case 'storage-path-loss':
          steps.push({ afterS: 0, kind: 'inject', fault: fault('storage-path-loss') }, { afterS: 60, kind: 'heal', fault: fault('storage-path-loss') });
          break;
        case 'migrate':
          steps.push({ afterS: 0, kind: 'evacuate', host }, { afterS: 60, kind: 'release', host });
          break;
        case 'agent-failure':
          throw new Error('the twin has no host agent to kill');
      }
      return { description: `${scenario} on ${host}`, steps };
    },
  };
}

/** The same host the real drill picks (the lab's rule, src/drill/lab/scenarios.ts), from the copies running on the twin at the fault. */
function twinTarget(scenario: RealScenario, blueprint: Blueprint): (context: ScenarioContext) => string {
  return (context) => targetHost(context.faults.copies(), blueprint, scenario);
}

/** What the real runs measured, from their journals. */
export function measure(journals: readonly (readonly JournalEntry[])[]): Measured {
  const boots: { vm: string; concurrent: number; ms: number }[] = [];
  const powerFenceMs: number[] = [];
  const promoteMs: number[] = [];
  const standbySyncMs: number[] = [];
  const detectionMs: number[] = [];
  for (const entries of journals) {
    const booting = new Map<string, { vm: string; atMs: number; concurrent: number; role: string }>();
    // Every guest alive on the machine (booting or running), by copy: they share its cores.
    const alive = new Set<string>();
    const hostOf = new Map<string, string>();
    const fenceIssued = new Map<string, number>();
    let fenceConfirmedAtMs: number | null = null;
    let faultAtMs: number | null = null;
    let faultTarget: string | null = null;
    for (const entry of entries) {
      const event = asEvent(entry);
      switch (event.type) {
        case 'fault.injected':
          faultAtMs = entry.atMs;
          faultTarget = entry.subject;
          break;
        case 'host.status':
          if (entry.subject === faultTarget && faultAtMs !== null && ['failed', 'isolated', 'storage-lost'].includes(event.data.to)) {
            detectionMs.push(entry.atMs - faultAtMs);
            faultAtMs = null;
          }
          break;
        case 'vm.instance': {
          const { data } = event;
          const id = data.instance;
          if (data.state === 'booting') {
            hostOf.set(id, data.host);
            if (!booting.has(id) && !alive.has(id)) booting.set(id, { vm: entry.subject, atMs: entry.atMs, concurrent: alive.size, role: data.role });
            alive.add(id);
          } else if (data.state === 'running') {
            alive.add(id);
            const boot = booting.get(id);
            if (boot === undefined) break;
            if (boot.role === 'primary' && data.healthy === true) {
              boots.push({ vm: boot.vm, concurrent: boot.concurrent, ms: entry.atMs - boot.atMs });
              booting.delete(id);
            } else if (boot.role === 'secondary' && data.synced === true) {
              standbySyncMs.push(entry.atMs - boot.atMs);
              booting.delete(id);
            }
          }
          break;
        }
        case 'vm.removed':
          booting.delete(event.data.instance);
          alive.delete(event.data.instance);
          break;
        case 'fenceHost':
          if (entry.kind === 'action') fenceIssued.set(entry.subject, entry.atMs);
          break;
        case 'fence.completed':
          if (event.data.ok === true && event.data.method === 'power') {
            for (const id of [...alive]) if (hostOf.get(id) === entry.subject) alive.delete(id);
            const issued = fenceIssued.get(entry.subject);
            if (issued !== undefined) powerFenceMs.push(entry.atMs - issued);
            fenceConfirmedAtMs ??= entry.atMs;
          }
          break;
        case 'promoteSecondary':
          if (entry.kind === 'action' && event.data.ok === true && fenceConfirmedAtMs !== null) {
            const confirmedAtMs = fenceConfirmedAtMs;
            const healthy = entries.find((later) => later.atMs >= entry.atMs && isEvent(later, 'vm.instance') && later.subject === entry.subject && later.data.role === 'primary' && later.data.healthy === true);
            if (healthy !== undefined) promoteMs.push(healthy.atMs - confirmedAtMs);
          }
          break;
      }
    }
  }
  return { boots, powerFenceMs, promoteMs, standbySyncMs, detectionMs };
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * The twin's parameters from the measurements: boot time = base × (1 + contention × others
 * booting), fitted by least squares; the rest as medians.
 */
export function fitParameters(measured: Measured, blueprint: Blueprint, heartbeatMs: number): Partial<TwinParameters> {
  // The lab's guests share the machine's cores: a boot is slowed by every other guest alive.
  const parameters: { -readonly [K in keyof TwinParameters]?: TwinParameters[K] } = { heartbeatIntervalMs: heartbeatMs, bootContentionScope: 'substrate' };
  const samples = measured.boots;
  if (samples.length >= 2) {
    const n = samples.length;
    const meanX = samples.reduce((sum, sample) => sum + sample.concurrent, 0) / n;
    const meanY = samples.reduce((sum, sample) => sum + sample.ms, 0) / n;
    const sxx = samples.reduce((sum, sample) => sum + (sample.concurrent - meanX) ** 2, 0);
    const slope = sxx === 0 ? 0 : samples.reduce((sum, sample) => sum + (sample.concurrent - meanX) * (sample.ms - meanY), 0) / sxx;
    const base = Math.max(500, meanY - slope * meanX);
    const declared = median(blueprint.vms.map((vm) => vm.bootTimeS * 1000))!;
    parameters.bootTimeFactor = round3(base / declared);
    parameters.bootContention = round3(Math.max(0, slope / base));
  }
  const fence = median(measured.powerFenceMs);
  if (fence !== null) parameters.powerFenceLatencyMs = Math.round(fence);
  const promote = median(measured.promoteMs);
  // The promoted copy is seen healthy at the next probe: half a probe interval of it is the probe's.
  if (promote !== null) parameters.promoteLatencyMs = Math.max(50, Math.round(promote - heartbeatMs / 2));
  const sync = median(measured.standbySyncMs);
  if (sync !== null) {
    parameters.secondarySyncMinMs = Math.round(sync);
    parameters.secondarySyncMsPerGiB = 0;
  }
  return parameters;
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

export function withinTolerance(real: number | null, twin: number | null): boolean {
  if (real === null || twin === null) return real === twin;
  return Math.abs(twin - real) <= Math.max(TOLERANCE.seconds, TOLERANCE.share * real);
}

export async function calibrate(options: {
  blueprint: Blueprint;
  blueprintFile: string;
  layout?: LabLayout;
  scenarios?: readonly RealScenario[];
  seed?: number;
  /** Where the real runs' journals are kept (SQLite, one per scenario). */
  journalDirectory?: string;
  /** Refit from the journals kept there instead of running the real VMs again. */
  reuse?: boolean;
  onProgress?: (line: string) => void;
}): Promise<Calibration> {
  const layout = options.layout ?? new LabLayout();
  const scenarios = options.scenarios ?? CALIBRATION_SCENARIOS;
  const progress = options.onProgress ?? (() => undefined);
  const directory = options.journalDirectory ?? 'out/calibrate';
  mkdirSync(directory, { recursive: true });
  const real = new Map<RealScenario, DrillReport>();
  const journals: JournalEntry[][] = [];
  let accelerator = 'tcg';
  for (const scenario of scenarios) {
    const file = join(directory, `real-${scenario}.db`);
    if (options.reuse === true && existsSync(file)) {
      progress(`real VMs: ${scenario} from ${file} (recorded)`);
      const journal = new SqliteJournal(file);
      const entries = [...journal.entries()];
      journal.close();
      const started = entries.find((entry) => isEvent(entry, 'drill.started'));
      const invariants = entries.find((entry) => isEvent(entry, 'drill.ended'));
      accelerator = `qemu (${String(started?.data.accelerator ?? 'tcg')})`;
      real.set(
        scenario,
        buildDrillReport({ blueprint: options.blueprint, entries, scenario, description: '', seed: 0, substrate: accelerator, invariants: { splitBrain: Number(invariants?.data.splitBrain ?? 0), lostVms: 0, immutableViolations: 0 } }),
      );
      journals.push(entries);
      continue;
    }
    progress(`real VMs: ${scenario} (a fresh lab)…`);
    await labDown({ layout });
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    const journal = new SqliteJournal(file);
    try {
      const run = await runRealDrill({ blueprint: options.blueprint, blueprintFile: options.blueprintFile, scenario, layout, keepLab: false, journal });
      real.set(scenario, run.report);
      journals.push([...run.journal.entries()]);
      accelerator = run.report.substrate;
    } finally {
      journal.close();
    }
  }
  if (options.reuse !== true) await labDown({ layout });
  const measured = measure(journals);
  const parameters = fitParameters(measured, options.blueprint, 250);
  const controllerTimings = LAB_CONTROLLER_TIMINGS;
  const rows: CalibrationRow[] = [];
  for (const scenario of scenarios) {
    progress(`twin: ${scenario}, as shipped and calibrated…`);
    const twinOf = (twinParameters: Partial<TwinParameters>) =>
      runDrill({
        blueprint: options.blueprint,
        scenario: twinScenario(scenario, twinTarget(scenario, options.blueprint)),
        seed: options.seed ?? 1,
        twinParameters,
        controllerTimings,
        horizonAfterFaultS: 3_600,
      }).report;
    const shipped = twinOf({});
    const calibrated = twinOf(parameters);
    const realReport = real.get(scenario)!;
    for (const service of options.blueprint.services) {
      const r = realReport.services.find((candidate) => candidate.name === service.name)!;
      const before = shipped.services.find((candidate) => candidate.name === service.name)!;
      const after = calibrated.services.find((candidate) => candidate.name === service.name)!;
      rows.push({
        scenario,
        service: service.name,
        tier: service.tier,
        realRtoS: r.rtoMeasuredS,
        twinShippedRtoS: before.rtoMeasuredS,
        twinCalibratedRtoS: after.rtoMeasuredS,
        realRpoS: r.rpoMeasuredS,
        twinCalibratedRpoS: after.rpoMeasuredS,
        within: withinTolerance(r.rtoMeasuredS, after.rtoMeasuredS),
      });
    }
  }
  return { blueprint: options.blueprint.name, accelerator, measured, parameters, controllerTimings, rows };
}

