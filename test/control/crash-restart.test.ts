import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/control/controller.ts';
import { createRandom } from '../../src/ports/random.ts';
import { InvariantAuditor } from '../../src/drill/sim/auditor.ts';
import { runChecked } from '../../src/drill/sim/run.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { Twin } from '../../src/substrate/twin/twin.ts';
import { shipped } from '../support/blueprints.ts';

/**
 * The controller dies in the middle of a recovery (its memory is gone, its journal stays); a new
 * one starts from the journal and the observed substrate. At every kill point: the recovery
 * finishes, no completed action is repeated, and no VM ever has two running copies.
 */
describe('a controller restarted in the middle of a recovery', () => {
  const blueprint = shipped('university-hospital');
  // Milliseconds after the room failure: before detection, after detection, after fencing,
  // while critical VMs boot, while shed VMs wait.
  const killPointsMs = [500, 2_100, 2_600, 30_000, 150_000];

  for (const killAfterMs of killPointsMs) {
    it(`finishes the recovery without repeating a completed action (killed ${killAfterMs} ms after a room failure)`, () => {
      const scheduler = new Scheduler();
      const twin = new Twin(blueprint, scheduler, createRandom(3, 'twin'));
      const journal = new MemoryJournal();
      const first = new Controller({ blueprint, substrate: twin, clock: scheduler, journal, epoch: 1 });
      let auditor = new InvariantAuditor(blueprint, twin, first, scheduler);
      first.start();
      runChecked(scheduler, auditor, 20 * 60 * 1000);
      expect(auditor.unconverged()).toEqual([]);
      const faultAtMs = scheduler.nowMs();
      twin.inject({ kind: 'room-failure', room: 'room-a' });
      runChecked(scheduler, auditor, faultAtMs + killAfterMs);
      first.stop();
      const beforeRestart = journal.length;

      const second = new Controller({ blueprint, substrate: twin, clock: scheduler, journal, epoch: 2, actor: 'controller-2', history: journal.entries() });
      auditor = new InvariantAuditor(blueprint, twin, second, scheduler);
      second.start();
      runChecked(scheduler, auditor, faultAtMs + 30 * 60 * 1000);

      expect(auditor.violations).toEqual([]);
      expect(auditor.unconverged()).toEqual([]);
      expect(twin.truth().splitBrainVms).toEqual([]);
      const before = journal.entries().slice(0, beforeRestart);
      const after = journal.entries().slice(beforeRestart);
      // A host whose fencing completed is not fenced again.
      const fencedBefore = new Set(before.filter((entry) => entry.type === 'fence.completed' && entry.data.ok === true).map((entry) => entry.subject));
      const fencedAgain = after.filter((entry) => entry.type === 'fenceHost' && fencedBefore.has(entry.subject));
      expect(fencedAgain).toEqual([]);
      // A VM whose accepted start produced a running copy is not started again.
      const startedBefore = new Set(
        before.filter((entry) => entry.atMs >= faultAtMs && entry.type === 'startVm' && entry.data.ok === true && entry.data.role === 'primary').map((entry) => entry.subject),
      );
      const removedLater = new Set(journal.entries().filter((entry) => entry.type === 'vm.removed').map((entry) => entry.subject));
      const restartedAgain = after.filter((entry) => entry.type === 'startVm' && entry.data.role === 'primary' && startedBefore.has(entry.subject) && !removedLater.has(entry.subject));
      expect(restartedAgain).toEqual([]);
      // The new controller's term is in force: nothing the old one might still send would pass.
      expect(twin.claimEpoch({ epoch: 1 }).ok).toBe(false);
    });
  }
});
