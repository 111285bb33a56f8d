/**
 * The twin's hosts and what runs on them: power (outlet, feed, rack, room), liveness, the two
 * heartbeat channels and when the controller notices a change on them, the health probe of each
 * instance, and the instances lost with their host and removed once it is known. Everything here
 * is re-derived from the state after any change of the world (`environmentChanged`).
 */
import type { HeartbeatChannel } from '../../ports/index.ts';
import type { TwinDatastore, TwinHost, TwinInstance, TwinState } from './state.ts';

export class TwinHosts {
  /** The health faults' part of a probe (health.ts), null for a copy no health fault bears on. */
  probeFault: ((instance: TwinInstance) => { readonly ok: boolean; readonly latencyMs: number } | null) | null = null;
  /** Called after an ordinary probe, so a copy a health fault bears on goes on being probed. */
  onProbed: ((instance: TwinInstance) => void) | null = null;
  /** Truth, not observation: a health fault keeps the copy from serving (health.ts). */
  sickHook: ((instance: TwinInstance) => boolean) | null = null;

  sick(instance: TwinInstance): boolean {
    return this.sickHook !== null && this.sickHook(instance);
  }

  constructor(private readonly state: TwinState) {}

  powered(host: TwinHost): boolean {
    const state = this.state;
    return host.outletOn && !state.failedFeeds.has(host.feed) && !state.failedRacks.has(host.rack) && !state.failedRooms.has(host.room);
  }

  alive(host: TwinHost): boolean {
    return this.powered(host) && !host.crashed && !host.hung && this.state.clock.nowMs() >= host.bootingUntilMs;
  }

  managementReachable(host: TwinHost): boolean {
    return this.alive(host) && host.managementLinkUp;
  }

  /** Every host mounts every datastore (shared storage across both rooms). */
  hostDatastores(_host: TwinHost): TwinDatastore[] {
    return [...this.state.datastores.values()];
  }

  isHealthy(instance: TwinInstance): boolean {
    if (instance.state !== 'running' || instance.lost) return false;
    const host = this.state.hosts.get(instance.host)!;
    if (!this.alive(host) || !host.storagePathUp || host.storageRevoked) return false;
    // Cut off the service networks, it runs but answers no probe.
    if (!host.serviceNetworkUp) return false;
    if (this.state.clock.nowMs() < instance.storagePausedUntilMs) return false;
    // A quarantined VM answers no probe from the service network.
    if (this.state.security !== null && this.state.security.quarantined.has(instance.vm)) return false;
    return this.state.datastores.get(instance.datastore)?.up === true;
  }

  /** One health probe now: the copy's state and its host's, and any health fault's verdict; records its latency. */
  probeNow(instance: TwinInstance): boolean {
    const healthy = this.isHealthy(instance);
    const fault = this.probeFault === null ? null : this.probeFault(instance);
    if (fault === null) {
      instance.latencyMs = undefined;
      return healthy;
    }
    instance.latencyMs = fault.latencyMs;
    return healthy && fault.ok;
  }

  /** A copy that could serve or write: running or frozen in memory, not fenced off its storage. */
  isActiveCopy(instance: TwinInstance): boolean {
    if (instance.role !== 'primary' || instance.lost) return false;
    if (instance.state !== 'running' && instance.state !== 'booting') return false;
    const host = this.state.hosts.get(instance.host)!;
    return this.powered(host) && !host.crashed && !host.storageRevoked;
  }

  activeCopiesOf(vm: string): number {
    let count = 0;
    for (const instance of this.state.copiesOfVm(vm)) if (this.isActiveCopy(instance)) count++;
    return count;
  }

  hasRunningCopy(vm: string): boolean {
    for (const instance of this.state.copiesOfVm(vm)) {
      if (instance.role === 'primary' && instance.state === 'running' && !instance.lost) return true;
    }
    return false;
  }

  killInstances(host: TwinHost, _reason: string): void {
    for (const instance of this.state.instancesOn(host.name)) {
      if (instance.lost) continue;
      instance.lost = true;
      this.state.endEncryption(instance.id);
    }
  }

  removeInstance(instance: TwinInstance): void {
    const state = this.state;
    state.endEncryption(instance.id);
    if (instance.healthTimer) state.clock.cancel(instance.healthTimer);
    if (instance.lifecycleTimer) state.clock.cancel(instance.lifecycleTimer);
    instance.state = 'stopped';
    instance.healthy = false;
    state.deleteInstance(instance);
    state.emit({ type: 'instance.removed', id: instance.id, vm: instance.vm, host: instance.host });
  }

  /** Health is probed over the service network on each VM's interval; a change is seen at the next probe. */
  scheduleHealth(instance: TwinInstance): void {
    if (instance.healthTimer !== null) return;
    const state = this.state;
    const vm = state.index.vm.get(instance.vm)!;
    const intervalMs = Math.max(100, state.index.service.get(vm.service)!.healthCheckIntervalS * 1000);
    const now = state.clock.nowMs();
    const nextProbeMs = (Math.floor(now / intervalMs) + 1) * intervalMs;
    instance.healthTimer = state.clock.at(nextProbeMs, () => {
      instance.healthTimer = null;
      if (!state.instances.has(instance.id)) return;
      const latencyBefore = instance.latencyMs;
      const healthy = this.probeNow(instance);
      if (healthy !== instance.healthy || (latencyBefore === undefined) !== (instance.latencyMs === undefined)) {
        instance.healthy = healthy;
        state.report(instance);
      }
      this.onProbed?.(instance);
    });
  }

  /** Re-derives heartbeats, power and health after any change of the world. */
  environmentChanged(): void {
    const state = this.state;
    const now = state.clock.nowMs();
    for (const host of state.hosts.values()) {
      const powered = this.powered(host);
      if (powered !== host.wasPowered) {
        host.wasPowered = powered;
        if (!powered) {
          this.killInstances(host, 'power lost');
        } else {
          // Power is back: the host boots an empty hypervisor; its fencing is lifted by the reboot.
          host.crashed = false;
          host.hung = false;
          host.storageRevoked = false;
          host.bootingUntilMs = now + state.parameters.hostBootMs;
          state.clock.at(host.bootingUntilMs, () => this.environmentChanged());
        }
        state.emit({ type: 'host.power', host: host.name, poweredOn: powered });
      }
      // Instances that died with their host are reaped once the host is seen to run nothing.
      if (!powered) {
        for (const instance of state.instancesOn(host.name)) this.removeInstanceQuietly(instance);
      }
      if (this.managementReachable(host)) {
        // The host's agent reports in: copies that died with it are known to be gone.
        for (const instance of state.lostOn(host.name)) this.removeInstance(instance);
      }
      this.updateChannel(host, 'management', this.managementReachable(host));
      this.updateChannel(host, 'datastore', this.datastoreHeartbeat(host));
    }
    for (const instance of state.instances.values()) {
      if (instance.state === 'running' && this.isHealthy(instance) !== instance.healthy) this.scheduleHealth(instance);
    }
  }

  private datastoreHeartbeat(host: TwinHost): boolean {
    if (!this.alive(host) || !host.storagePathUp || host.storageRevoked) return false;
    // Every host mounts every datastore (hostDatastores), read here without a copy: this runs for every host at every change.
    for (const store of this.state.datastores.values()) if (store.up) return true;
    return false;
  }

  /**
   * Instances on an unpowered host are gone, but the controller is told only when it can know:
   * through fencing or when the host reports in again. Until then it sees them unhealthy.
   */
  private removeInstanceQuietly(instance: TwinInstance): void {
    instance.lost = true;
    if (instance.lifecycleTimer) {
      this.state.clock.cancel(instance.lifecycleTimer);
      instance.lifecycleTimer = null;
    }
    const host = this.state.hosts.get(instance.host)!;
    if (!host.outletOn) {
      // The power controller confirms the outlet is off: the substrate knows the copy is gone.
      this.removeInstance(instance);
    } else if (instance.healthy || instance.state === 'running') {
      this.scheduleHealth(instance);
    }
  }

  private updateChannel(host: TwinHost, channel: HeartbeatChannel, alive: boolean): void {
    const key = channel === 'management' ? 'managementAlive' : 'datastoreAlive';
    const timerKey = channel === 'management' ? 'managementTimer' : 'datastoreTimer';
    if (host[key] === alive) return;
    host[key] = alive;
    const state = this.state;
    const now = state.clock.nowMs();
    const interval = state.parameters.heartbeatIntervalMs;
    const pending = host[timerKey];
    if (pending !== null) {
      // The previous transition has not been seen yet: the two cancel out.
      state.clock.cancel(pending);
      host[timerKey] = null;
      return;
    }
    const lastTickMs = Math.floor((now - host.phaseMs) / interval) * interval + host.phaseMs;
    if (!alive) host[channel === 'management' ? 'managementLostAtMs' : 'datastoreLostAtMs'] = lastTickMs;
    if (!alive) {
      // The controller notices when the next heartbeat does not arrive.
      host[timerKey] = state.clock.at(lastTickMs + interval, () => {
        host[timerKey] = null;
        // Judged on the reader's clock (the last beat it saw); the host's own stamp on that beat is only reported.
        const hostStampAtMs = lastTickMs + host.clockOffsetMs;
        state.emit({ type: 'heartbeat.lost', host: host.name, channel, lastSeenAtMs: lastTickMs, ...(host.clockOffsetMs === 0 ? {} : { hostStampAtMs }) });
      });
    } else {
      host[timerKey] = state.clock.at(lastTickMs + interval, () => {
        host[timerKey] = null;
        state.emit({ type: 'heartbeat.restored', host: host.name, channel });
      });
    }
  }
}
