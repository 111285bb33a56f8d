/**
 * The one executor, against a fake substrate that records every call and answers as scripted:
 * tokens, work-queue keys, journal entries and what a refusal does, for each loop's actions.
 */
import { describe, expect, it } from 'vitest';
import { CapacityModel } from '../../src/capacity/capacity.ts';
import { Executor } from '../../src/control/executor.ts';
import type { ControlAction } from '../../src/control/operations.ts';
import type { InFlight } from '../../src/control/state.ts';
import { DEFAULT_TIMINGS } from '../../src/control/timings.ts';
import { WorkQueue } from '../../src/control/work-queue.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import type { ActionOutcome, FencingToken, MaybePromise, SnapshotObservation, Substrate, SubstrateSnapshot, VmMetrics } from '../../src/ports/index.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { tinyHospital } from './world.ts';

/** Records each call with its token; answers with the next scripted outcome (accepted when none is left). */
class FakeSubstrate implements Substrate {
  readonly name = 'fake';
  readonly calls: { call: string; token: FencingToken }[] = [];
  readonly answers: MaybePromise<ActionOutcome>[] = [];
  generations = new Map<string, number>();

  private answer(call: string, token: FencingToken): MaybePromise<ActionOutcome> {
    this.calls.push({ call, token });
    return this.answers.shift() ?? { ok: true };
  }
  snapshot(): SubstrateSnapshot {
    return { atMs: 0, hosts: [], instances: [], datastores: [], vmGenerations: this.generations };
  }
  claimEpoch(token: FencingToken) {
    return this.answer('claimEpoch', token);
  }
  subscribe(): () => void {
    return () => {};
  }
  startVm(request: { token: FencingToken }) {
    return this.answer('startVm', request.token);
  }
  stopVm(request: { token: FencingToken }) {
    return this.answer('stopVm', request.token);
  }
  promoteSecondary(request: { token: FencingToken }) {
    return this.answer('promoteSecondary', request.token);
  }
  fenceHost(request: { token: FencingToken }) {
    return this.answer('fenceHost', request.token);
  }
  powerOnHost(request: { token: FencingToken }) {
    return this.answer('powerOnHost', request.token);
  }
  listSnapshots(): readonly SnapshotObservation[] {
    return [];
  }
  metrics(): readonly VmMetrics[] {
    return [];
  }
  migrateVm(request: { token: FencingToken }) {
    return this.answer('migrateVm', request.token);
  }
  setCpuShares(request: { token: FencingToken }) {
    return this.answer('setCpuShares', request.token);
  }
  deleteSnapshot(request: { token: FencingToken }) {
    return this.answer('deleteSnapshot', request.token);
  }
  quarantineVm(request: { token: FencingToken }) {
    return this.answer('quarantineVm', request.token);
  }
  promoteRestored(request: { token: FencingToken }) {
    return this.answer('promoteRestored', request.token);
  }
}

function setup() {
  const blueprint = tinyHospital({ hosts: 2, cores: 16, services: [{ name: 'pacs', tier: 'critical', vcpu: 4 }] });
  const substrate = new FakeSubstrate();
  const clock = new Scheduler();
  const journal = new MemoryJournal(false);
  const inFlight = new Map<string, InFlight>();
  const queue = new WorkQueue(inFlight, { baseMs: 1_000, maxMs: 30_000 });
  const wakes: number[] = [];
  const executor = new Executor({ substrate, clock, journal, queue, model: new CapacityModel(blueprint), timings: DEFAULT_TIMINGS, epoch: 3, actor: 'controller', wakeAt: (atMs) => wakes.push(atMs) });
  executor.generations.set('pacs-1', 7);
  return { substrate, clock, journal, inFlight, queue, wakes, executor };
}

const start: ControlAction = { type: 'startVm', vm: 'pacs-1', host: 'h2', role: 'primary', datastore: 'ds-1', reason: 'restart', coldRestart: false };

describe('the executor', () => {
  it('sends a VM action with the epoch and the VM generation, advances the generation, and holds its key until the substrate shows the result', () => {
    const { substrate, journal, inFlight, executor } = setup();
    substrate.answers.push({ ok: true, restorePointMs: 42 });
    expect(executor.execute(start)).toBe(true);
    expect(substrate.calls).toEqual([{ call: 'startVm', token: { epoch: 3, vmGeneration: 7 } }]);
    expect(executor.generations.get('pacs-1')).toBe(8);
    // Twice the boot time (60 s) plus startTimeoutExtraMs; the host is kept, so its fence frees the key.
    expect(inFlight.get('start:pacs-1:primary')).toEqual({ issuedAtMs: 0, deadlineMs: 120_000 + DEFAULT_TIMINGS.startTimeoutExtraMs, host: 'h2' });
    expect(executor.execute(start)).toBe(false);
    expect(journal.entries().map((entry) => [entry.kind, entry.type, entry.subject, entry.data])).toEqual([
      ['action', 'startVm', 'pacs-1', { host: 'h2', role: 'primary', datastore: 'ds-1', coldRestart: false, restorePointMs: 42, reason: 'restart', epoch: 3, generation: 7, ok: true }],
    ]);
  });

  it('after a refusal rolls the generation back, journals why, and backs the key off with a wake-up at its end', () => {
    const { substrate, journal, queue, wakes, executor } = setup();
    substrate.answers.push({ ok: false, reason: 'host h2 is not reachable' });
    const outcomes: ActionOutcome[] = [];
    executor.execute(start, (outcome) => outcomes.push(outcome));
    expect(outcomes).toEqual([{ ok: false, reason: 'host h2 is not reachable' }]);
    expect(executor.generations.get('pacs-1')).toBe(7);
    expect(journal.entries()[0]!.data).toMatchObject({ ok: false, refused: 'host h2 is not reachable' });
    expect(queue.has('start:pacs-1:primary')).toBe(true);
    expect(wakes).toEqual([1_000]);
  });

  it('re-reads the generation from the substrate when a refusal names it', () => {
    const { substrate, executor } = setup();
    substrate.generations = new Map([['pacs-1', 11]]);
    substrate.answers.push({ ok: false, reason: 'pacs-1 is at generation 11, the action expected 7' });
    executor.execute(start);
    expect(executor.generations.get('pacs-1')).toBe(11);
  });

  it('sends host and share changes with the epoch alone; a refused migration frees its key at once', () => {
    const { substrate, queue, journal, executor } = setup();
    executor.execute({ type: 'fenceHost', host: 'h1', reason: 'silent' });
    executor.execute({ type: 'setCpuShares', vm: 'pacs-1', instanceId: 'pacs-1#p', shares: 2000, reason: 'busy hour' });
    substrate.answers.push({ ok: false, reason: 'already migrating' });
    executor.execute({ type: 'migrateVm', vm: 'pacs-1', instanceId: 'pacs-1#p', fromHost: 'h1', toHost: 'h2', reason: 'hot host' });
    expect(substrate.calls).toEqual([
      { call: 'fenceHost', token: { epoch: 3 } },
      { call: 'setCpuShares', token: { epoch: 3 } },
      { call: 'migrateVm', token: { epoch: 3, vmGeneration: 7 } },
    ]);
    expect(queue.has('fence:h1')).toBe(true);
    expect(queue.has('migrate:pacs-1')).toBe(false);
    expect(executor.generations.get('pacs-1')).toBe(7);
    expect(journal.entries().map((entry) => entry.data)).toEqual([
      { reason: 'silent', epoch: 3, ok: true },
      { instance: 'pacs-1#p', shares: 2000, reason: 'busy hour', epoch: 3, ok: true },
      { instance: 'pacs-1#p', from: 'h1', to: 'h2', reason: 'hot host', epoch: 3, generation: 7, ok: false, refused: 'already migrating' },
    ]);
  });

  it('answers what a substrate cannot do, journals an operator’s call under the operator, and drops answers that come after stop()', async () => {
    const { substrate, journal, executor } = setup();
    executor.execute({ type: 'releaseVm', vm: 'pacs-1', reason: 'restored' });
    executor.execute({ type: 'powerOnHost', host: 'h1', actor: 'user:operator' });
    let late: (outcome: ActionOutcome) => void = () => {};
    substrate.answers.push(new Promise((resolve) => (late = resolve)));
    executor.execute({ type: 'quarantineVm', vm: 'pacs-1', reason: 'alert' });
    executor.stop();
    late({ ok: true });
    await Promise.resolve();
    expect(journal.entries().map((entry) => [entry.type, entry.actor, entry.data])).toEqual([
      ['releaseVm', 'controller', { reason: 'restored', epoch: 3, ok: false, refused: 'the substrate cannot release a VM' }],
      ['powerOnHost', 'user:operator', { actor: 'user:operator', ok: true }],
    ]);
  });
});
