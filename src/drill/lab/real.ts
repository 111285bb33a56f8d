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
import { MemoryJournal } from '../../journal/memory.ts';
import { RealClock } from '../../runtime/real-clock.ts';
import { LabLayout, type LabManifest, readManifest, readToken, writeAtomic } from '../../substrate/qemu/lab.ts';
import { fetchAgentState, labDown, labUp, PowerController } from '../../substrate/qemu/power.ts';
import { QemuSubstrate } from '../../substrate/qemu/substrate.ts';
import { LabFaultInjector } from './faults.ts';
import { delay, type DrillRecorder, LabProbes } from './probes.ts';
import { type LabStep, REAL_SCENARIO_SUMMARIES, REAL_SCENARIOS, realDrillPlan, type RealScenario, targetHost } from './scenarios.ts';
import { TomaranaiError } from '../../errors/index.ts';
import { LAB_SECURITY, LAB_SECURITY_TIMINGS, runLabRansomware } from './ransomware.ts';
import { conclude, LAB_CONTROLLER_TIMINGS, type LabDrill, labWaits, type RealDrillOptions, type RealDrillRun, type StruckFault, warmUp } from './lab-drill.ts';

export { agentPid } from './faults.ts';
export { REAL_SCENARIO_SUMMARIES, REAL_SCENARIOS, type RealScenario, targetHost } from './scenarios.ts';
export { LAB_CONTROLLER_TIMINGS, labWaits, type LabDrill, type RealDrillChecks, type RealDrillOptions, type RealDrillRun } from './lab-drill.ts';

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
  const ransomware = scenario === 'ransomware';
  const controller = new Controller({
    blueprint: options.blueprint,
    substrate,
    clock,
    journal,
    epoch,
    timings: { ...LAB_CONTROLLER_TIMINGS, ...waits.timings, ...(ransomware ? LAB_SECURITY_TIMINGS : {}), ...options.timings },
    ...(ransomware ? { security: LAB_SECURITY } : {}),
  });
  const faults = new LabFaultInjector({ layout, manifest, power: new PowerController(layout, manifest), controller });
  const probes = new LabProbes({ layout, manifest, controller, clock, record });
  const lab: LabDrill = { options, scenario, layout, manifest, clock, journal, record, substrate, epoch, controller, faults, probes };
  try {
    if (ransomware) return await runLabRansomware(lab);
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

