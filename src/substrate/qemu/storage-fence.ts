/**
 * The storage half of fencing, on the shared datastore, as the control plane writes it: lease
 * revocations (a revoked lease kills its copy at the holder's next heartbeat, and frees the lease
 * for a standby), the fence record a host's agent obeys by killing its QEMUs, the agent's
 * acknowledgement, and the lifting of a fence when the host is powered on. The agents' side is in
 * agent-heartbeat.ts; the power half is the power controller (power.ts).
 */
import { rm } from 'node:fs/promises';
import { type FenceAck, type LabLayout, type LabManifest, type Lease, readJson, type Revocation, writeAtomic } from './lab.ts';

/** How long the control plane waits for a fenced host's agent to acknowledge. */
const FENCE_ACK_TIMEOUT_MS = 10_000;
const FENCE_ACK_POLL_MS = 100;

export interface StorageFenceContext {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
}

/** Revokes every lease `host` holds, so that no lease of the host stands in a standby's way. */
export async function revokeLeases(lab: StorageFenceContext, host: string, epoch: number): Promise<void> {
  for (const vm of lab.manifest.vms) {
    const lease = await readJson<Lease>(lab.layout.lease(vm.datastore, vm.name));
    if (lease === null || lease.host !== host) continue;
    const revocation: Revocation = { vm: vm.name, host, instanceId: lease.instanceId, epoch, atMs: Date.now() };
    await writeAtomic(lab.layout.revocation(vm.datastore, vm.name), JSON.stringify(revocation));
  }
}

/**
 * Revokes the lease of a copy its host confirmed stopped, if the lease is still that copy's: a host
 * cut off from the datastore could not release it itself.
 */
export async function revokeStoppedLease(lab: StorageFenceContext, stopped: { readonly datastore: string; readonly vm: string; readonly host: string; readonly instanceId: string; readonly epoch: number }): Promise<void> {
  const lease = await readJson<Lease>(lab.layout.lease(stopped.datastore, stopped.vm));
  if (lease !== null && lease.host === stopped.host && lease.instanceId === stopped.instanceId) {
    const revocation: Revocation = { vm: stopped.vm, host: stopped.host, instanceId: stopped.instanceId, epoch: stopped.epoch, atMs: Date.now() };
    await writeAtomic(lab.layout.revocation(stopped.datastore, stopped.vm), JSON.stringify(revocation));
  }
}

/**
 * The storage method: a fence record the host's agent obeys (kills its QEMUs) and acknowledges.
 * Confirmed only by an acknowledgement of this epoch; gives up after FENCE_ACK_TIMEOUT_MS, or when
 * `stopped` says the substrate closed.
 */
export async function storageFence(lab: StorageFenceContext, host: string, epoch: number, stopped: () => boolean): Promise<{ ok: boolean; detail: string }> {
  const startedAt = Date.now();
  for (const ds of lab.manifest.datastores) {
    await rm(lab.layout.fenceAck(ds, host), { force: true });
    await writeAtomic(lab.layout.fence(ds, host), JSON.stringify({ host, epoch, atMs: startedAt }));
  }
  const deadline = startedAt + FENCE_ACK_TIMEOUT_MS;
  while (Date.now() < deadline && !stopped()) {
    for (const ds of lab.manifest.datastores) {
      const ack = await readJson<FenceAck>(lab.layout.fenceAck(ds, host));
      if (ack !== null && ack.epoch === epoch) return { ok: true, detail: `leases revoked; the agent killed ${ack.killed.length} VMs and acknowledged` };
    }
    await new Promise((resolve) => setTimeout(resolve, FENCE_ACK_POLL_MS));
  }
  return { ok: false, detail: 'leases revoked; no acknowledgement from the host (its agent is down or cut off from the datastore)' };
}

/** Lifts a storage fence of `host` (and its acknowledgement) on every datastore. */
export async function liftFence(lab: StorageFenceContext, host: string): Promise<void> {
  for (const ds of lab.manifest.datastores) {
    await rm(lab.layout.fence(ds, host), { force: true });
    await rm(lab.layout.fenceAck(ds, host), { force: true });
  }
}
