/**
 * What the control plane and a host agent say to each other over the lab's management network:
 * the request bodies the agent accepts (strict schemas — an unknown field is refused, not ignored),
 * its answers, and the state it reports on `GET /state`. Shared by the agent's HTTP edge
 * (agent-routes.ts) and the control plane's client (agent-client.ts), so the two cannot drift.
 */
import { z } from 'zod';

export type AgentRole = 'primary' | 'secondary';

export interface AgentInstanceState {
  readonly id: string;
  readonly vm: string;
  readonly role: AgentRole;
  readonly state: 'booting' | 'running';
  /** The guest reached its init (a standby is ready to take over). */
  readonly booted: boolean;
  readonly diskAttached: boolean;
  readonly pid: number;
  readonly generation: number;
  readonly paused: boolean;
  /** A migration's target still waiting for the VM's state: not a copy of the VM yet. */
  readonly incoming: boolean;
  readonly quarantined: boolean;
  readonly shares: number;
  readonly launchedAtMs: number;
  /** CPU the QEMU process has used, and time it spent runnable but waiting for a core (ms, from /proc). */
  readonly cpuMs: number | null;
  readonly cpuWaitMs: number | null;
}

export interface AgentState {
  readonly host: string;
  readonly atMs: number;
  readonly epoch: number;
  readonly storagePathUp: boolean;
  readonly fenced: boolean;
  readonly instances: readonly AgentInstanceState[];
}

export type AgentAnswer = { readonly ok: true; readonly detail?: string } | { readonly ok: false; readonly reason: string };

const epochField = z.number().int().nonnegative();
const vmField = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);
export const StartBody = z.strictObject({
  epoch: epochField,
  vm: vmField,
  instanceId: z.string().min(1).max(128),
  generation: z.number().int().nonnegative(),
  role: z.enum(['primary', 'secondary']),
  incomingPort: z.number().int().min(1024).max(65535).optional(),
});
export const VmBody = z.strictObject({ epoch: epochField, vm: vmField, instanceId: z.string().min(1).max(128) });
export const PromoteBody = z.strictObject({ epoch: epochField, vm: vmField, instanceId: z.string().min(1).max(128), generation: z.number().int().nonnegative() });
export const MigrateBody = z.strictObject({ epoch: epochField, vm: vmField, instanceId: z.string().min(1).max(128), toAddress: z.string().regex(/^[0-9.]+$/), port: z.number().int().min(1024).max(65535) });
export const SharesBody = z.strictObject({ epoch: epochField, vm: vmField, shares: z.number().int().min(1).max(262_144) });
export const QuarantineBody = z.strictObject({ epoch: epochField, vm: vmField, quarantined: z.boolean(), allow: z.array(z.string().regex(/^[0-9.]+(\/\d+)?$/)).max(16) });
export const SnapshotBody = z.strictObject({ epoch: epochField, vm: vmField, snapshotId: z.string().regex(/^[a-zA-Z0-9._-]{1,96}$/), retainUntilMs: z.number().nonnegative() });
const restoreIdField = z.string().regex(/^[a-zA-Z0-9._-]{1,96}$/);
export const RestoreStartBody = z.strictObject({ epoch: epochField, vm: vmField, restoreId: restoreIdField, snapshotId: restoreIdField, port: z.number().int().min(1024).max(65535) });
export const RestoreStopBody = z.strictObject({ epoch: epochField, vm: vmField, restoreId: restoreIdField });
export const EpochBody = z.strictObject({ epoch: epochField });
const address = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/);
export const PolicyBody = z.strictObject({
  epoch: epochField,
  /** Addresses that reach every VM and are reached by them (the control plane's health probes). */
  monitor: z.array(address).max(16),
  rules: z.array(z.strictObject({ from: address, to: address, port: z.number().int().min(0).max(65535), protocol: z.enum(['tcp', 'udp']) })).max(20_000),
});

export type StartVmRequest = z.infer<typeof StartBody>;
export type StopVmRequest = z.infer<typeof VmBody>;
/** A standby's promotion, and a migration's target adopting the VM. */
export type PromoteRequest = z.infer<typeof PromoteBody>;
export type MigrateRequest = z.infer<typeof MigrateBody>;
export type SharesRequest = z.infer<typeof SharesBody>;
export type QuarantineRequest = z.infer<typeof QuarantineBody>;
export type SnapshotRequest = z.infer<typeof SnapshotBody>;
export type NetworkPolicyRequest = z.infer<typeof PolicyBody>;
export type RestoreStartRequest = z.infer<typeof RestoreStartBody>;
export type RestoreStopRequest = z.infer<typeof RestoreStopBody>;
