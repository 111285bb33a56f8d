/**
 * Drills on real VMs (`tomaranai drill FILE --substrate qemu`): the lab's hosts and QEMU guests,
 * the unchanged controller on real time, a real fault (a power cut through the power controller,
 * a cut uplink, a lost storage path, a killed agent, a maintenance evacuation) struck through the
 * lab's FaultInjector (faults.ts) from the plans of scenarios.ts, and the same report as on the
 * twin.
 *
 * The measured values come from probes of the real guests, independent of the controller
 * (probes.ts). Outages, acknowledged writes lost (the newest sequence number a probe saw
 * acknowledged, minus the one the restarted copy resumed after, read from its console) and copy
 * counts are journaled as `probe.*` entries, and the report takes RTO and RPO from them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Controller } from '../../control/controller.ts';
import type { ControllerTimings } from '../../control/decide.ts';
import { isEvent, type Clock, type Journal, type JournalEntry } from '../../ports/index.ts';
import { MemoryJournal } from '../../journal/memory.ts';
import type { Blueprint } from '../../model/index.ts';
import { buildDrillReport, type DrillReport } from '../../report/drill-report.ts';
import { compileSegmentation } from '../../model/segmentation.ts';
import { RealClock } from '../../runtime/real-clock.ts';
import { LabLayout, type LabManifest, readManifest, readToken, writeAtomic } from '../../substrate/qemu/lab.ts';
import { fetchAgentState, labDown, labUp, PowerController } from '../../substrate/qemu/power.ts';
import { QemuSubstrate } from '../../substrate/qemu/substrate.ts';
import { readDiskRecords } from '../../substrate/qemu/vm.ts';
import { LabFaultInjector } from './faults.ts';
import { delay, type DrillRecorder, fetchText, LabProbes, parseSeq, type VmProbe, writesNotOnDisk } from './probes.ts';
import { type LabPlan, type LabStep, REAL_SCENARIO_SUMMARIES, REAL_SCENARIOS, realDrillPlan, type RealScenario, targetHost } from './scenarios.ts';
import { TomaranaiError } from '../../errors/index.ts';

export { agentPid } from './faults.ts';
export { REAL_SCENARIO_SUMMARIES, REAL_SCENARIOS, type RealScenario, targetHost } from './scenarios.ts';

/** The controller's timings on the lab: real heartbeats every 250 ms, so detection can be short. */
export const LAB_CONTROLLER_TIMINGS: Partial<ControllerTimings> = Object.freeze({
  detectionTimeoutMs: 1_500,
  fenceTimeoutMs: 12_000,
  stopTimeoutMs: 10_000,
  promoteTimeoutMs: 5_000,
  startTimeoutExtraMs: 30_000,
  dependencyWaitMaxMs: 20_000,
  unhealthyGraceMs: 20_000,
  isolationResponseMs: 500,
  passBatchMs: 20,
});

/**
 * The drill's waits and the controller's patience on this machine, from one guest's boot time
 * measured at `lab up` (2.2-3.5 s alone on an idle 2-core machine under TCG). A guest booting
 * beside six running ones, on a machine with other work, takes 10-25 times that; a start that
 * gives up too early is retried and slows every other boot further. Never shorter than the
 * constants that held on the machine where the lab was written.
 */
export function labWaits(bootMs: number | null | undefined): { warmUpMs: number; recoveryMs: number; timings: Partial<ControllerTimings> } {
  const boot = bootMs ?? 3_000;
  return {
    warmUpMs: Math.max(180_000, 60 * boot),
    recoveryMs: Math.max(120_000, 40 * boot),
    timings: { startTimeoutExtraMs: Math.max(30_000, 25 * boot), unhealthyGraceMs: Math.max(20_000, 8 * boot) },
  };
}

export interface RealDrillOptions {
  readonly blueprint: Blueprint;
  readonly blueprintFile: string;
  readonly scenario: string;
  readonly layout?: LabLayout;
  readonly journal?: Journal & { onAppend?: (listener: (entry: JournalEntry) => void) => () => void };
  readonly onEntry?: (entry: JournalEntry) => void;
  /** Leave the lab up after the drill (when the drill brought it up itself). */
  readonly keepLab?: boolean;
  readonly timings?: Partial<ControllerTimings>;
}

export interface RealDrillRun {
  readonly report: DrillReport;
  readonly journal: Journal;
  readonly checks: RealDrillChecks;
  readonly target: string;
}

/** What the drill checked on the machine itself, beyond the report. */
export interface RealDrillChecks {
  /**
   * The most QEMU processes of one VM at any count (every 250 ms): `writable` ones hold its disk
   * (1 is right; 2 would be split brain), `standby` ones do not (a continuous VM's hot standby).
   */
  readonly maxCopiesPerVm: Readonly<Record<string, { writable: number; standby: number }>>;
  /** At the end: QEMU processes per VM, and whether its address answered with its name. */
  readonly finalCopiesPerVm: Readonly<Record<string, { writable: number; standby: number }>>;
  readonly finalAnswers: Readonly<Record<string, boolean>>;
  /** startVm/promoteSecondary actions per VM after the fault (a VM restarted twice shows 2). */
  readonly restartsPerVm: Readonly<Record<string, number>>;
  readonly ackedWritesLost: Readonly<Record<string, number | null>>;
  /** Each VM's newest durable write at the end, and the newest a probe saw before the fault: the workload goes on. */
  readonly finalSeq: Readonly<Record<string, number>>;
  readonly seqAtFault: Readonly<Record<string, number>>;
  /** Where each VM's primary ran when the fault struck: a VM on a host the fault did not touch must not be restarted. */
  readonly primaryHostBefore: Readonly<Record<string, string>>;
  readonly outageMs: Readonly<Record<string, number | null>>;
  /** The longest time each VM's guest kept running but did not answer a probe (not an outage). */
  readonly noAnswerMs: Readonly<Record<string, number>>;
}

export async function runRealDrill(options: RealDrillOptions): Promise<RealDrillRun> {
  if (!(REAL_SCENARIOS as readonly string[]).includes(options.scenario)) {
    throw new TomaranaiError('TMR_DRILL_UNKNOWN_SCENARIO', `scenario "${options.scenario}" does not run on real VMs`, `use one of: ${REAL_SCENARIOS.join(', ')}`);
  }
  const scenario = options.scenario as RealScenario;
  const layout = options.layout ?? new LabLayout();
  const existing = await readManifest(layout);
  const broughtUp = existing === null || existing.blueprintName !== options.blueprint.name;
  if (existing !== null && existing.blueprintName !== options.blueprint.name) {
    throw new TomaranaiError('TMR_LAB_OTHER_BLUEPRINT', `a lab for ${existing.blueprintName} is up in ${layout.root}`, 'run `tomaranai lab down` first');
  }
  const manifest = await labUp({ layout, blueprint: options.blueprint, blueprintFile: options.blueprintFile });
  try {
    return await drill(options, scenario, layout, manifest);
  } finally {
    if (broughtUp && options.keepLab !== true) await labDown({ layout });
  }
}

/** One real drill under way: the lab, the controller on it, and what strikes and watches it. */
interface LabDrill {
  readonly options: RealDrillOptions;
  readonly scenario: RealScenario;
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly clock: Clock;
  readonly journal: Journal;
  readonly record: DrillRecorder;
  readonly substrate: QemuSubstrate;
  readonly epoch: number;
  readonly controller: Controller;
  readonly faults: LabFaultInjector;
  readonly probes: LabProbes;
}

/** The fault as struck: where, when, and what the probes had seen just before. */
interface StruckFault {
  readonly target: string;
  readonly description: string;
  readonly plan: LabPlan;
  readonly atMs: number;
  readonly seqAtFault: Readonly<Record<string, number>>;
  /** Each VM's primary before the fault: a VM whose primary ran on lost nothing. */
  readonly primariesBefore: ReadonlyMap<string, string>;
  /** Where each VM's primary ran when the fault struck. */
  readonly primaryHostBefore: Readonly<Record<string, string>>;
}

async function drill(options: RealDrillOptions, scenario: RealScenario, layout: LabLayout, manifest: LabManifest): Promise<RealDrillRun> {
  const clock = new RealClock();
  const journal = options.journal ?? new MemoryJournal();
  const detach = options.onEntry && journal.onAppend ? journal.onAppend(options.onEntry) : null;
  const record: DrillRecorder = (kind, type, subject, data) => journal.append({ atMs: clock.nowMs(), kind, type, subject, actor: 'drill', data });
  const token = await readToken(layout);
  const substrate = new QemuSubstrate({ layout, manifest, blueprint: options.blueprint, token, clock });
  await substrate.open();
  const epochFile = join(layout.controlDirectory, 'controller-epoch');
  const epoch = (Number((await readFile(epochFile, 'utf8').catch(() => '0')).trim()) || 0) + 1;
  await writeAtomic(epochFile, String(epoch));
  const waits = labWaits(manifest.bootMs);
  const controller = new Controller({ blueprint: options.blueprint, substrate, clock, journal, epoch, timings: { ...LAB_CONTROLLER_TIMINGS, ...waits.timings, ...options.timings } });
  const faults = new LabFaultInjector({ layout, manifest, power: new PowerController(layout, manifest), controller });
  const probes = new LabProbes({ layout, manifest, controller, clock, record });
  const lab: LabDrill = { options, scenario, layout, manifest, clock, journal, record, substrate, epoch, controller, faults, probes };
  try {
    await warmUp(lab);
    await probes.start();
    await delay(2_000);
    const fault = await strike(lab);
    await recoverAndRepair(lab, fault);
    await delay(2_000);
    await probes.stop();
    return await conclude(lab, fault);
  } finally {
    probes.halt();
    detach?.();
    controller.stop();
    substrate.close();
  }
}

/** Segmentation enforced before anything boots, the controller started, every VM up and answering. */
async function warmUp({ options, scenario, layout, manifest, record, substrate, epoch, controller }: LabDrill): Promise<void> {
  record('drill', 'drill.started', scenario, { blueprint: options.blueprint.name, substrate: 'qemu', accelerator: manifest.accelerator, epoch, ...(manifest.bootMs ? { bootMs: manifest.bootMs } : {}) });
  // Micro-segmentation from the blueprint's flows, enforced by every host's agent (nftables),
  // before anything boots.
  const policy = await substrate.applyNetworkPolicy({ token: { epoch }, policy: compileSegmentation(options.blueprint) });
  record('drill', 'policy.applied', options.blueprint.name, { ok: policy.ok, ...(policy.ok ? { detail: policy.detail } : { refused: policy.reason }) });
  await controller.start();
  // Warm-up: every VM runs and answers; every continuous VM has a booted standby.
  const warmStarted = Date.now();
  while (!(await warm(controller, manifest))) {
    const limitMs = labWaits(manifest.bootMs).warmUpMs;
    if (Date.now() - warmStarted > limitMs) {
      throw new TomaranaiError('TMR_DRILL_WARMUP', `the lab did not come up within ${limitMs / 1000} s (one guest booted alone in ${manifest.bootMs ?? '?'} ms at lab up)`, `see the agents' logs under ${layout.root}/hosts/*/agent.log`);
    }
    await delay(250);
  }
  record('drill', 'drill.warm', scenario, { vms: manifest.vms.length, afterMs: Date.now() - warmStarted });
}

/** The fault, on the host the lab's rule picks (the first continuous service's primary host, for failures). */
async function strike(lab: LabDrill): Promise<StruckFault> {
  const { options, scenario, clock, controller, faults, probes, record } = lab;
  const target = targetHost(faults.copies(), options.blueprint, scenario);
  const description = `${REAL_SCENARIO_SUMMARIES[scenario]} (${target})`;
  const plan = realDrillPlan(scenario, { blueprint: options.blueprint, faults, host: target });
  const primaries = [...controller.state.instances.values()].filter((instance) => instance.role === 'primary');
  const primariesBefore = new Map(primaries.map((instance) => [instance.vm, instance.id]));
  const primaryHostBefore = Object.fromEntries(primaries.map((instance) => [instance.vm, instance.host]));
  record('drill', 'scenario.planned', scenario, { description, steps: plan.strike.length });
  // Journaled at the moment it begins: the power cut, the link cut, the kill follow at once.
  const seqAtFault = Object.fromEntries([...probes.vms].map(([vm, state]) => [vm, state.lastAckedSeq]));
  const atMs = clock.nowMs();
  probes.faultAtMs = atMs;
  for (const step of plan.strike) {
    record('fault', 'fault.injected', target, { kind: 'fault' in step ? step.fault.kind : 'maintenance', target });
    await applyStep(lab, step);
  }
  return { target, description, plan, atMs, seqAtFault, primariesBefore, primaryHostBefore };
}

/** Waits for the controller to deal with the fault, repairs it, and waits for the lab to settle. */
async function recoverAndRepair(lab: LabDrill, fault: StruckFault): Promise<void> {
  const { scenario, controller, probes, record } = lab;
  // Recovery: every VM answers again and the controller has nothing in flight.
  const recoveryStarted = Date.now();
  const { recoveryMs } = labWaits(lab.manifest.bootMs);
  while (!recovered(controller, probes, scenario, fault.target)) {
    if (Date.now() - recoveryStarted > recoveryMs) break;
    await delay(100);
  }
  await delay(1_000);
  // The repair.
  for (const step of fault.plan.repair) {
    await applyStep(lab, step);
    if (step.kind === 'heal') record('fault', 'fault.repaired', fault.target, { kind: step.fault.kind, target: fault.target });
  }
  // A fenced host comes back only when an operator powers it on (after the repair); maintenance fences nothing.
  const maintenance = fault.plan.strike.some((step) => step.kind === 'evacuate');
  if (!maintenance && controller.state.hostStatus.get(fault.target) === 'fenced') controller.powerOnHost(fault.target, 'operator');
  const repairStarted = Date.now();
  while (!settled(controller, probes)) {
    if (Date.now() - repairStarted > recoveryMs) break;
    await delay(250);
  }
}

/** A step of the plan: faults through the lab's injector, maintenance through the controller. */
async function applyStep({ faults, controller }: LabDrill, step: LabStep): Promise<void> {
  switch (step.kind) {
    case 'inject':
      return faults.inject(step.fault);
    case 'heal':
      return faults.heal(step.fault);
    case 'evacuate':
      controller.evacuateHost(step.host, 'drill');
      return;
    case 'release':
      controller.releaseHost(step.host, 'drill');
      return;
  }
}

/** Checks on the machine, the acknowledged writes lost, the restarts, and the report. */
async function conclude(lab: LabDrill, fault: StruckFault): Promise<RealDrillRun> {
  const { options, scenario, layout, manifest, journal, record, probes } = lab;
  // Checks on the machine: copies per VM, every address answering with its own name.
  const finalCopiesPerVm: Record<string, { writable: number; standby: number }> = {};
  const finalAnswers: Record<string, boolean> = {};
  const finalSeq: Record<string, number> = {};
  for (const vm of manifest.vms) {
    const copies = await QemuSubstrate.copiesOf(vm.name, layout.disk(vm.datastore, vm.name));
    finalCopiesPerVm[vm.name] = { writable: copies.writable, standby: copies.standby };
    finalAnswers[vm.name] = (await fetchText(`http://${vm.address}/vm`)) === vm.name;
    finalSeq[vm.name] = parseSeq(await fetchText(`http://${vm.address}/seq`))?.seq ?? Number.NaN;
  }
  record('drill', 'drill.check', 'copies', { finalCopiesPerVm, finalAnswers, finalSeq });
  const { ackedWritesLost, outageMs, noAnswerMs } = await measureLosses(lab, fault);
  const restartsPerVm: Record<string, number> = {};
  for (const entry of journal.entries()) {
    if (entry.atMs < fault.atMs || entry.kind !== 'action' || entry.data.ok !== true) continue;
    if ((isEvent(entry, 'startVm') && entry.data.role === 'primary') || isEvent(entry, 'promoteSecondary')) restartsPerVm[entry.subject] = (restartsPerVm[entry.subject] ?? 0) + 1;
  }
  const maxCopiesPerVm = Object.fromEntries([...probes.vms].map(([vm, state]) => [vm, { writable: state.maxWritable, standby: state.maxStandby }]));
  const splitBrain = Object.values(maxCopiesPerVm).filter((copies) => copies.writable > 1).length;
  record('drill', 'drill.ended', scenario, { splitBrain });
  const report = buildDrillReport({
    blueprint: options.blueprint,
    entries: journal.entries(),
    scenario,
    description: fault.description,
    seed: 0,
    substrate: `qemu (${manifest.accelerator})`,
    invariants: { splitBrain, lostVms: Object.values(finalAnswers).filter((answered) => !answered).length, immutableViolations: 0 },
  });
  const checks = { maxCopiesPerVm, finalCopiesPerVm, finalAnswers, restartsPerVm, ackedWritesLost, outageMs, noAnswerMs, finalSeq, seqAtFault: fault.seqAtFault, primaryHostBefore: fault.primaryHostBefore };
  return { report, journal, target: fault.target, checks };
}

/**
 * Each VM's outages and acknowledged writes lost, measured on the guest and its disk.
 *
 * A silence is an outage only if the guest stopped: another run of it answered afterwards, or at
 * some count no QEMU held its disk. A guest that kept running and answered again (the machine too
 * busy to answer within the probe's timeout, or its link cut and restored) was not down: that is
 * journaled as `probe.no-answer` and reported apart. A write is lost only if a run of the guest
 * acknowledged it and the disk does not hold that run's record of it at the end (a later run
 * resumed below it and wrote over it): the disk is read, not inferred from racing answers.
 */
async function measureLosses({ layout, manifest, controller, probes, record }: LabDrill, fault: StruckFault): Promise<Pick<RealDrillChecks, 'ackedWritesLost' | 'outageMs' | 'noAnswerMs'>> {
  const ackedWritesLost: Record<string, number | null> = {};
  const outageMs: Record<string, number | null> = {};
  const noAnswerMs: Record<string, number> = {};
  for (const vm of manifest.vms) {
    const state = probes.vms.get(vm.name)!;
    const outages = state.outages.filter((silence) => silence.upAtMs === null || silence.noCopy || silence.runAfter === null || silence.runAfter !== silence.runBefore);
    noAnswerMs[vm.name] = 0;
    for (const silence of state.outages.filter((candidate) => !outages.includes(candidate))) {
      noAnswerMs[vm.name] = Math.max(noAnswerMs[vm.name]!, silence.upAtMs! - silence.downAtMs);
      record('drill', 'probe.no-answer', vm.name, { fromMs: silence.downAtMs, toMs: silence.upAtMs!, run: silence.runAfter });
    }
    outageMs[vm.name] = outages.length === 0 ? 0 : outages.some((outage) => outage.upAtMs === null) ? null : Math.max(...outages.map((outage) => outage.upAtMs! - fault.atMs));
    if (outages.length === 0) {
      ackedWritesLost[vm.name] = 0;
      continue;
    }
    const lost = await lostOnDisk(layout.disk(vm.datastore, vm.name), state);
    const resumedAfter = lost !== null ? lost.resumedAfter : await resumedAfterSeq(layout, controller, vm.name);
    const ackedBefore = Math.max(...outages.map((outage) => outage.ackedBefore));
    ackedWritesLost[vm.name] = lost !== null ? lost.writes : resumedAfter === null ? null : Math.max(0, ackedBefore - resumedAfter);
    if (ackedWritesLost[vm.name] === null) {
      // Say why the loss is unknown: what the answering copy's console shows.
      const primary = [...controller.state.instances.values()].find((instance) => instance.vm === vm.name && instance.role === 'primary');
      const console = primary === undefined ? '' : await readFile(join(layout.run(primary.host), `${vm.name}.console.log`), 'utf8').catch(() => '');
      record('drill', 'probe.unknown-loss', vm.name, { primary: primary?.id ?? null, host: primary?.host ?? null, consoleTail: console.split('\n').filter((line) => line.includes('tmr-guest')).slice(-3) });
    }
    record('drill', 'probe.outage', vm.name, {
      downAtMs: outages[0]!.downAtMs,
      upAtMs: outages[outages.length - 1]!.upAtMs,
      ackedBefore,
      resumedAfter,
      writesLost: ackedWritesLost[vm.name],
      writeIntervalMs: manifest.timings.writeIntervalMs,
      lostFrom: lost !== null ? 'disk' : 'console',
      runs: state.runs.map((run) => ({ boot: run.boot, firstSeq: run.firstSeq, maxSeq: run.maxSeq })),
    });
  }
  return { ackedWritesLost, outageMs, noAnswerMs };
}

/**
 * The writes the guest's runs acknowledged that its disk does not hold: for each run the probes
 * saw, the sequence numbers from its first record on the disk (or the first it was seen
 * acknowledging, if none survived) to the newest it acknowledged, whose record on the disk is
 * another run's. Null when the guest image predates runs or the disk cannot be read.
 */
async function lostOnDisk(disk: string, state: VmProbe): Promise<{ writes: number; resumedAfter: number } | null> {
  if (state.runs.length === 0) return null;
  const newest = Math.max(...state.runs.map((run) => run.maxSeq));
  let records: Map<number, string>;
  try {
    records = await readDiskRecords({ disk, sectors: newest + 64 });
  } catch {
    return null;
  }
  return writesNotOnDisk(state.runs, records);
}

async function warm(controller: Controller, manifest: LabManifest): Promise<boolean> {
  for (const vm of manifest.vms) {
    const copies = [...controller.state.instances.values()].filter((instance) => instance.vm === vm.name);
    if (!copies.some((instance) => instance.role === 'primary' && instance.state === 'running' && instance.healthy)) return false;
    if (vm.tier === 'continuous' && !copies.some((instance) => instance.role === 'secondary' && instance.synced)) return false;
  }
  return controller.state.inFlight.size === 0;
}

/**
 * The fault has been dealt with: every VM answers, nothing is in flight, and the controller has
 * acted on the host — fenced it (failure, isolation, a dead agent) or moved every VM off it
 * (storage path loss, maintenance).
 */
function recovered(controller: Controller, probes: LabProbes, scenario: RealScenario, target: string): boolean {
  if (!probes.allUp()) return false;
  if (controller.state.inFlight.size > 0) return false;
  const onTarget = [...controller.state.instances.values()].some((instance) => instance.host === target && instance.role === 'primary');
  switch (scenario) {
    case 'migrate':
      return ![...controller.state.instances.values()].some((instance) => instance.host === target);
    case 'storage-path-loss':
      return !onTarget;
    default:
      return controller.state.hostStatus.get(target) === 'fenced';
  }
}

function settled(controller: Controller, probes: LabProbes): boolean {
  if (!probes.allUp()) return false;
  if (controller.state.inFlight.size > 0) return false;
  for (const status of controller.state.hostStatus.values()) if (status !== 'up') return false;
  for (const view of controller.state.vms.values()) if (view.pendingSinceMs !== null) return false;
  return true;
}

/** The sequence number the copy answering now resumed after, from its console. */
async function resumedAfterSeq(layout: LabLayout, controller: Controller, vm: string): Promise<number | null> {
  const primary = [...controller.state.instances.values()].find((instance) => instance.vm === vm && instance.role === 'primary');
  if (primary === undefined) return null;
  const console = await readFile(join(layout.run(primary.host), `${vm}.console.log`), 'utf8').catch(() => '');
  const matches = [...console.matchAll(/workload resumes after seq (\d+)/g)];
  const last = matches[matches.length - 1];
  return last === undefined ? null : Number(last[1]);
}

/** The lab's state for `tomaranai lab status`. */
export async function labStatus(layout: LabLayout): Promise<{ manifest: LabManifest; hosts: { name: string; power: string; agent: boolean; vms: string[] }[] } | null> {
  const manifest = await readManifest(layout);
  if (manifest === null) return null;
  const token = await readToken(layout).catch(() => '');
  const power = new PowerController(layout, manifest);
  const hosts = [];
  for (const host of manifest.hosts) {
    const state = await fetchAgentState(manifest, token, host.name);
    const vms = (state?.instances ?? []).map((instance) => `${instance.vm} (${instance.role}, ${instance.state})`);
    hosts.push({ name: host.name, power: await power.state(host.name), agent: state !== null, vms });
  }
  return { manifest, hosts };
}

