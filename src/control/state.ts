/**
 * The controller's view of the world, built only from what the substrate reported. It is what
 * `decide` reads; only the controller writes it.
 */
import type { HeartbeatChannel, InstanceObservation } from '../ports/index.ts';

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
  /** The host a start or promotion acts on: its fence ends the work at once (a fenced host runs nothing). */
  readonly host?: string;
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
  /** Room claimed for a VM that waits (freed by shedding for it, or claimed in its turn), held until it starts there. */
  readonly reservations: Map<string, Reservation>;
}

/** Where every VM goes once a recovery is done: computed once per failure set, then followed. */
export interface RecoveryTarget {
  /** Where each VM's primary runs once the recovery is done; absent: not running (shed or lost). */
  readonly primary: ReadonlyMap<string, string>;
  readonly secondary: ReadonlyMap<string, string>;
  /** Why a VM does not run, for the ones the recovery sheds. */
  readonly shedReasons: ReadonlyMap<string, string>;
}

export interface Reservation {
  readonly host: string;
  readonly untilMs: number;
}

export function hostStatus(host: HostView, nowMs: number, detectionTimeoutMs: number): HostStatus {
  if (host.fencedAtMs !== null) return 'fenced';
  const managementDown = channelDown(host.channels.management, nowMs, detectionTimeoutMs);
  const datastoreDown = channelDown(host.channels.datastore, nowMs, detectionTimeoutMs);
  if (managementDown && datastoreDown) return 'failed';
  if (managementDown) return 'isolated';
  if (datastoreDown) return 'storage-lost';
  if (!host.channels.management.up || !host.channels.datastore.up) return 'suspect';
  return 'up';
}

/** Silent for the detection timeout. (A plain function: this runs for every host in every pass.) */
function channelDown(channel: ChannelView, nowMs: number, detectionTimeoutMs: number): boolean {
  return !channel.up && nowMs - channel.lastSeenAtMs >= detectionTimeoutMs;
}

/** The bookkeeping a decision asks for; the mark types live with decide(). */
export type StateMark =
  | { readonly type: 'host.status'; readonly host: string; readonly status: HostStatus }
  | { readonly type: 'vm.pending'; readonly vm: string; readonly sinceMs: number | null }
  | { readonly type: 'vm.waiting'; readonly vm: string; readonly reason: string | null }
  | { readonly type: 'vm.shed'; readonly vm: string; readonly reason: string | null }
  | { readonly type: 'vm.cold-restart'; readonly vm: string; readonly reason: string }
  | { readonly type: 'vm.reserve'; readonly vm: string; readonly host: string | null; readonly untilMs: number };

/**
 * Applies one mark to the state; returns whether anything changed (so the caller journals only
 * changes). Shared by the controller and by the planner's failure analysis, which must agree.
 */
export function applyMark(state: ControllerState, mark: StateMark): boolean {
  switch (mark.type) {
    case 'host.status':
      if (state.hostStatus.get(mark.host) === mark.status) return false;
      state.hostStatus.set(mark.host, mark.status);
      return true;
    case 'vm.pending': {
      const view = state.vms.get(mark.vm)!;
      view.pendingSinceMs = mark.sinceMs;
      if (mark.sinceMs === null) view.coldRestart = false;
      return true;
    }
    case 'vm.waiting': {
      const view = state.vms.get(mark.vm)!;
      if (view.waitReason === mark.reason) return false;
      view.waitReason = mark.reason;
      return true;
    }
    case 'vm.shed': {
      const view = state.vms.get(mark.vm)!;
      if (view.shedReason === mark.reason) return false;
      view.shedReason = mark.reason;
      return true;
    }
    case 'vm.reserve':
      if (mark.host === null) state.reservations.delete(mark.vm);
      else state.reservations.set(mark.vm, { host: mark.host, untilMs: mark.untilMs });
      return true;
    case 'vm.cold-restart':
      state.vms.get(mark.vm)!.coldRestart = true;
      return true;
  }
}
