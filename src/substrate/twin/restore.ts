/**
 * Restores on the twin (cyber recovery): a VM's snapshot booted into the isolated recovery
 * network, its health check there (which fails on a snapshot taken after the encryption began),
 * and the promotion of a verified copy into service — every infected production copy stopped
 * first, never two running copies.
 */
import type { ActionOutcome, FencingToken, RestoreObservation, RestoreRequest } from '../../ports/index.ts';
import type { TwinHosts } from './hosts.ts';
import type { RecoveryCopy } from './security-model.ts';
import type { TwinSnapshots } from './snapshots.ts';
import type { TwinState } from './state.ts';

export class TwinRestores {
  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    private readonly snapshots: TwinSnapshots,
  ) {}

  restoreSnapshot(request: RestoreRequest): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('restoreSnapshot', request.token, null);
    if (refused) return refused;
    const security = state.security;
    if (security === null) return state.refuse('restoreSnapshot', 'no network policy is applied: there is no isolated recovery network');
    if (request.network !== 'recovery') {
      return state.refuse('restoreSnapshot', 'restore into the recovery network, verify its health, then promote it (never two running copies)');
    }
    const info = state.index.vm.get(request.vm);
    const host = state.hosts.get(request.host);
    if (info === undefined || host === undefined) return state.refuse('restoreSnapshot', 'unknown VM or host');
    if (!this.hosts.managementReachable(host)) return state.refuse('restoreSnapshot', `host ${host.name} is not reachable`);
    const snapshot = this.snapshots.listSnapshots(request.vm).find((candidate) => candidate.id === request.snapshotId);
    if (snapshot === undefined) return state.refuse('restoreSnapshot', `no snapshot ${request.snapshotId}`);
    const copy: RecoveryCopy = {
      id: `restore-${request.vm}-${++security.restoreSeq}`,
      vm: request.vm,
      snapshotId: snapshot.id,
      restorePointMs: snapshot.takenAtMs,
      host: host.name,
      network: 'recovery',
      state: 'booting',
      timer: null,
    };
    security.restores.set(copy.id, copy);
    copy.timer = state.after(info.bootTimeS * 1000, () => {
      copy.timer = null;
      if (copy.state === 'booting') copy.state = 'running';
    });
    return { ok: true, detail: copy.id, restorePointMs: snapshot.takenAtMs };
  }

  restoreStatus(restoreId: string): RestoreObservation | null {
    const copy = this.state.security?.restores.get(restoreId);
    if (copy === undefined) return null;
    const host = this.state.hosts.get(copy.host)!;
    const encryptedSinceMs = this.state.security!.encryptedSinceMs.get(copy.vm);
    // The health check on the recovery network opens the application's data: a snapshot taken
    // after the encryption began holds encrypted files and fails it.
    const clean = encryptedSinceMs === undefined || copy.restorePointMs < encryptedSinceMs;
    const healthy = copy.state === 'running' && this.hosts.alive(host) && clean;
    return { id: copy.id, vm: copy.vm, snapshotId: copy.snapshotId, host: copy.host, network: copy.network, state: copy.state, healthy, restorePointMs: copy.restorePointMs };
  }

  /** Discards a restored copy that will not be used (it failed its health check). */
  discardRestore(restoreId: string): void {
    const copy = this.state.security?.restores.get(restoreId);
    if (copy === undefined) return;
    if (copy.timer) this.state.clock.cancel(copy.timer);
    this.state.security!.restores.delete(restoreId);
  }

  promoteRestored(request: { token: FencingToken; vm: string; restoreId: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('promoteRestored', request.token, request.vm);
    if (refused) return refused;
    const security = state.security;
    const copy = security?.restores.get(request.restoreId);
    if (security === null || copy === undefined || copy.vm !== request.vm) return state.refuse('promoteRestored', `no restored copy ${request.restoreId} of ${request.vm}`);
    const status = this.restoreStatus(copy.id)!;
    if (!status.healthy) return state.refuse('promoteRestored', `restored copy ${copy.id} has not passed its health check`);
    const host = state.hosts.get(copy.host)!;
    state.bumpGeneration(request.vm);
    // Every production copy stops first (primary and any lockstep secondary: both run the infected guest).
    const infected = [...state.instances.values()].filter((instance) => instance.vm === request.vm && instance.state !== 'stopped');
    for (const instance of infected) {
      if (instance.lifecycleTimer) state.clock.cancel(instance.lifecycleTimer);
      instance.lifecycleTimer = null;
      instance.state = 'stopping';
      state.endEncryption(instance.id);
      state.report(instance);
    }
    security.restores.delete(copy.id);
    const service = state.index.service.get(state.index.vm.get(request.vm)!.service)!;
    state.after(state.parameters.stopLatencyMs, () => {
      for (const instance of infected) if (state.instances.has(instance.id)) this.hosts.removeInstance(instance);
      if (!this.hosts.alive(host)) return;
      const home = state.datastores.get(service.datastore)!;
      const store = home.up || home.replicatedTo === null ? home : state.datastores.get(home.replicatedTo) ?? home;
      const instance = state.addInstance({
        vm: request.vm,
        host: host.name,
        role: 'primary',
        state: 'running',
        healthy: false,
        synced: false,
        datastore: store.name,
        shares: state.defaultShares(service),
      });
      security.promotions.push({ atMs: state.clock.nowMs(), vm: request.vm, snapshotId: copy.snapshotId, restorePointMs: copy.restorePointMs });
      state.emit({ type: 'instance.changed', instance: state.observe(instance), restorePointMs: copy.restorePointMs });
      this.hosts.scheduleHealth(instance);
    });
    return { ok: true, detail: `${copy.id} replaces ${infected.length} infected cop${infected.length === 1 ? 'y' : 'ies'}`, restorePointMs: copy.restorePointMs };
  }
}
