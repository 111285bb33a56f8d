/**
 * The Substrate port as the twin answers it: what the controller observes (hosts, instances,
 * datastores, VM generations, CPU metrics) and the fenced actions it asks for — start, stop,
 * promote, fence, power on, migrate, CPU shares — each refused on a stale fencing token and
 * completed after the twin's timings. Also the twin's own start as a running hospital (`adopt`).
 */
import type {
  ActionOutcome,
  FencingToken,
  InstanceRole,
  StartRequest,
  SubstrateSnapshot,
  VmMetrics,
} from '../../ports/index.ts';
import { cpuDemand, shareCpu } from '../../model/demand.ts';
import type { TwinHosts } from './hosts.ts';
import type { TwinInstance, TwinState } from './state.ts';
import type { TwinStorage } from './storage.ts';

export class TwinPort {
  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    private readonly storage: TwinStorage,
  ) {}

  snapshot(): SubstrateSnapshot {
    const state = this.state;
    return {
      atMs: state.clock.nowMs(),
      hosts: [...state.hosts.values()].map((host) => ({
        name: host.name,
        poweredOn: this.hosts.powered(host),
        heartbeats: {
          management: { up: host.managementAlive, lastSeenAtMs: host.managementAlive ? state.clock.nowMs() : host.managementLostAtMs },
          datastore: { up: host.datastoreAlive, lastSeenAtMs: host.datastoreAlive ? state.clock.nowMs() : host.datastoreLostAtMs },
        },
      })),
      instances: [...state.instances.values()].map((instance) => state.observe(instance)),
      datastores: [...state.datastores.values()].map((store) => ({ name: store.name, up: store.up })),
      vmGenerations: new Map(state.generations),
    };
  }

  claimEpoch(token: FencingToken): ActionOutcome {
    return this.state.checkToken('claimEpoch', token, null) ?? { ok: true };
  }

  startVm(request: StartRequest): ActionOutcome {
    const state = this.state;
    const parameters = state.parameters;
    const refused = state.checkToken('startVm', request.token, request.vm);
    if (refused) return refused;
    const host = state.hosts.get(request.host);
    const vm = state.index.vm.get(request.vm);
    const store = state.datastores.get(request.datastore);
    if (host === undefined || vm === undefined || store === undefined) return state.refuse('startVm', 'unknown host, VM or datastore');
    if (!this.hosts.managementReachable(host)) return state.refuse('startVm', `host ${host.name} is not reachable`);
    if (!store.up) return state.refuse('startVm', `datastore ${store.name} is down`);
    if (!host.storagePathUp || host.storageRevoked) return state.refuse('startVm', `host ${host.name} has no storage path`);
    const duplicate = state.instancesOf(request.vm).find((instance) => instance.host === request.host && instance.state !== 'stopped');
    if (duplicate) return state.refuse('startVm', `${request.vm} already has a copy on ${request.host}`);
    // Deliberately no guard against a second primary here: like QEMU on a shared disk, the twin will
    // run two copies if told to, so that invariant 1 is the controller's to keep and the auditor's
    // to check.
    state.bumpGeneration(request.vm);
    const instance = state.addInstance({
      vm: request.vm,
      host: host.name,
      role: request.role,
      state: 'booting',
      healthy: false,
      synced: false,
      datastore: store.name,
      shares: state.defaultShares(state.index.service.get(vm.service)!),
    });
    const contending = parameters.bootContentionScope === 'substrate' ? state.instances.values() : state.instancesOn(host.name);
    let concurrent = 0;
    for (const other of contending) {
      if (other !== instance && !other.lost && (parameters.bootContentionScope === 'substrate' ? other.state === 'booting' || other.state === 'running' : other.state === 'booting')) concurrent++;
    }
    const bootMs =
      request.role === 'secondary'
        ? Math.max(parameters.secondarySyncMinMs, vm.memoryGiB * parameters.secondarySyncMsPerGiB)
        : vm.bootTimeS * 1000 * parameters.bootTimeFactor * (1 + parameters.bootContention * concurrent);
    const restorePointMs = this.storage.restorePointMs(request.vm, store.name);
    state.emit({ type: 'instance.changed', instance: state.observe(instance), ...(restorePointMs === null ? {} : { restorePointMs }) });
    instance.lifecycleTimer = state.after(bootMs, () => {
      instance.lifecycleTimer = null;
      if (instance.state !== 'booting' || instance.lost) return;
      instance.state = 'running';
      instance.runningSinceMs = state.clock.nowMs();
      if (instance.role === 'secondary') instance.synced = true;
      state.report(instance);
      this.hosts.scheduleHealth(instance);
    });
    return { ok: true, detail: `instance ${instance.id}`, restorePointMs };
  }

  stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('stopVm', request.token, request.vm);
    if (refused) return refused;
    const instance = state.instances.get(request.instanceId);
    if (instance === undefined || instance.state === 'stopped') {
      // Stopping what is already stopped succeeds (idempotent) and still counts as a change.
      state.bumpGeneration(request.vm);
      return { ok: true, detail: 'already stopped' };
    }
    const host = state.hosts.get(instance.host)!;
    if (!this.hosts.managementReachable(host)) return state.refuse('stopVm', `host ${host.name} is not reachable`);
    state.bumpGeneration(request.vm);
    instance.state = 'stopping';
    state.endEncryption(instance.id);
    state.report(instance);
    if (instance.lifecycleTimer) state.clock.cancel(instance.lifecycleTimer);
    instance.lifecycleTimer = state.after(state.parameters.stopLatencyMs, () => {
      instance.lifecycleTimer = null;
      this.hosts.removeInstance(instance);
    });
    return { ok: true };
  }

  promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('promoteSecondary', request.token, request.vm);
    if (refused) return refused;
    const instance = state.instances.get(request.instanceId);
    if (instance === undefined || instance.role !== 'secondary') return state.refuse('promoteSecondary', 'no such secondary');
    if (!instance.synced || instance.lost || instance.state !== 'running') {
      return state.refuse('promoteSecondary', `secondary of ${request.vm} is not synchronised and running`);
    }
    if (this.hosts.activeCopiesOf(request.vm) > 0) {
      // Go-live takes the VM's lock on the datastore; a primary that still holds it keeps it.
      return state.refuse('promoteSecondary', `primary of ${request.vm} still holds its datastore lock`);
    }
    state.bumpGeneration(request.vm);
    if (instance.lifecycleTimer) state.clock.cancel(instance.lifecycleTimer);
    instance.lifecycleTimer = state.after(state.parameters.promoteLatencyMs, () => {
      instance.lifecycleTimer = null;
      if (instance.lost || instance.state !== 'running') return;
      instance.role = 'primary';
      instance.synced = false;
      state.report(instance);
      this.hosts.scheduleHealth(instance);
    });
    return { ok: true };
  }

  fenceHost(request: { token: FencingToken; host: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('fenceHost', request.token, null);
    if (refused) return refused;
    const host = state.hosts.get(request.host);
    if (host === undefined) return state.refuse('fenceHost', `unknown host ${request.host}`);
    // Storage fencing: the datastore drops the host's reservations (needs the datastore, not the host).
    const reachableStore = this.hosts.hostDatastores(host).some((store) => store.up);
    state.after(state.parameters.storageFenceLatencyMs, () => {
      if (reachableStore && this.hosts.hostDatastores(host).some((store) => store.up)) {
        host.storageRevoked = true;
        this.hosts.killInstances(host, 'storage fenced');
        this.hosts.environmentChanged();
        state.emit({ type: 'fence.completed', host: host.name, method: 'storage', ok: true, detail: 'storage reservations revoked' });
      } else {
        state.emit({ type: 'fence.completed', host: host.name, method: 'storage', ok: false, detail: 'no datastore reachable' });
      }
    });
    // Power fencing through the power controller, which answers even for a host that lost its feed.
    state.after(state.parameters.powerFenceLatencyMs, () => {
      host.outletOn = false;
      host.crashed = false;
      host.hung = false;
      this.hosts.killInstances(host, 'powered off');
      this.hosts.environmentChanged();
      state.emit({ type: 'fence.completed', host: host.name, method: 'power', ok: true, detail: 'outlet off, confirmed' });
    });
    return { ok: true };
  }

  powerOnHost(request: { token: FencingToken; host: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('powerOnHost', request.token, null);
    if (refused) return refused;
    const host = state.hosts.get(request.host);
    if (host === undefined) return state.refuse('powerOnHost', `unknown host ${request.host}`);
    if (host.outletOn) return { ok: true, detail: 'already on' };
    host.outletOn = true;
    this.hosts.environmentChanged();
    return { ok: true };
  }

  migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('migrateVm', request.token, request.vm);
    if (refused) return refused;
    const instance = state.instances.get(request.instanceId);
    const target = state.hosts.get(request.toHost);
    if (instance === undefined || instance.state !== 'running' || instance.lost) return state.refuse('migrateVm', `${request.vm} has no running copy ${request.instanceId}`);
    if (target === undefined) return state.refuse('migrateVm', `unknown host ${request.toHost}`);
    if (instance.migrating) return state.refuse('migrateVm', `${request.vm} is already migrating`);
    const source = state.hosts.get(instance.host)!;
    if (!this.hosts.managementReachable(source) || !this.hosts.managementReachable(target)) return state.refuse('migrateVm', 'both hosts must be reachable');
    if (!target.storagePathUp || target.storageRevoked) return state.refuse('migrateVm', `host ${target.name} has no storage path`);
    state.bumpGeneration(request.vm);
    instance.migrating = true;
    const vm = state.index.vm.get(instance.vm)!;
    state.after(state.parameters.migrationBaseMs + vm.memoryGiB * state.parameters.migrationMsPerGiB, () => {
      instance.migrating = false;
      if (instance.lost || !state.instances.has(instance.id) || !this.hosts.alive(target)) return;
      state.moveInstance(instance, target.name);
      state.report(instance);
      this.hosts.scheduleHealth(instance);
    });
    return { ok: true };
  }

  setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('setCpuShares', request.token, null);
    if (refused) return refused;
    const instance = state.instances.get(request.instanceId);
    if (instance === undefined) return state.refuse('setCpuShares', `no copy ${request.instanceId}`);
    if (!(request.shares >= 1 && request.shares <= 1_000_000)) return state.refuse('setCpuShares', 'shares must be between 1 and 1,000,000');
    instance.shares = request.shares;
    return { ok: true };
  }

  /** CPU of every running copy now: each host's cores shared by demand and shares (a hot secondary needs its primary's). */
  metrics(): readonly VmMetrics[] {
    const state = this.state;
    const now = state.clock.nowMs();
    const byHost = new Map<string, TwinInstance[]>();
    for (const instance of state.instances.values()) {
      if (instance.state !== 'running' || instance.lost) continue;
      const list = byHost.get(instance.host);
      if (list === undefined) byHost.set(instance.host, [instance]);
      else list.push(instance);
    }
    const result: VmMetrics[] = [];
    for (const [hostName, instances] of byHost) {
      const host = state.index.host.get(hostName)!;
      // A hot secondary runs in lockstep with its primary: it needs the same CPU.
      const claims = instances.map((instance) => {
        const vm = state.index.vm.get(instance.vm)!;
        const service = state.index.service.get(vm.service)!;
        return { demandCores: cpuDemand(vm.vcpu, service.demand, now, state.surge), shares: instance.shares };
      });
      // A slowed host (a throttled CPU) gives its guests that fraction of its cores: they wait, CPU ready rises.
      const grants = shareCpu(host.cores * (state.health.slowdowns.get(hostName) ?? 1), claims);
      instances.forEach((instance, index) => {
        result.push({
          vm: instance.vm,
          instanceId: instance.id,
          host: hostName,
          role: instance.role,
          demandCores: claims[index]!.demandCores,
          allocatedCores: grants[index]!.allocatedCores,
          readyPercent: grants[index]!.readyFraction * 100,
          shares: instance.shares,
        });
      });
    }
    return result;
  }

  /**
   * Starts the twin as a hospital that is already running: every VM's primary (and a synchronised
   * secondary where the placement has one) up and healthy at time zero, as a controller taking
   * over a running estate finds it. Storms use it to skip the boot most of the time.
   */
  adopt(placements: ReadonlyMap<string, { readonly primary: string; readonly secondary: string | null }>): void {
    const state = this.state;
    for (const [vmName, placement] of placements) {
      const vm = state.index.vm.get(vmName);
      if (vm === undefined) continue;
      const service = state.index.service.get(vm.service)!;
      const home = state.datastores.get(service.datastore)!;
      const copies: [string, InstanceRole][] = [[placement.primary, 'primary']];
      if (placement.secondary !== null) copies.push([placement.secondary, 'secondary']);
      for (const [hostName, role] of copies) {
        const host = state.hosts.get(hostName)!;
        const replica = home.replicatedTo === null ? undefined : state.datastores.get(home.replicatedTo);
        const datastore = role === 'secondary' && replica !== undefined && replica.room === host.room ? replica.name : home.name;
        state.bumpGeneration(vmName);
        state.addInstance({ vm: vmName, host: hostName, role, state: 'running', healthy: true, synced: role === 'secondary', datastore, shares: state.defaultShares(service) });
      }
    }
  }
}
