/**
 * Drills on real VMs (`tomaranai drill FILE --substrate qemu`): the lab's hosts and QEMU guests,
 * the unchanged controller on real time, a real fault (a power cut through the power controller,
 * a cut uplink, a lost storage path, a killed agent, a maintenance evacuation), and the same
 * report as on the twin.
 *
 * The measured values come from probes of the real guests, independent of the controller: every
 * 100 ms the drill asks each VM's address for `/health` and `/seq` (the newest durable write) and
 * counts the QEMU processes of each VM on the machine. Outages, acknowledged writes lost (the
 * newest sequence number a probe saw acknowledged, minus the one the restarted copy resumed after,
 * read from its console) and copy counts are journaled as `probe.*` entries, and the report takes
 * RTO and RPO from them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Controller } from '../../control/controller.ts';
import type { ControllerTimings } from '../../control/decide.ts';
import type { InstanceObservation, Journal, JournalEntry } from '../../ports/index.ts';
import { MemoryJournal } from '../../journal/memory.ts';
import type { Blueprint } from '../../model/index.ts';
import { buildDrillReport, type DrillReport } from '../../report/drill-report.ts';
import { compileSegmentation } from '../../model/segmentation.ts';
import { RealClock } from '../../runtime/real-clock.ts';
import { LabError, LabLayout, type LabManifest, readManifest, readToken, writeAtomic } from '../../substrate/qemu/lab.ts';
import { namespacePids, setUplink } from '../../substrate/qemu/netns.ts';
import { fetchAgentState, labDown, labUp, PowerController } from '../../substrate/qemu/power.ts';
import { QemuSubstrate } from '../../substrate/qemu/substrate.ts';
import { rm } from 'node:fs/promises';

export const REAL_SCENARIOS = ['host-failure', 'host-isolation', 'storage-path-loss', 'agent-failure', 'migrate'] as const;
export type RealScenario = (typeof REAL_SCENARIOS)[number];

export const REAL_SCENARIO_SUMMARIES: Readonly<Record<RealScenario, string>> = {
  'host-failure': "the continuous service's primary host loses power (the power controller cuts it); powered on again after the recovery",
  'host-isolation': "the continuous service's primary host loses its uplink (management and VM network); the link returns after the restart",
  'storage-path-loss': "the continuous service's primary host loses its path to the datastore; restored after the recovery",
  'agent-failure': "the host agent of the continuous service's primary host is killed (the host and its VMs keep running)",
  migrate: 'maintenance: the busiest host without a continuous VM is evacuated by live migration, then released',
};

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

const WARMUP_LIMIT_MS = 180_000;
const RECOVERY_LIMIT_MS = 120_000;
const PROBE_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 300;
const PROBE_FAILURES = 3;

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
  readonly outageMs: Readonly<Record<string, number | null>>;
}

export class RealDrillError extends Error {
  constructor(
    readonly code: 'TMR_DRILL_UNKNOWN_SCENARIO' | 'TMR_DRILL_WARMUP',
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface VmProbe {
  up: boolean;
  lastAckedSeq: number;
  /** Sequence acknowledged just before the current outage began. */
  ackedAtOutage: number;
  downAtMs: number | null;
  outages: { downAtMs: number; upAtMs: number | null; ackedBefore: number }[];
  failures: number;
  firstFailAtMs: number | null;
  /** The most QEMU processes holding the VM's disk at once, and the most standbys. */
  maxWritable: number;
  maxStandby: number;
}

export async function runRealDrill(options: RealDrillOptions): Promise<RealDrillRun> {
  if (!(REAL_SCENARIOS as readonly string[]).includes(options.scenario)) {
    throw new RealDrillError('TMR_DRILL_UNKNOWN_SCENARIO', `scenario "${options.scenario}" does not run on real VMs`, `use one of: ${REAL_SCENARIOS.join(', ')}`);
  }
  const scenario = options.scenario as RealScenario;
  const layout = options.layout ?? new LabLayout();
  const existing = await readManifest(layout);
  const broughtUp = existing === null || existing.blueprintName !== options.blueprint.name;
  if (existing !== null && existing.blueprintName !== options.blueprint.name) {
    throw new LabError('TMR_LAB_OTHER_BLUEPRINT', `a lab for ${existing.blueprintName} is up in ${layout.root}`, 'run `tomaranai lab down` first');
  }
  const manifest = await labUp({ layout, blueprint: options.blueprint, blueprintFile: options.blueprintFile });
  try {
    return await drill(options, scenario, layout, manifest);
  } finally {
    if (broughtUp && options.keepLab !== true) await labDown({ layout });
  }
}

async function drill(options: RealDrillOptions, scenario: RealScenario, layout: LabLayout, manifest: LabManifest): Promise<RealDrillRun> {
  const clock = new RealClock();
  const journal = options.journal ?? new MemoryJournal();
  const detach = options.onEntry && journal.onAppend ? journal.onAppend(options.onEntry) : null;
  const record = (kind: 'drill' | 'fault', type: string, subject: string, data: Record<string, unknown>) =>
    journal.append({ atMs: clock.nowMs(), kind, type, subject, actor: 'drill', data });
  const token = await readToken(layout);
  const substrate = new QemuSubstrate({ layout, manifest, blueprint: options.blueprint, token, clock });
  await substrate.open();
  const epochFile = join(layout.controlDirectory, 'controller-epoch');
  const epoch = (Number((await readFile(epochFile, 'utf8').catch(() => '0')).trim()) || 0) + 1;
  await writeAtomic(epochFile, String(epoch));
  const controller = new Controller({ blueprint: options.blueprint, substrate, clock, journal, epoch, timings: { ...LAB_CONTROLLER_TIMINGS, ...options.timings } });
  const power = new PowerController(layout, manifest);
  const probes = new Map<string, VmProbe>(manifest.vms.map((vm) => [vm.name, { up: false, lastAckedSeq: 0, ackedAtOutage: 0, downAtMs: null, outages: [], failures: 0, firstFailAtMs: null, maxWritable: 0, maxStandby: 0 }]));
  let probing = false;
  let faultAtMs: number | null = null;
  let prober: NodeJS.Timeout | null = null;
  let copyCounter: NodeJS.Timeout | null = null;
  try {
    record('drill', 'drill.started', scenario, { blueprint: options.blueprint.name, substrate: 'qemu', accelerator: manifest.accelerator, epoch });
    // Micro-segmentation from the blueprint's flows, enforced by every host's agent (nftables),
    // before anything boots.
    const policy = await substrate.applyNetworkPolicy({ token: { epoch }, policy: compileSegmentation(options.blueprint) });
    record('drill', 'policy.applied', options.blueprint.name, { ok: policy.ok, ...(policy.ok ? { detail: policy.detail } : { refused: policy.reason }) });
    await controller.start();

    // Warm-up: every VM runs and answers; every continuous VM has a booted standby.
    const warmStarted = Date.now();
    while (!(await warm(controller, manifest))) {
      if (Date.now() - warmStarted > WARMUP_LIMIT_MS) {
        throw new RealDrillError('TMR_DRILL_WARMUP', `the lab did not come up within ${WARMUP_LIMIT_MS / 1000} s`, `see the agents' logs under ${layout.root}/hosts/*/agent.log`);
      }
      await delay(250);
    }
    record('drill', 'drill.warm', scenario, { vms: manifest.vms.length, afterMs: Date.now() - warmStarted });

    // Probes: health and acknowledged writes of every VM, copies of every VM.
    const probeOnce = async () => {
      if (probing) return;
      probing = true;
      try {
        await Promise.all(manifest.vms.map(async (vm) => {
          const state = probes.get(vm.name)!;
          const seq = await fetchText(`http://${vm.address}/seq`);
          // Back means answering with its data: a copy that answers /health but has not resumed
          // its writes from the disk yet (/seq still 0) is not the service back.
          const ok = seq !== null && (state.lastAckedSeq === 0 || Number(seq) > 0) && (await fetchText(`http://${vm.address}/health`)) === 'ok';
          const now = clock.nowMs();
          if (ok) {
            const value = Number(seq);
            if (Number.isFinite(value)) state.lastAckedSeq = Math.max(state.lastAckedSeq, value);
          }
          if (ok) {
            state.failures = 0;
            state.firstFailAtMs = null;
          } else {
            state.failures++;
            state.firstFailAtMs ??= now;
          }
          if (ok && !state.up) {
            state.up = true;
            const open = state.outages[state.outages.length - 1];
            if (open !== undefined && open.upAtMs === null) {
              open.upAtMs = now;
              record('drill', 'probe.up', vm.name, { downForMs: now - open.downAtMs, seq: Number(seq) });
            }
          } else if (!ok && state.up && state.failures >= PROBE_FAILURES) {
            // Down since the first of PROBE_FAILURES missed probes in a row: one slow answer on a
            // busy machine is not an outage.
            state.up = false;
            if (faultAtMs !== null) {
              state.outages.push({ downAtMs: state.firstFailAtMs!, upAtMs: null, ackedBefore: state.lastAckedSeq });
              record('drill', 'probe.down', vm.name, { lastAckedSeq: state.lastAckedSeq, sinceMs: state.firstFailAtMs });
            }
          }
        }));
      } finally {
        probing = false;
      }
    };
    for (let round = 0; round < 5; round++) await probeOnce();
    prober = setInterval(() => void probeOnce(), PROBE_INTERVAL_MS);
    const countCopies = async () => {
      for (const vm of manifest.vms) {
        const copies = await QemuSubstrate.copiesOf(vm.name, layout.disk(vm.datastore, vm.name), { migrating: controller.state.inFlight.has(`migrate:${vm.name}`) });
        const state = probes.get(vm.name)!;
        if (copies.writable > state.maxWritable && copies.writable > 1) record('drill', 'probe.copies', vm.name, { writable: copies.writable, standby: copies.standby, pids: copies.pids });
        state.maxWritable = Math.max(state.maxWritable, copies.writable);
        state.maxStandby = Math.max(state.maxStandby, copies.standby);
      }
    };
    copyCounter = setInterval(() => void countCopies(), 250);
    record('drill', 'probe.started', 'probes', { intervalMs: PROBE_INTERVAL_MS, writeIntervalMs: manifest.timings.writeIntervalMs });
    await delay(2_000);

    // The fault, on the host of the first continuous service's primary (the case the SLA is about).
    const target = targetHost([...controller.state.instances.values()], options.blueprint, scenario);
    const description = `${REAL_SCENARIO_SUMMARIES[scenario]} (${target})`;
    const primariesBefore = new Map([...controller.state.instances.values()].filter((instance) => instance.role === 'primary').map((instance) => [instance.vm, instance.id]));
    record('drill', 'scenario.planned', scenario, { description, steps: 1 });
    // Journaled at the moment it begins: the power cut, the link cut, the kill follow at once.
    const seqAtFault = Object.fromEntries([...probes].map(([vm, state]) => [vm, state.lastAckedSeq]));
    faultAtMs = clock.nowMs();
    record('fault', 'fault.injected', target, { kind: FAULT_KINDS[scenario], target });
    await inject(scenario, target, { layout, manifest, power, controller });

    // Recovery: every VM answers again and the controller has nothing in flight.
    const recoveryStarted = Date.now();
    while (!(await recovered(controller, probes, scenario, target))) {
      if (Date.now() - recoveryStarted > RECOVERY_LIMIT_MS) break;
      await delay(100);
    }
    await delay(1_000);
    // The repair.
    await repair(scenario, target, { layout, manifest, power, controller, record });
    const repairStarted = Date.now();
    while (!(await settled(controller, probes))) {
      if (Date.now() - repairStarted > RECOVERY_LIMIT_MS) break;
      await delay(250);
    }
    await delay(2_000);
    if (prober !== null) clearInterval(prober);
    if (copyCounter !== null) clearInterval(copyCounter);
    while (probing) await delay(10);

    // Checks on the machine: copies per VM, every address answering with its own name.
    const finalCopiesPerVm: Record<string, { writable: number; standby: number }> = {};
    const finalAnswers: Record<string, boolean> = {};
    const finalSeq: Record<string, number> = {};
    for (const vm of manifest.vms) {
      const copies = await QemuSubstrate.copiesOf(vm.name, layout.disk(vm.datastore, vm.name));
      finalCopiesPerVm[vm.name] = { writable: copies.writable, standby: copies.standby };
      finalAnswers[vm.name] = (await fetchText(`http://${vm.address}/vm`)) === vm.name;
      finalSeq[vm.name] = Number((await fetchText(`http://${vm.address}/seq`)) ?? Number.NaN);
    }
    record('drill', 'drill.check', 'copies', { finalCopiesPerVm, finalAnswers, finalSeq });

    // Acknowledged writes lost: what a probe saw acknowledged before the outage, minus what the
    // copy that answers now resumed after (its console says, from the newest record on its disk).
    const ackedWritesLost: Record<string, number | null> = {};
    const outageMs: Record<string, number | null> = {};
    for (const vm of manifest.vms) {
      const state = probes.get(vm.name)!;
      outageMs[vm.name] = state.outages.length === 0 ? 0 : state.outages.some((outage) => outage.upAtMs === null) ? null : Math.max(...state.outages.map((outage) => outage.upAtMs! - faultAtMs!));
      if (state.outages.length === 0) {
        ackedWritesLost[vm.name] = 0;
        continue;
      }
      // Only a copy that started after the fault resumed from the disk; one that ran on lost nothing.
      const primaryNow = [...controller.state.instances.values()].find((instance) => instance.vm === vm.name && instance.role === 'primary');
      const resumedAfter = primaryNow !== undefined && primaryNow.id === primariesBefore.get(vm.name) ? state.outages[0]!.ackedBefore : await resumedAfterSeq(layout, controller, vm.name);
      const ackedBefore = Math.max(...state.outages.map((outage) => outage.ackedBefore));
      ackedWritesLost[vm.name] = resumedAfter === null ? null : Math.max(0, ackedBefore - resumedAfter);
      if (resumedAfter === null) {
        // Say why the loss is unknown: what the answering copy's console shows.
        const primary = [...controller.state.instances.values()].find((instance) => instance.vm === vm.name && instance.role === 'primary');
        const console = primary === undefined ? '' : await readFile(join(layout.run(primary.host), `${vm.name}.console.log`), 'utf8').catch(() => '');
        record('drill', 'probe.unknown-loss', vm.name, { primary: primary?.id ?? null, host: primary?.host ?? null, consoleTail: console.split('\n').filter((line) => line.includes('tmr-guest')).slice(-3) });
      }
      record('drill', 'probe.outage', vm.name, {
        downAtMs: state.outages[0]!.downAtMs,
        upAtMs: state.outages[state.outages.length - 1]!.upAtMs,
        ackedBefore,
        resumedAfter,
        writesLost: ackedWritesLost[vm.name],
        writeIntervalMs: manifest.timings.writeIntervalMs,
      });
    }
    const restartsPerVm: Record<string, number> = {};
    for (const entry of journal.entries()) {
      if (entry.atMs < faultAtMs || entry.kind !== 'action' || entry.data.ok !== true) continue;
      if ((entry.type === 'startVm' && entry.data.role === 'primary') || entry.type === 'promoteSecondary') restartsPerVm[entry.subject] = (restartsPerVm[entry.subject] ?? 0) + 1;
    }
    const maxCopiesPerVm = Object.fromEntries([...probes].map(([vm, state]) => [vm, { writable: state.maxWritable, standby: state.maxStandby }]));
    const splitBrain = Object.values(maxCopiesPerVm).filter((copies) => copies.writable > 1).length;
    record('drill', 'drill.ended', scenario, { splitBrain });
    const report = buildDrillReport({
      blueprint: options.blueprint,
      entries: journal.entries(),
      scenario,
      description,
      seed: 0,
      substrate: `qemu (${manifest.accelerator})`,
      invariants: { splitBrain, lostVms: Object.values(finalAnswers).filter((answered) => !answered).length, immutableViolations: 0 },
    });
    return { report, journal, target, checks: { maxCopiesPerVm, finalCopiesPerVm, finalAnswers, restartsPerVm, ackedWritesLost, outageMs, finalSeq, seqAtFault } };
  } finally {
    if (prober !== null) clearInterval(prober);
    if (copyCounter !== null) clearInterval(copyCounter);
    detach?.();
    controller.stop();
    substrate.close();
  }
}

async function fetchText(url: string): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    if (!response.ok) return null;
    return (await response.text()).trim();
  } catch {
    return null;
  }
}

/**
 * Failures strike the host of the first continuous service's primary: the case the continuous
 * SLA is about. Maintenance takes the busiest host that runs no copy of a continuous VM: on the
 * lab a continuous copy has nowhere to migrate to (the other copy holds the other failure domain).
 */
export function targetHost(instances: readonly Pick<InstanceObservation, 'vm' | 'host' | 'role'>[], blueprint: Blueprint, scenario: RealScenario): string {
  const continuous = new Set(blueprint.services.filter((service) => service.tier === 'continuous').flatMap((service) => service.vms.map((vm) => vm.name)));
  if (scenario === 'migrate') {
    const blocked = new Set(instances.filter((instance) => continuous.has(instance.vm)).map((instance) => instance.host));
    const load = new Map<string, number>();
    for (const instance of instances) load.set(instance.host, (load.get(instance.host) ?? 0) + 1);
    const candidates = blueprint.hosts.map((host) => host.name).filter((host) => !blocked.has(host));
    candidates.sort((a, b) => (load.get(b) ?? 0) - (load.get(a) ?? 0) || a.localeCompare(b));
    return candidates[0] ?? blueprint.hosts[0]!.name;
  }
  const first = blueprint.services.find((service) => service.tier === 'continuous')?.vms[0]?.name;
  return instances.find((instance) => instance.vm === first && instance.role === 'primary')?.host ?? blueprint.hosts[0]!.name;
}

interface FaultContext {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly power: PowerController;
  readonly controller: Controller;
}

const FAULT_KINDS: Readonly<Record<RealScenario, string>> = {
  'host-failure': 'host-power-loss',
  'host-isolation': 'host-isolation',
  'storage-path-loss': 'storage-path-loss',
  'agent-failure': 'agent-failure',
  migrate: 'maintenance',
};

async function inject(scenario: RealScenario, host: string, context: FaultContext): Promise<void> {
  switch (scenario) {
    case 'host-failure':
      await context.power.off(host);
      return;
    case 'host-isolation':
      await setUplink({ host, up: false });
      return;
    case 'storage-path-loss':
      await writeAtomic(context.layout.fault(host, 'storage-path-down'), 'down');
      return;
    case 'agent-failure': {
      const agent = await agentPid(context.manifest, host);
      if (agent !== null) process.kill(agent, 'SIGKILL');
      return;
    }
    case 'migrate':
      context.controller.evacuateHost(host, 'drill');
      return;
  }
}

async function repair(scenario: RealScenario, host: string, context: FaultContext & { record: (kind: 'drill' | 'fault', type: string, subject: string, data: Record<string, unknown>) => void }): Promise<void> {
  switch (scenario) {
    case 'host-isolation':
      await setUplink({ host, up: true });
      context.record('fault', 'fault.repaired', host, { kind: 'host-isolation', target: host });
      break;
    case 'storage-path-loss':
      await rm(context.layout.fault(host, 'storage-path-down'), { force: true });
      context.record('fault', 'fault.repaired', host, { kind: 'storage-path-loss', target: host });
      break;
    case 'migrate':
      context.controller.releaseHost(host, 'drill');
      return;
    default:
      break;
  }
  // A fenced host comes back only when an operator powers it on (after the repair).
  if (context.controller.state.hostStatus.get(host) === 'fenced') context.controller.powerOnHost(host, 'operator');
}

/** The agent's pid: the node process in the host's namespace (QEMU's are named tmr-…). */
export async function agentPid(manifest: LabManifest, host: string): Promise<number | null> {
  const namespace = manifest.hosts.find((candidate) => candidate.name === host)?.namespace;
  if (namespace === undefined) return null;
  for (const pid of await namespacePids(namespace)) {
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (command.includes('\0agent\0')) return pid;
  }
  return null;
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
async function recovered(controller: Controller, probes: ReadonlyMap<string, VmProbe>, scenario: RealScenario, target: string): Promise<boolean> {
  for (const state of probes.values()) if (!state.up) return false;
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

async function settled(controller: Controller, probes: ReadonlyMap<string, VmProbe>): Promise<boolean> {
  for (const state of probes.values()) if (!state.up) return false;
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

