/**
 * The controller's view of the world, built only from what the substrate reported. It is what
 * `decide` reads; only the controller writes it.
 */
import type { HeartbeatChannel, InstanceObservation } from './ports.ts';

export type HostStatus = 'up' | 'suspect' | 'isolated' | 'storage-lost' | 'failed' | 'fenced';

export interface ChannelView {
  up: boolean;
  lastSeenAtMs: number;
}

export interface HostView {
  readonly name: string;
  readonly channels: Record<HeartbeatChannel, ChannelView>;
  fencedAtMs: number | null;
  poweredOn: boolean;
}

export interface VmView {
  /** Since when the VM has had no running primary and waits to be started. */
  pendingSinceMs: number | null;
  waitReason: string | null;
  shedReason: string | null;
  /** Set when a continuous VM lost both copies and is restarted like a critical one. */
  coldRestart: boolean;
  lastHost: string | null;
}

export interface InFlight {
  readonly issuedAtMs: number;
  readonly deadlineMs: number;
}

export interface ControllerState {
  readonly hosts: Map<string, HostView>;
  readonly instances: Map<string, InstanceObservation>;
  readonly datastoresUp: Map<string, boolean>;
  readonly vms: Map<string, VmView>;
  readonly inFlight: Map<string, InFlight>;
  readonly hostStatus: Map<string, HostStatus>;
  /** When a running instance stopped answering its health check. */
  readonly unhealthySinceMs: Map<string, number>;
  /** Room freed by shedding, held for the VM it was freed for until it starts there. */
  readonly reservations: Map<string, Reservation>;
}

export interface Reservation {
  readonly host: string;
  readonly untilMs: number;
}

export function hostStatus(host: HostView, nowMs: number, detectionTimeoutMs: number): HostStatus {
  if (host.fencedAtMs !== null) return 'fenced';
  const down = (channel: ChannelView) => !channel.up && nowMs - channel.lastSeenAtMs >= detectionTimeoutMs;
  const managementDown = down(host.channels.management);
  const datastoreDown = down(host.channels.datastore);
  if (managementDown && datastoreDown) return 'failed';
  if (managementDown) return 'isolated';
  if (datastoreDown) return 'storage-lost';
  if (!host.channels.management.up || !host.channels.datastore.up) return 'suspect';
  return 'up';
}
