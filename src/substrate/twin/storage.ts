/**
 * The twin's storage: datastores going down and coming back (with the record of their outages),
 * a synchronously replicated volume failing over to its replica under its running VMs, and the
 * restore point a disk holds on each datastore — now on the home datastore, the replica's last
 * replication cycle (seeded phase per service) on an asynchronous replica.
 */
import type { Random } from '../../ports/random.ts';
import { tierOf } from '../../model/index.ts';
import type { TwinHosts } from './hosts.ts';
import type { TwinDatastore, TwinState } from './state.ts';

/** Whether the datastore was up at that moment (snapshots are not taken during an outage). */
export function wasUp(store: TwinDatastore, atMs: number): boolean {
  return !store.outages.some((outage) => outage.fromMs <= atMs && (outage.toMs === null || atMs < outage.toMs));
}

export class TwinStorage {
  private readonly replicationPhaseMs = new Map<string, number>();

  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    random: Random,
  ) {
    const replication = random.fork('replication-phase');
    for (const service of state.blueprint.services) {
      const tier = tierOf(state.blueprint, service);
      const interval = Math.max(1, tier.replication.intervalS * 1000);
      this.replicationPhaseMs.set(service.name, replication.int(interval));
    }
  }

  setDatastore(store: TwinDatastore, up: boolean): void {
    if (store.up === up) return;
    const now = this.state.clock.nowMs();
    store.up = up;
    store.downSinceMs = up ? null : now;
    if (up) {
      const open = store.outages.find((outage) => outage.toMs === null);
      if (open) open.toMs = now;
    } else {
      store.outages.push({ fromMs: now, toMs: null });
      this.failOverStorage(store);
    }
    this.state.emit({ type: 'datastore.changed', datastore: store.name, up });
  }

  restorePointMs(vm: string, datastore: string): number | null {
    const state = this.state;
    const service = state.index.service.get(state.index.vm.get(vm)?.service ?? '');
    if (service === undefined) return null;
    const now = state.clock.nowMs();
    const home = state.datastores.get(service.datastore)!;
    if (datastore === home.name) return home.up ? now : home.downSinceMs;
    if (home.replicatedTo !== datastore) return null;
    const replica = state.datastores.get(datastore)!;
    if (!replica.up) return null;
    const sourceEndMs = home.up ? now : home.downSinceMs ?? now;
    const tier = tierOf(state.blueprint, service);
    if (tier.replication.mode === 'sync') return sourceEndMs;
    const intervalMs = tier.replication.intervalS * 1000;
    const phaseMs = this.replicationPhaseMs.get(service.name) ?? 0;
    const cycles = Math.floor((sourceEndMs - phaseMs) / intervalMs);
    return cycles < 0 ? 0 : phaseMs + cycles * intervalMs;
  }

  /**
   * A synchronously replicated volume survives the loss of one copy (a stretched, metro-mirrored
   * datastore): the VMs using it pause their I/O briefly and go on from the replica, which holds
   * every acknowledged write. Asynchronously replicated volumes do not: their VMs must restart
   * from the replica's older point, which is the controller's decision.
   */
  private failOverStorage(store: TwinDatastore): void {
    const state = this.state;
    const replica = store.replicatedTo === null ? undefined : state.datastores.get(store.replicatedTo);
    if (replica === undefined || !replica.up) return;
    const now = state.clock.nowMs();
    for (const instance of state.instances.values()) {
      if (instance.datastore !== store.name || instance.lost) continue;
      const service = state.index.service.get(state.index.vm.get(instance.vm)!.service)!;
      if (tierOf(state.blueprint, service).replication.mode !== 'sync') continue;
      instance.datastore = replica.name;
      instance.storagePausedUntilMs = now + state.parameters.storageFailoverMs;
      state.report(instance);
      this.hosts.scheduleHealth(instance);
      state.after(state.parameters.storageFailoverMs, () => {
        if (state.instances.has(instance.id)) this.hosts.scheduleHealth(instance);
      });
    }
  }
}
