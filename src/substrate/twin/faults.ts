/**
 * Faults on the twin: what each kind breaks (a host's power, links, storage path or operating
 * system; a rack, room, feed or datastore) and how a repair undoes it, after which the hosts
 * re-derive heartbeats, power and health. The twin strikes every kind of the FaultInjector port's
 * Fault, at once.
 */
import type { Fault } from '../../ports/index.ts';
import type { TwinHosts } from './hosts.ts';
import type { TwinState } from './state.ts';
import type { TwinStorage } from './storage.ts';

export class TwinFaults {
  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    private readonly storage: TwinStorage,
  ) {}

  inject(fault: Fault): void {
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
}
