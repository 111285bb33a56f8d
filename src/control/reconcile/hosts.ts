/**
 * Hosts: what each one is, from its two heartbeat channels, and the fence that a host silent on
 * both must get before anything of it restarts elsewhere. The other reconcilers ask this one
 * which hosts can be reached and which may receive VMs.
 */
import { hostStatus, type HostStatus } from '../state.ts';
import type { Pass } from './pass.ts';

export interface Hosts {
  /** A host this pass does not know counts as failed. */
  statusOf(host: string): HostStatus;
  /** Its VMs can be reached (up, suspect or isolated): they still count as running. */
  reachable(host: string): boolean;
  /** It may receive a VM: up, and neither held for maintenance nor degraded. */
  eligible(host: string): boolean;
  /** Degraded by a gray failure: its heartbeats are fine, its copies are not. */
  degraded(host: string): boolean;
  /**
   * A host is suspect (a heartbeat late, not yet past the timeout): a correlated failure (a rack,
   * a room) may still be unfolding, so restarts wait until every host is known, and capacity is
   * shared out once, in priority order, over the whole failure. Bounded by the detection timeout.
   */
  readonly settling: boolean;
}

export function reconcileHosts(pass: Pass): Hosts {
  const { state, timings, held, degraded } = pass.input;
  const statuses = new Map<string, HostStatus>();
  for (const host of state.hosts.values()) {
    const status = hostStatus(host, pass.nowMs, timings.detectionTimeoutMs);
    statuses.set(host.name, status);
    if (state.hostStatus.get(host.name) !== status) pass.mark({ type: 'host.status', host: host.name, status });
    if (!host.channels.management.up) pass.wake(host.channels.management.lastSeenAtMs + timings.detectionTimeoutMs);
    if (!host.channels.datastore.up) pass.wake(host.channels.datastore.lastSeenAtMs + timings.detectionTimeoutMs);
    if (status === 'failed') {
      pass.act({ type: 'fenceHost', host: host.name, reason: 'no heartbeat on the management network nor on the datastore' });
    }
  }
  const statusOf = (host: string): HostStatus => statuses.get(host) ?? 'failed';
  let settling = false;
  for (const status of statuses.values()) if (status === 'suspect') settling = true;
  return {
    statusOf,
    reachable: (host) => {
      const status = statusOf(host);
      return status === 'up' || status === 'suspect' || status === 'isolated';
    },
    eligible: (host) => statusOf(host) === 'up' && (held === undefined || !held.has(host)) && (degraded === undefined || !degraded.has(host)),
    degraded: (host) => degraded !== undefined && degraded.has(host),
    settling,
  };
}
