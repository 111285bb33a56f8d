import { describe, expect, it } from 'vitest';
import { Controller } from '../../src/control/controller.ts';
import { createRandom } from '../../src/ports/random.ts';
import { InvariantAuditor } from '../../src/drill/sim/auditor.ts';
import { runChecked } from '../../src/drill/sim/run.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { Twin } from '../../src/substrate/twin/twin.ts';
import { shipped } from '../support/blueprints.ts';

function world(seed = 1) {
  const blueprint = shipped('university-hospital');
  const scheduler = new Scheduler();
  const twin = new Twin(blueprint, scheduler, createRandom(seed, 'twin'));
  const journal = new MemoryJournal();
  const controller = new Controller({ blueprint, substrate: twin, clock: scheduler, journal, epoch: 1 });
  const auditor = new InvariantAuditor(blueprint, twin, controller, scheduler);
  controller.start();
  runChecked(scheduler, auditor, 20 * 60 * 1000);
  expect(auditor.unconverged()).toEqual([]);
  return { blueprint, scheduler, twin, journal, controller, auditor };
}

function hostOf(twin: Twin, vm: string): string {
  return twin.snapshot().instances.find((instance) => instance.vm === vm && instance.role === 'primary')!.host;
}

describe('fencing', () => {
  it('an isolated host is never restarted twice: its VMs keep running and nothing else starts them', () => {
    const { scheduler, twin, journal, auditor } = world();
    const host = hostOf(twin, 'ehr-db-1');
    const onHost = twin.snapshot().instances.filter((instance) => instance.host === host && instance.role === 'primary').map((instance) => instance.vm);
    const before = journal.length;
    twin.inject({ kind: 'host-isolation', host });
    runChecked(scheduler, auditor, scheduler.nowMs() + 30 * 60 * 1000);
    const later = journal.entries(before + 1);
    expect(later.some((entry) => entry.type === 'host.status' && entry.subject === host && entry.data.to === 'isolated')).toBe(true);
    expect(later.filter((entry) => entry.type === 'startVm' && onHost.includes(entry.subject) && entry.data.role === 'primary')).toEqual([]);
    for (const vm of onHost) expect(twin.truth().activeCopies.get(vm)).toBe(1);
    twin.heal({ kind: 'host-isolation', host });
    runChecked(scheduler, auditor, scheduler.nowMs() + 5 * 60 * 1000);
    expect(auditor.violations).toEqual([]);
  });

  it('a hung host is fenced before its VMs restart elsewhere, so when it wakes its frozen copies are gone', () => {
    const { scheduler, twin, journal, auditor } = world(2);
    const host = hostOf(twin, 'pacs-1');
    const faultAtMs = scheduler.nowMs();
    twin.inject({ kind: 'host-hang', host });
    runChecked(scheduler, auditor, scheduler.nowMs() + 5 * 60 * 1000);
    twin.heal({ kind: 'host-hang', host });
    runChecked(scheduler, auditor, scheduler.nowMs() + 5 * 60 * 1000);
    const entries = journal.entries().filter((entry) => entry.atMs >= faultAtMs);
    const fenced = entries.find((entry) => entry.type === 'fence.completed' && entry.subject === host && entry.data.ok === true)!;
    const restart = entries.find((entry) => entry.type === 'startVm' && entry.subject === 'pacs-1')!;
    expect(fenced.seq).toBeLessThan(restart.seq);
    expect(twin.isHostPowered(host)).toBe(false);
    expect(twin.truth().splitBrainVms).toEqual([]);
    expect(auditor.violations).toEqual([]);
  });

  it('a deposed controller is refused: every action it takes after a newer term begins is rejected and journaled', () => {
    const { blueprint, scheduler, twin, journal, auditor, controller: old } = world(3);
    const newer = new Controller({ blueprint, substrate: twin, clock: scheduler, journal, epoch: 2, actor: 'controller-2' });
    newer.start();
    // Both run: the old one still believes it leads. A host fails; both decide to act.
    const host = hostOf(twin, 'lis-1');
    const before = journal.length;
    twin.inject({ kind: 'host-crash', host });
    runChecked(scheduler, auditor, scheduler.nowMs() + 10 * 60 * 1000);
    const actions = journal.entries(before + 1).filter((entry) => entry.kind === 'action');
    const byOld = actions.filter((entry) => entry.data.epoch === 1);
    const byNew = actions.filter((entry) => entry.data.epoch === 2);
    expect(byOld.length).toBeGreaterThan(0);
    expect(byOld.every((entry) => entry.data.ok === false && String(entry.data.refused).includes('epoch 1 is older than 2'))).toBe(true);
    expect(byNew.some((entry) => entry.type === 'startVm' && entry.subject === 'lis-1' && entry.data.ok === true)).toBe(true);
    expect(old.actionsRefused).toBeGreaterThan(0);
    expect(auditor.violations).toEqual([]);
    expect(auditor.unconverged()).toEqual([]);
  });

  it('a stale decision about one VM is refused by its generation (compare-and-set)', () => {
    const { twin } = world(4);
    const instance = twin.snapshot().instances.find((candidate) => candidate.vm === 'dwh-1')!;
    const generation = twin.snapshot().vmGenerations.get('dwh-1')!;
    const stale = twin.stopVm({ token: { epoch: 1, vmGeneration: generation - 1 }, vm: 'dwh-1', host: instance.host, instanceId: instance.id });
    expect(stale).toEqual({ ok: false, reason: `dwh-1 is at generation ${generation}, the action expected ${generation - 1}` });
    const fresh = twin.stopVm({ token: { epoch: 1, vmGeneration: generation }, vm: 'dwh-1', host: instance.host, instanceId: instance.id });
    expect(fresh.ok).toBe(true);
  });
});

describe('the invariant auditor', () => {
  it('catches a second running copy started behind the controller\'s back', () => {
    const { scheduler, twin, auditor, blueprint } = world(5);
    const host = hostOf(twin, 'ris-1');
    twin.inject({ kind: 'host-isolation', host });
    const other = blueprint.hosts.find((candidate) => candidate.name !== host && candidate.room !== blueprint.hosts.find((h) => h.name === host)!.room)!;
    const rogue = twin.startVm({ token: { epoch: 1 }, vm: 'ris-1', host: other.name, role: 'primary', datastore: blueprint.services.find((service) => service.name === 'ris')!.datastore });
    expect(rogue.ok).toBe(true);
    runChecked(scheduler, auditor, scheduler.nowMs() + 60_000);
    expect(auditor.violations.map((violation) => [violation.invariant, violation.subject])).toContainEqual(['split-brain', 'ris-1']);
  });

  it('refuses to delete an immutable snapshot before its retention ends, even with the controller\'s own token', () => {
    const { scheduler, twin, auditor } = world(7);
    scheduler.runUntil(scheduler.nowMs() + 3600 * 1000);
    auditor.checkSnapshots();
    const snapshots = twin.listSnapshots('ehr-db-1');
    expect(snapshots.length).toBeGreaterThanOrEqual(4);
    expect(snapshots.every((snapshot) => snapshot.immutable)).toBe(true);
    const outcome = twin.deleteSnapshot({ token: { epoch: 1 }, snapshotId: snapshots[0]!.id, actor: 'tomaranai' });
    expect(outcome.ok).toBe(false);
    expect(twin.listSnapshots('ehr-db-1').map((snapshot) => snapshot.id)).toEqual(snapshots.map((snapshot) => snapshot.id));
    auditor.checkSnapshots();
    expect(auditor.immutableViolations).toBe(0);
  });

  it('catches an immutable snapshot that vanished before its retention ended', () => {
    const { scheduler, twin, auditor } = world(8);
    scheduler.runUntil(scheduler.nowMs() + 3600 * 1000);
    auditor.checkSnapshots();
    const victim = twin.listSnapshots('pacs-1')[0]!;
    // A broken substrate: the snapshot disappears behind the port's back.
    (twin.listSnapshots('pacs-1') as unknown as unknown[]).splice(0, 1);
    auditor.checkSnapshots(['pacs-1']);
    expect(auditor.violations).toContainEqual(expect.objectContaining({ invariant: 'immutable-snapshot', subject: victim.id }));
  });

  it('catches a VM that nobody accounts for', () => {
    const { scheduler, twin, auditor, controller } = world(6);
    controller.stop();
    const host = hostOf(twin, 'nursing-1');
    twin.inject({ kind: 'host-crash', host });
    runChecked(scheduler, auditor, scheduler.nowMs() + 5 * 60_000);
    expect(auditor.violations.some((violation) => violation.invariant === 'lost-vm' && violation.subject === 'nursing-1')).toBe(true);
  });
});
