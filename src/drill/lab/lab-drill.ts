/**
 * What every drill on real VMs shares (real.ts runs them; ransomware.ts is one of them): the
 * drill under way, the controller's timings and the drill's waits on this machine, the warm-up,
 * and the conclusion — checks on the machine, acknowledged writes lost, the report.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Controller } from '../../control/controller.ts';
import type { ControllerTimings } from '../../control/decide.ts';
import { isEvent, type Clock, type Journal, type JournalEntry } from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import { buildDrillReport, type DrillReport } from '../../report/drill-report.ts';
import { compileSegmentation } from '../../model/segmentation.ts';
import type { LabLayout, LabManifest } from '../../substrate/qemu/lab.ts';
import type { DocumentCheck } from '../../substrate/qemu/lab-restore.ts';
import { QemuSubstrate } from '../../substrate/qemu/substrate.ts';
import { readDiskRecords } from '../../substrate/qemu/vm.ts';
import type { LabFaultInjector } from './faults.ts';
import { delay, type DrillRecorder, fetchText, type LabProbes, parseSeq, type VmProbe, writesNotOnDisk } from './probes.ts';
import type { LabPlan, RealScenario } from './scenarios.ts';
import { TomaranaiError } from '../../errors/index.ts';

export const LAB_RANSOMWARE_VARIANTS = ['whole', 'partial', 'intermittent', 'low-entropy'] as const;
export type LabRansomwareVariant = (typeof LAB_RANSOMWARE_VARIANTS)[number];

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
  /** The ransomware drill: how the guest's encryptor plays (ransomware.ts); the VM it strikes. */
  readonly variant?: string;
  readonly target?: string;
}

export interface RealDrillRun {
  readonly report: DrillReport;
  readonly journal: Journal;
  readonly checks: RealDrillChecks;
  readonly target: string;
  /** The ransomware drill's own measurements. */
  readonly ransomware?: LabRansomwareChecks;
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


export interface LabRansomwareChecks {
  readonly vm: string;
  readonly variant: LabRansomwareVariant;
  readonly attackAtMs: number;
  readonly detectionDelayMs: number | null;
  /**
   * Alerts that were false: on any VM before the encryptor started, or on another VM after. A
   * detector that cries wolf during the drill's learning phase opens a case before the attack, and
   * the drill's numbers then measure that case, not the attack: this says so.
   */
  readonly falseAlerts: readonly { readonly vm: string; readonly atMs: number; readonly rule: string | null; readonly z: Readonly<Record<string, number>> }[];
  readonly quarantinedAfterMs: number | null;
  readonly recoveredAfterMs: number | null;
  readonly phase: string | null;
  readonly snapshotId: string | null;
  /**
   * How long before the drill started the encryptor the restored snapshot was taken (negative:
   * after). The encryptor's first write follows its start by up to a few seconds on a busy machine,
   * so a snapshot a moment after the start may still be clean: `restoredSnapshotDocuments` says.
   */
  readonly restorePointBeforeAttackMs: number | null;
  /** The restored snapshot's documents, read from the host: all clean means it predates the first malicious write. */
  readonly restoredSnapshotDocuments: DocumentCheck | null;
  readonly ackedBeforeRestorePoint: number | null;
  readonly ackedWritesLostBeforeRestorePoint: number | null;
  /** Writes acknowledged after the restore point, before the cut-over: discarded with the infected disk (the RPO). */
  readonly writesAfterRestorePoint: number | null;
  readonly documents: DocumentCheck | null;
  readonly evidenceDocuments: DocumentCheck | null;
  readonly snapshotsTaken: number;
}

/** One real drill under way: the lab, the controller on it, and what strikes and watches it. */
export interface LabDrill {
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
export interface StruckFault {
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


/** Segmentation enforced before anything boots, the controller started, every VM up and answering. */
export async function warmUp({ options, scenario, layout, manifest, record, substrate, epoch, controller }: LabDrill): Promise<void> {
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


/** Checks on the machine, the acknowledged writes lost, the restarts, and the report. */
export async function conclude(lab: LabDrill, fault: StruckFault): Promise<RealDrillRun> {
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

/** The sequence number the copy answering now resumed after, from its console. */
async function resumedAfterSeq(layout: LabLayout, controller: Controller, vm: string): Promise<number | null> {
  const primary = [...controller.state.instances.values()].find((instance) => instance.vm === vm && instance.role === 'primary');
  if (primary === undefined) return null;
  const console = await readFile(join(layout.run(primary.host), `${vm}.console.log`), 'utf8').catch(() => '');
  const matches = [...console.matchAll(/workload resumes after seq (\d+)/g)];
  const last = matches[matches.length - 1];
  return last === undefined ? null : Number(last[1]);
}

