/**
 * A long run of the hospital on the twin with random background failures and their repairs:
 * the week the benchmark simulates, and a soak test of the controller. Invariants are checked
 * after every simulated instant.
 */
import { Controller } from '../../control/controller.ts';
import { createRandom } from '../../ports/random.ts';
import { MemoryJournal } from '../../journal/memory.ts';
import type { Blueprint } from '../../model/index.ts';
import { Scheduler } from '../../substrate/twin/scheduler.ts';
import { faultTarget, Twin, type Fault } from '../../substrate/twin/twin.ts';
import { InvariantAuditor } from './auditor.ts';
import { runChecked } from './run.ts';
import { drawFault } from './storm.ts';

export interface SoakOptions {
  readonly blueprint: Blueprint;
  readonly seed: number;
  readonly days: number;
  /** Mean time between background failures anywhere in the hospital. */
  readonly meanTimeBetweenFaultsS?: number;
  /** Mean time to repair a failure (then fenced hosts are powered on again). */
  readonly meanTimeToRepairS?: number;
  /**
   * Audit the invariants at most once per this much simulated time instead of after every instant
   * (the default). The 10,000-VM week uses it: a full audit reads every VM and copy, and after every
   * instant of a week that is most of the run (bench/estate.ts prints both).
   */
  readonly auditEveryMs?: number;
}

export interface SoakResult {
  readonly simulatedS: number;
  readonly faults: number;
  readonly events: number;
  readonly journalEntries: number;
  readonly violations: number;
  readonly unconverged: readonly string[];
}

const BACKGROUND_KINDS: readonly Fault['kind'][] = ['host-crash', 'host-hang', 'host-isolation', 'storage-path-loss', 'host-power-loss', 'power-feed-failure', 'rack-failure'];

export function runSoak(options: SoakOptions): SoakResult {
  const random = createRandom(options.seed, 'soak');
  const faultsRandom = random.fork('faults');
  const scheduler = new Scheduler();
  const journal = new MemoryJournal();
  const twin = new Twin(options.blueprint, scheduler, random.fork('twin'));
  const controller = new Controller({ blueprint: options.blueprint, substrate: twin, clock: scheduler, journal });
  const auditor = new InvariantAuditor(options.blueprint, twin, controller, scheduler);
  controller.start();
  const endMs = options.days * 86_400_000;
  const meanBetweenMs = (options.meanTimeBetweenFaultsS ?? 6 * 3600) * 1000;
  const meanRepairMs = (options.meanTimeToRepairS ?? 3600) * 1000;
  let faults = 0;
  let atMs = faultsRandom.exponential(meanBetweenMs);
  while (atMs < endMs) {
    const fault = drawFault(options.blueprint, faultsRandom, faultsRandom.pick(BACKGROUND_KINDS));
    const repairAtMs = atMs + 60_000 + faultsRandom.exponential(meanRepairMs);
    faults++;
    scheduler.at(atMs, () => {
      twin.inject(fault);
      journal.append({ atMs: scheduler.nowMs(), kind: 'fault', type: 'fault.injected', subject: faultTarget(fault), actor: 'soak', data: { kind: fault.kind } });
    });
    scheduler.at(repairAtMs, () => {
      twin.heal(fault);
      journal.append({ atMs: scheduler.nowMs(), kind: 'fault', type: 'fault.repaired', subject: faultTarget(fault), actor: 'soak', data: { kind: fault.kind } });
      for (const host of options.blueprint.hosts) if (!twin.isHostPowered(host.name)) controller.powerOnHost(host.name, 'operator');
    });
    atMs += faultsRandom.exponential(meanBetweenMs);
  }
  if (options.auditEveryMs === undefined) runChecked(scheduler, auditor, endMs);
  else {
    const everyMs = options.auditEveryMs;
    let nextAuditMs = 0;
    scheduler.runWhile(endMs, () => {
      if (scheduler.nowMs() >= nextAuditMs && scheduler.nextAtMs() !== scheduler.nowMs()) {
        auditor.check();
        nextAuditMs = scheduler.nowMs() + everyMs;
      }
      return false;
    });
    scheduler.runUntil(endMs);
    auditor.check();
  }
  controller.stop();
  return {
    simulatedS: endMs / 1000,
    faults,
    events: scheduler.eventsExecuted,
    journalEntries: journal.length,
    violations: auditor.violations.length,
    unconverged: auditor.unconverged(),
  };
}
