/**
 * The real drill's plans (src/drill/lab/scenarios.ts) without real VMs: which host the lab's rule
 * strikes, which of its steps come from the twin's own scenario definitions, and which faults the
 * lab's injector refuses before it touches the machine.
 */
import type { Blueprint } from '../../src/model/index.ts';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/control/controller.ts';
import { LabFaultInjector, type LabFault } from '../../src/drill/lab/faults.ts';
import { realDrillPlan, targetHost } from '../../src/drill/lab/scenarios.ts';
import { findScenario } from '../../src/drill/sim/scenarios.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import type { FaultInjector, PlacedCopy } from '../../src/ports/index.ts';
import { createRandom } from '../../src/ports/random.ts';
import { LabLayout, labPlan } from '../../src/substrate/qemu/lab.ts';
import { PowerController } from '../../src/substrate/qemu/power.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { Twin } from '../../src/substrate/twin/twin.ts';
import { shipped } from '../support/blueprints.ts';

/** An injector that strikes nothing: planning reads only where the copies run. */
function placedOnly(copies: readonly PlacedCopy[]): FaultInjector<LabFault> {
  return { inject: () => undefined, heal: () => undefined, copies: () => copies };
}


/** A lab injector on a lab that does not exist, over the twin: what it refuses, it refuses before touching anything. */
function offlineInjector(blueprint: Blueprint): LabFaultInjector {
  const layout = new LabLayout('/nonexistent/tomaranai-lab');
  const manifest = labPlan(blueprint, { blueprintFile: 'lab.yaml', imageDirectory: '/nonexistent/image', accelerator: 'tcg' });
  const scheduler = new Scheduler();
  const twin = new Twin(blueprint, scheduler, createRandom(1, 'twin'));
  const controller = new Controller({ blueprint, substrate: twin, clock: scheduler, journal: new MemoryJournal(), epoch: 1 });
  return new LabFaultInjector({ layout, manifest, power: new PowerController(layout, manifest), controller });
}

describe('real drill plans', () => {
  const blueprint = shipped('lab');
  const continuousVm = blueprint.services.find((service) => service.tier === 'continuous')!.vms[0]!.name;
  const [first, second] = blueprint.hosts.map((host) => host.name) as [string, string];
  const copies: PlacedCopy[] = [
    { vm: continuousVm, host: second, role: 'primary' },
    { vm: continuousVm, host: first, role: 'secondary' },
  ];

  it("strikes a failure on the continuous service's primary host, whatever the load", () => {
    expect(targetHost(copies, blueprint, 'host-failure')).toBe(second);
    expect(targetHost(copies, blueprint, 'storage-path-loss')).toBe(second);
  });

  it("isolation and storage-path loss strike and repair what the twin's scenarios do, on the lab's host", () => {
    for (const scenario of ['host-isolation', 'storage-path-loss'] as const) {
      const faults = placedOnly(copies);
      const plan = realDrillPlan(scenario, { blueprint, faults, host: second });
      const twinSteps = findScenario(scenario)!.plan({ blueprint, faults, host: second }).steps;
      expect(plan.strike).toEqual(twinSteps.filter((step) => step.afterS === 0).map((step) => ({ kind: step.kind, fault: step.fault })));
      expect(plan.repair).toEqual(twinSteps.filter((step) => step.afterS > 0).map((step) => ({ kind: step.kind, fault: step.fault })));
      expect(plan.strike).toEqual([{ kind: 'inject', fault: { kind: scenario, host: second } }]);
      expect(plan.repair).toEqual([{ kind: 'heal', fault: { kind: scenario, host: second } }]);
    }
  });

  it('a host failure on the lab is a power cut, repaired by the operator through the controller; maintenance evacuates and releases', () => {
    const faults = placedOnly(copies);
    expect(realDrillPlan('host-failure', { blueprint, faults, host: second })).toEqual({ strike: [{ kind: 'inject', fault: { kind: 'host-power-loss', host: second } }], repair: [] });
    expect(realDrillPlan('agent-failure', { blueprint, faults, host: second })).toEqual({ strike: [{ kind: 'inject', fault: { kind: 'agent-failure', host: second } }], repair: [] });
    expect(realDrillPlan('migrate', { blueprint, faults, host: first })).toEqual({ strike: [{ kind: 'evacuate', host: first }], repair: [{ kind: 'release', host: first }] });
  });

  it("the lab's injector refuses what it cannot strike, and a power cut's repair behind the controller's back, before touching the machine", async () => {
    const faults = offlineInjector(blueprint);
    await expect(faults.inject({ kind: 'rack-failure', rack: blueprint.hosts[0]!.rack })).rejects.toThrow(/cannot strike rack-failure/);
    await expect(faults.inject({ kind: 'host-crash', host: first })).rejects.toThrow(/cannot strike host-crash/);
    await expect(faults.heal({ kind: 'host-power-loss', host: first })).rejects.toThrow(/powers the host on through the controller/);
    expect(faults.copies()).toEqual([]);
  });

  it('refuses the faults nobody scripted that it has no part for with a coded error that says why', async () => {
    const faults = offlineInjector(blueprint);
    const refused: LabFault[] = [
      { kind: 'clock-step', host: first, stepMs: 30_000 },
      { kind: 'datastore-full', datastore: blueprint.datastores[0]!.name },
      { kind: 'snapshot-failure', datastore: blueprint.datastores[0]!.name },
      { kind: 'datastore-latency', datastore: blueprint.datastores[0]!.name, latencyMs: 100 },
      { kind: 'crash-loop', vm: continuousVm, host: first, afterS: 20 },
      { kind: 'controller-pause' },
    ];
    for (const fault of refused) {
      await expect(faults.inject(fault)).rejects.toMatchObject({ code: 'TMR_LAB_FAULT_UNSUPPORTED', message: expect.stringMatching(new RegExp(`cannot strike ${fault.kind}: .+`)) });
    }
  });

  it('slows a host by stopping and continuing its QEMU processes (never its agent), and a repair leaves them running', async () => {
    const layout = new LabLayout('/nonexistent/tomaranai-lab');
    const manifest = labPlan(blueprint, { blueprintFile: 'lab.yaml', imageDirectory: '/nonexistent/image', accelerator: 'tcg' });
    const scheduler = new Scheduler();
    const twin = new Twin(blueprint, scheduler, createRandom(1, 'twin'));
    const controller = new Controller({ blueprint, substrate: twin, clock: scheduler, journal: new MemoryJournal(), epoch: 1 });
    const signals: string[] = [];
    const processes = {
      qemuPids: async (host: string) => (host === first ? [101, 102] : [201]),
      signal: (pid: number, signal: 'SIGSTOP' | 'SIGCONT') => void signals.push(`${pid}:${signal}`),
      setUplink: async () => undefined,
    };
    const faults = new LabFaultInjector({ layout, manifest, power: new PowerController(layout, manifest), controller, processes });
    await faults.inject({ kind: 'host-slowdown', host: first, speed: 0.25 });
    await new Promise((resolve) => setTimeout(resolve, 450));
    await faults.heal({ kind: 'host-slowdown', host: first, speed: 0.25 });
    expect(signals.filter((entry) => entry.startsWith('201'))).toEqual([]);
    expect(signals.filter((entry) => entry === '101:SIGSTOP').length).toBeGreaterThanOrEqual(2);
    expect(signals.slice(-2)).toEqual(['101:SIGCONT', '102:SIGCONT']);
  });
});
