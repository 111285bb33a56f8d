/**
 * The wire format between a remote substrate client and `tomaranai twin serve`: JSON over HTTP for
 * calls, server-sent events for the event stream. Times in events are the server's clock; each
 * event carries the server's `nowMs` so the client can carry ages over to its own clock.
 */
import type { HostObservation, InstanceObservation, SubstrateEvent } from '../../ports/index.ts';

export interface WireSnapshot {
  readonly atMs: number;
  readonly hosts: readonly HostObservation[];
  readonly instances: readonly InstanceObservation[];
  readonly datastores: readonly { name: string; up: boolean }[];
  readonly vmGenerations: readonly [string, number][];
}

export interface WireEvent {
  readonly nowMs: number;
  readonly event: SubstrateEvent;
}

export const SUBSTRATE_CALLS = ['claimEpoch', 'startVm', 'stopVm', 'promoteSecondary', 'fenceHost', 'powerOnHost', 'deleteSnapshot', 'migrateVm', 'setCpuShares'] as const;
export type SubstrateCall = (typeof SUBSTRATE_CALLS)[number];
