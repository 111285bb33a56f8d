/**
 * The twin as a FaultInjector: the copies a scenario aims by are the ones that really run (not
 * those lost with their host), the busiest host follows from them, and a scenario given a host
 * strikes that one.
 */
import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/control/controller.ts';
import { InvariantAuditor } from '../../src/drill/sim/auditor.ts';
import { runChecked } from '../../src/drill/sim/run.ts';
import { findScenario } from '../../src/drill/sim/scenarios.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import { hostLoad } from '../../src/ports/index.ts';
import { createRandom } from '../../src/ports/random.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { Twin } from '../../src/substrate/twin/twin.ts';
import { shipped } from '../support/blueprints.ts';

function warmHospital() {
  const blueprint = shipped('university-hospital');
  const scheduler = new Scheduler();
  const twin = new Twin(blueprint, scheduler, createRandom(1, 'twin'));
  const controller = new Controller({ blueprint, substrate: twin, clock: scheduler, journal: new MemoryJournal(), epoch: 1 });
  const auditor = new InvariantAuditor(blueprint, twin, controller, scheduler);
  controller.start();
  runChecked(scheduler, auditor, 20 * 60 * 1000);
  return { blueprint, twin };
}

describe('the twin as a fault injector', () => {
  it('aims by the copies that run: those lost with a crashed host drop out, and so does its load', () => {
    const { blueprint, twin } = warmHospital();
    const running = twin.snapshot().instances;
    expect(twin.copies()).toEqual(running.map((instance) => ({ vm: instance.vm, host: instance.host, role: instance.role })));
    expect(hostLoad(blueprint, twin.copies())).toEqual(twin.hostLoad());
    const host = running[0]!.host;
    twin.inject({ kind: 'host-crash', host });
    expect(twin.copies().some((copy) => copy.host === host)).toBe(false);
    expect(twin.hostLoad().get(host)).toEqual({ vcpu: 0, memoryGiB: 0 });
    // The controller has not been told yet: it still observes the lost copies.
    expect(twin.snapshot().instances.some((instance) => instance.host === host)).toBe(true);
  });

  it('a one-host scenario strikes the busiest host, or the host it is given', () => {
    const { blueprint, twin } = warmHospital();
    const load = [...twin.hostLoad()].sort((a, b) => b[1].vcpu - a[1].vcpu || b[1].memoryGiB - a[1].memoryGiB);
    const busiest = load[0]![0];
    const idlest = load[load.length - 1]![0];
    for (const name of ['host-failure', 'host-isolation', 'host-network-loss', 'storage-path-loss']) {
      const scenario = findScenario(name)!;
      expect(scenario.plan({ blueprint, faults: twin }).steps[0]!.fault).toMatchObject({ host: busiest });
      expect(scenario.plan({ blueprint, faults: twin, host: idlest }).steps[0]!.fault).toMatchObject({ host: idlest });
    }
  });
});
