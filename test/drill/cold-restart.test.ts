import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/control/controller.ts';
import { createRandom } from '../../src/ports/random.ts';
import { InvariantAuditor } from '../../src/drill/sim/auditor.ts';
import { runChecked } from '../../src/drill/sim/run.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import { buildDrillReport } from '../../src/report/drill-report.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { Twin, type Fault } from '../../src/substrate/twin/twin.ts';
import { shipped } from '../support/blueprints.ts';

describe('a continuous VM that loses both copies at once', () => {
  it('is restarted like a critical one (≤ 300 s) from replicated storage, and the report says so', () => {
    const blueprint = shipped('university-hospital');
    const scheduler = new Scheduler();
    const twin = new Twin(blueprint, scheduler, createRandom(1, 'twin'));
    const journal = new MemoryJournal();
    const controller = new Controller({ blueprint, substrate: twin, clock: scheduler, journal });
    const auditor = new InvariantAuditor(blueprint, twin, controller, scheduler);
    controller.start();
    runChecked(scheduler, auditor, 20 * 60 * 1000);
    const copies = twin.snapshot().instances.filter((instance) => instance.vm === 'ehr-db-1');
    expect(copies.map((copy) => copy.role).sort()).toEqual(['primary', 'secondary']);
    for (const copy of copies) {
      const fault: Fault = { kind: 'host-crash', host: copy.host };
      twin.inject(fault);
      journal.append({ atMs: scheduler.nowMs(), kind: 'fault', type: 'fault.injected', subject: copy.host, actor: 'test', data: { kind: fault.kind, target: copy.host } });
    }
    runChecked(scheduler, auditor, scheduler.nowMs() + 30 * 60 * 1000);
    const report = buildDrillReport({
      blueprint,
      entries: journal.entries(),
      scenario: 'both-copies',
      description: 'both hosts of ehr-db-1 crash',
      seed: 1,
      substrate: 'twin',
      invariants: { splitBrain: auditor.splitBrain, lostVms: auditor.lostVms, immutableViolations: 0 },
    });
    const ehrDb = report.services.find((service) => service.name === 'ehr-db')!;
    expect(ehrDb.effectiveTier).toBe('critical');
    expect(ehrDb.note).toMatch(/both copies of ehr-db-1 were lost at once/);
    expect(ehrDb.rtoMeasuredS!).toBeGreaterThan(5);
    expect(ehrDb.rtoMeasuredS!).toBeLessThanOrEqual(300);
    expect(ehrDb.rpoMeasuredS).toBe(0);
    expect(ehrDb.met).toBe(true);
    expect(journal.entries().some((entry) => entry.type === 'vm.cold-restart' && entry.subject === 'ehr-db-1')).toBe(true);
    expect(auditor.violations).toEqual([]);
    // Its protection comes back too: a new secondary in another failure domain.
    const after = twin.snapshot().instances.filter((instance) => instance.vm === 'ehr-db-1');
    expect(after.filter((instance) => instance.role === 'secondary' && instance.synced)).toHaveLength(1);
  });
});
