/**
 * Faults on the twin: what each kind breaks (a host's power, links, storage path or operating
 * system; a rack, room, feed or datastore) and how a repair undoes it, after which the hosts
 * re-derive heartbeats, power and health. The twin strikes every kind of the FaultInjector port's
 * Fault, at once.
 */
import type { Fault, TimerHandle } from '../../ports/index.ts';
import type { TwinHealth } from './health.ts';
import type { TwinHosts } from './hosts.ts';
import type { TwinSnapshots } from './snapshots.ts';
import type { TwinState } from './state.ts';
import type { TwinStorage } from './storage.ts';

/** The faults of issue 13 ("failures nobody scripted"): health, clocks, snapshots, a flapping link. */
type GrayFault = Extract<
  Fault,
  { kind: 'host-slowdown' | 'vm-health-pattern' | 'clock-step' | 'datastore-latency' | 'datastore-full' | 'snapshot-failure' | 'channel-flap' | 'crash-loop' | 'controller-pause' }
>;

export class TwinFaults {
  /** Flapping management links: the timer of each host's next flip. */
  private readonly flaps = new Map<string, TimerHandle>();
  /** Clock steps in force (a repair undoes a step once, however often it is asked). */
  private readonly steps = new Set<Fault>();

  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    private readonly storage: TwinStorage,
    private readonly health: TwinHealth,
    private readonly snapshots: TwinSnapshots,
  ) {}

  inject(fault: Fault): void {
    if (this.grayFault(fault, true)) return;
    switch (fault.kind) {
      case 'host-crash':
        this.state.mustHost(fault.host).crashed = true;
        this.hosts.killInstances(this.state.mustHost(fault.host), 'host crashed');
        break;
      case 'host-hang':
        this.state.mustHost(fault.host).hung = true;
        break;
      case 'host-isolation':
        this.state.mustHost(fault.host).managementLinkUp = false;
        break;
      case 'host-network-loss': {
        const host = this.state.mustHost(fault.host);
        host.managementLinkUp = false;
        host.serviceNetworkUp = false;
        break;
      }
      case 'storage-path-loss':
        this.state.mustHost(fault.host).storagePathUp = false;
        break;
      case 'host-power-loss':
        this.state.mustHost(fault.host).outletOn = false;
        break;
      case 'rack-failure':
        this.state.failedRacks.add(fault.rack);
        break;
      case 'room-failure':
        this.state.failedRooms.add(fault.room);
        for (const store of this.state.datastores.values()) if (store.room === fault.room) this.storage.setDatastore(store, false);
        break;
      case 'power-feed-failure':
        this.state.failedFeeds.add(fault.feed);
        break;
      case 'datastore-failure':
        this.storage.setDatastore(this.state.mustDatastore(fault.datastore), false);
        break;
    }
    this.hosts.environmentChanged();
  }

  /** Undoes a fault: a repair. A crashed or unpowered host comes back empty after its boot. */
  heal(fault: Fault): void {
    if (this.grayFault(fault, false)) return;
    switch (fault.kind) {
      case 'host-crash': {
        const host = this.state.mustHost(fault.host);
        if (host.crashed) {
          host.crashed = false;
          host.bootingUntilMs = this.state.clock.nowMs() + this.state.parameters.hostBootMs;
        }
        break;
      }
      case 'host-hang':
        // A host that wakes from a hang resumes its frozen VMs: the reason fencing exists.
        this.state.mustHost(fault.host).hung = false;
        break;
      case 'host-isolation':
        this.state.mustHost(fault.host).managementLinkUp = true;
        break;
      case 'host-network-loss': {
        const host = this.state.mustHost(fault.host);
        host.managementLinkUp = true;
        host.serviceNetworkUp = true;
        break;
      }
      case 'storage-path-loss':
        this.state.mustHost(fault.host).storagePathUp = true;
        break;
      case 'host-power-loss':
        this.state.mustHost(fault.host).outletOn = true;
        break;
      case 'rack-failure':
        this.state.failedRacks.delete(fault.rack);
        break;
      case 'room-failure':
        this.state.failedRooms.delete(fault.room);
        for (const store of this.state.datastores.values()) if (store.room === fault.room) this.storage.setDatastore(store, true);
        break;
      case 'power-feed-failure':
        this.state.failedFeeds.delete(fault.feed);
        break;
      case 'datastore-failure':
        this.storage.setDatastore(this.state.mustDatastore(fault.datastore), true);
        break;
    }
    this.hosts.environmentChanged();
  }

  /** Strikes (on) or repairs (off) a fault of issue 13; returns false for any other kind. */
  private grayFault(fault: Fault, on: boolean): boolean {
    const health = this.state.health;
    const now = this.state.clock.nowMs();
    const gray = fault as GrayFault;
    switch (gray.kind) {
      case 'host-slowdown':
        if (on) health.slowdowns.set(gray.host, Math.min(1, Math.max(0.001, gray.speed)));
        else health.slowdowns.delete(gray.host);
        break;
      case 'vm-health-pattern':
        if (on) health.patterns.set(gray.vm, { failMs: gray.failS * 1000, passMs: gray.passS * 1000, sinceMs: now });
        else health.patterns.delete(gray.vm);
        break;
      case 'datastore-latency':
        if (on) health.datastoreLatencyMs.set(gray.datastore, gray.latencyMs);
        else health.datastoreLatencyMs.delete(gray.datastore);
        break;
      case 'crash-loop':
        if (on) health.crashLoops.set(gray.vm, { host: gray.host, afterMs: gray.afterS * 1000 });
        else health.crashLoops.delete(gray.vm);
        break;
      case 'clock-step':
        // Only what the host stamps moves; every reader judges by its own clock (liveness.ts).
        if (on === this.steps.has(fault)) return true;
        if (on) this.steps.add(fault);
        else this.steps.delete(fault);
        this.state.mustHost(gray.host).clockOffsetMs += on ? gray.stepMs : -gray.stepMs;
        return true;
      case 'datastore-full':
      case 'snapshot-failure': {
        const store = this.state.mustDatastore(gray.datastore);
        const reason = gray.kind === 'datastore-full' ? `datastore ${store.name} is full` : `the snapshot service of ${store.name} fails`;
        if (on) this.snapshots.failOn(store, reason);
        else this.snapshots.failOff(store, reason);
        return true;
      }
      case 'channel-flap':
        if (on) this.flap(gray.host, gray.downS * 1000, gray.upS * 1000, false);
        else this.stopFlapping(gray.host);
        this.hosts.environmentChanged();
        return true;
      case 'controller-pause':
        // The control plane's fault: the drill or storm pauses the controller; no substrate part breaks.
        return true;
      default:
        return false;
    }
    this.health.changed();
    this.hosts.environmentChanged();
    return true;
  }

  /** Sets the host's management link up or down, and schedules the next flip. */
  private flap(hostName: string, downMs: number, upMs: number, up: boolean): void {
    const host = this.state.mustHost(hostName);
    host.managementLinkUp = up;
    this.flaps.set(
      hostName,
      this.state.after(up ? upMs : downMs, () => {
        this.flap(hostName, downMs, upMs, !up);
        this.hosts.environmentChanged();
      }),
    );
  }

  private stopFlapping(hostName: string): void {
    const timer = this.flaps.get(hostName);
    if (timer !== undefined) this.state.clock.cancel(timer);
    this.flaps.delete(hostName);
    this.state.mustHost(hostName).managementLinkUp = true;
  }
}
