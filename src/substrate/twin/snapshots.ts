/**
 * The twin's snapshots: one per tier interval for each VM (at a seeded phase), taken while its
 * datastore was up, expiring after the tier's retention; immutable ones refuse deletion until
 * then, whoever asks (invariant 3). They are materialised lazily, when listed, so a drill that
 * never looks at them pays nothing.
 */
import type { ActionOutcome, FencingToken, SnapshotObservation, TimerHandle } from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import { tierOf } from '../../model/index.ts';
import type { TwinDatastore, TwinState } from './state.ts';
import { wasUp } from './storage.ts';

/** Why a snapshot scheduled at that moment was not taken (its store full, its service broken), or null. */
function snapshotFailure(store: TwinDatastore, atMs: number): string | null {
  for (const outage of store.snapshotOutages) if (outage.fromMs <= atMs && (outage.toMs === null || atMs < outage.toMs)) return outage.reason;
  return null;
}

interface SnapshotLedger {
  /** Snapshots are materialised lazily, on the tier's schedule, up to this time. */
  untilMs: number;
  readonly phaseMs: number;
  readonly list: SnapshotObservation[];
}

export class TwinSnapshots {
  private readonly ledgers = new Map<string, SnapshotLedger>();
  private readonly snapshotPhase: Random;
  /** While a datastore's snapshots fail: the timer of each of its VMs' next scheduled snapshot. */
  private readonly failing = new Map<string, TimerHandle>();

  constructor(
    private readonly state: TwinState,
    random: Random,
  ) {
    this.snapshotPhase = random.fork('snapshot-phase');
  }

  listSnapshots(vm: string): readonly SnapshotObservation[] {
    return this.snapshotLedger(vm)?.list ?? [];
  }

  deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('deleteSnapshot', request.token, null);
    if (refused) return refused;
    const vm = request.snapshotId.slice(0, request.snapshotId.lastIndexOf('@'));
    const ledger = this.snapshotLedger(vm);
    const index = ledger?.list.findIndex((snapshot) => snapshot.id === request.snapshotId) ?? -1;
    if (ledger === undefined || index < 0) return state.refuse('deleteSnapshot', `no snapshot ${request.snapshotId}`);
    const snapshot = ledger.list[index]!;
    const now = state.clock.nowMs();
    if (snapshot.immutable && now < snapshot.retainUntilMs) {
      state.security?.deletionsRefused.push({ atMs: now, vm, actor: request.actor, snapshotId: snapshot.id });
      return state.refuse(
        'deleteSnapshot',
        `snapshot ${snapshot.id} is immutable until ${Math.round(snapshot.retainUntilMs / 1000)} s (asked by ${request.actor})`,
      );
    }
    ledger.list.splice(index, 1);
    return { ok: true };
  }

  /**
   * From now on the store's snapshots fail, for `reason`: each of its VMs' scheduled snapshots is
   * reported failed (a `snapshot.failed` event, with the newest snapshot it still has) at its time.
   */
  failOn(store: TwinDatastore, reason: string): void {
    if (store.snapshotOutages.some((outage) => outage.toMs === null && outage.reason === reason)) return;
    store.snapshotOutages.push({ fromMs: this.state.clock.nowMs(), toMs: null, reason });
    for (const vm of this.state.blueprint.vms) {
      if (this.state.index.service.get(vm.service)!.datastore === store.name) this.scheduleFailure(vm.name, store);
    }
  }

  failOff(store: TwinDatastore, reason: string): void {
    const open = store.snapshotOutages.find((outage) => outage.toMs === null && outage.reason === reason);
    if (open !== undefined) open.toMs = this.state.clock.nowMs();
    if (store.snapshotOutages.some((outage) => outage.toMs === null)) return;
    for (const vm of this.state.blueprint.vms) {
      const timer = this.failing.get(vm.name);
      if (timer === undefined || this.state.index.service.get(vm.service)!.datastore !== store.name) continue;
      this.state.clock.cancel(timer);
      this.failing.delete(vm.name);
    }
  }

  /** The VM's next scheduled snapshot, reported failed while the store's snapshots fail. */
  private scheduleFailure(vm: string, store: TwinDatastore): void {
    const ledger = this.snapshotLedger(vm);
    if (ledger === undefined || this.failing.has(vm)) return;
    const state = this.state;
    const service = state.index.service.get(state.index.vm.get(vm)!.service)!;
    const intervalMs = tierOf(state.blueprint, service).snapshot.intervalS * 1000;
    const now = state.clock.nowMs();
    const nextMs = Math.floor((now - ledger.phaseMs) / intervalMs) * intervalMs + ledger.phaseMs + intervalMs;
    this.failing.set(
      vm,
      state.clock.at(nextMs, () => {
        this.failing.delete(vm);
        const reason = snapshotFailure(store, nextMs);
        if (reason === null) return;
        const list = this.listSnapshots(vm);
        const lastGoodAtMs = list.length === 0 ? null : list[list.length - 1]!.takenAtMs;
        state.emit({ type: 'snapshot.failed', vm, datastore: store.name, scheduledAtMs: nextMs, reason, lastGoodAtMs });
        this.scheduleFailure(vm, store);
      }),
    );
  }

  /** Materialises the VM's snapshots up to now: one per tier interval while its datastore was up. */
  private snapshotLedger(vm: string): SnapshotLedger | undefined {
    const state = this.state;
    const info = state.index.vm.get(vm);
    if (info === undefined) return undefined;
    const service = state.index.service.get(info.service)!;
    const tier = tierOf(state.blueprint, service);
    const store = state.datastores.get(service.datastore)!;
    const intervalMs = tier.snapshot.intervalS * 1000;
    const retentionMs = tier.snapshot.retentionS * 1000;
    let ledger = this.ledgers.get(vm);
    if (ledger === undefined) {
      // With security drills on, the hospital is taken to have run before the drill began: a day,
      // or two snapshot intervals, of history (a deferred VM snapshots once a day).
      const historyMs = state.security === null ? 0 : Math.min(retentionMs, Math.max(2 * intervalMs, 86_400_000));
      ledger = { untilMs: -historyMs, phaseMs: this.snapshotPhase.fork(vm).int(intervalMs), list: [] };
      this.ledgers.set(vm, ledger);
    }
    const now = state.clock.nowMs();
    const fromMs = Math.max(ledger.untilMs, now - retentionMs);
    let tick = Math.ceil((fromMs - ledger.phaseMs) / intervalMs) * intervalMs + ledger.phaseMs;
    if (tick <= ledger.untilMs && ledger.untilMs > 0) tick += intervalMs;
    for (; tick <= now; tick += intervalMs) {
      if ((tick <= 0 && state.security === null) || tick <= ledger.untilMs || !wasUp(store, tick) || snapshotFailure(store, tick) !== null) continue;
      ledger.list.push({
        id: `${vm}@${tick}`,
        vm,
        datastore: store.name,
        takenAtMs: tick,
        retainUntilMs: tick + retentionMs,
        immutable: tier.snapshot.immutable && store.immutableSnapshots,
        digest: `${vm}:${tick}`,
      });
    }
    ledger.untilMs = now;
    // Past their retention, snapshots expire (an immutable one only then).
    while (ledger.list.length > 0 && ledger.list[0]!.retainUntilMs <= now) ledger.list.shift();
    return ledger;
  }
}
