/**
 * The host agent's heartbeat: the second channel (a record on every datastore), the per-VM leases
 * that make a writable copy legitimate, obedience to a storage fence, and self-fencing. This is
 * the agent's one safety duty — never let an isolated host keep a second writable copy of a VM
 * alive:
 * - a VM's writable copy runs only under a lease on the datastore (`leases/<vm>.json`); the agent
 *   takes the lease before it boots or promotes a copy, and refuses while another host holds it;
 * - it renews its leases every heartbeat; a lease revoked by a storage fence, or taken by another
 *   host, kills the copy at once;
 * - it fences itself — kills every VM it runs — when it has lost both channels: the control plane
 *   has not polled it and it could not renew its leases for longer than the lease minus a margin,
 *   so its copies are dead before anyone else may take the leases;
 * - a storage fence of the whole host (`fence/<host>.json`) kills every VM and is acknowledged on
 *   the datastore; the agent then starts nothing until the fence is lifted (power-on).
 */
import { leaseWaitMs } from '../../ports/liveness.ts';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { ANNOUNCE, type AgentHost, type AgentInstance } from './agent-host.ts';
import { type FenceAck, type FenceRecord, type HeartbeatRecord, type Lease, readJson, type Revocation, revokes, writeAtomic } from './lab.ts';
import { processAlive } from './vm.ts';

/** Time left on a lease when an agent that cannot renew it stops its copy. */
const SELF_FENCE_MARGIN_MS = 1_000;

export class AgentHeartbeat {
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;

  constructor(private readonly host: AgentHost) {}

  /** Beats every `heartbeatMs` of the lab's timings, the first time at once. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.tick(), this.host.manifest.timings.heartbeatMs);
    await this.tick();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Every heartbeat: the datastore heartbeat and the leases first (they are what keeps the host
   * trusted and its copies legitimate), then the bookkeeping of each copy. Nothing here waits on a
   * guest: a QEMU busy with a migration must not delay the heartbeat.
   */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    const host = this.host;
    try {
      const now = Date.now();
      const pathUp = !existsSync(host.layout.fault(host.name, 'storage-path-down'));
      if (pathUp !== host.storagePathUp) await this.storagePathChanged(pathUp);
      if (host.storagePathUp) {
        await this.writeHeartbeats(now);
        if (!host.fenced && (await fenceStanding(host))) await this.obeyFence();
        await this.renewLeases(now);
      } else {
        await this.selfFenceIfSilent(now);
      }
      await this.reapAndNoticeBoots(now);
    } catch (error) {
      host.log('tick.error', { error: error instanceof Error ? error.message : String(error) });
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Lost the datastore: the leases cannot be renewed. If the control plane is silent too, nobody
   * can tell this host to stop: stop before the leases run out.
   */
  private async selfFenceIfSilent(_wallNow: number): Promise<void> {
    const host = this.host;
    // Both intervals on this process's monotonic clock: a step of the wall clock kills nothing.
    const now = performance.now();
    const silentMs = now - host.lastHeardMs;
    const limit = host.manifest.timings.leaseMs - SELF_FENCE_MARGIN_MS;
    for (const instance of [...host.instances.values()]) {
      if (instance.role !== 'primary' || !instance.diskAttached) continue;
      if (silentMs > limit && now - instance.leaseRenewedAtMs > limit) {
        await host.kill(instance, 'self-fence: lost both the control plane and the datastore (its lease cannot be renewed)');
      }
    }
  }

  /** Reaps copies whose QEMU is gone (it crashed, or someone killed it); notices boots. */
  private async reapAndNoticeBoots(now: number): Promise<void> {
    const host = this.host;
    for (const instance of [...host.instances.values()]) {
      if (!processAlive(instance.qemu.pid)) {
        if (host.instances.get(instance.vm) !== instance) continue;
        host.instances.delete(instance.vm);
        instance.qemu.qmp.close();
        await rm(host.recordFile(instance.vm), { force: true });
        host.log('vm.exited', { vm: instance.vm, instanceId: instance.instanceId });
      } else if (!instance.booted && !instance.incoming && (await host.consoleShowsBoot(instance.vm))) {
        instance.booted = true;
        host.log('vm.booted', { vm: instance.vm, afterMs: now - instance.launchedAtMs });
        // A copy restarted here has a MAC the bridges last saw behind another host: announce it
        // (segmentation drops the guest's own IPv6 chatter that used to teach them).
        if (instance.role === 'primary') void instance.qemu.qmp.execute('announce-self', ANNOUNCE).catch(() => undefined);
      }
    }
  }

  private async writeHeartbeats(now: number): Promise<void> {
    const record: HeartbeatRecord = { host: this.host.name, atMs: now, seq: ++this.seq };
    for (const ds of this.host.manifest.datastores) await writeAtomic(this.host.layout.heartbeat(ds, this.host.name), JSON.stringify(record));
  }

  private async renewLeases(now: number): Promise<void> {
    const host = this.host;
    for (const instance of [...host.instances.values()]) {
      if (instance.role !== 'primary' || !instance.diskAttached || instance.incoming) continue;
      const vm = host.vm(instance.vm)!;
      const file = host.layout.lease(vm.datastore, vm.name);
      const lease = await readJson<Lease>(file);
      const revocation = await readJson<Revocation>(host.layout.revocation(vm.datastore, vm.name));
      if (revokes(revocation, { host: host.name, instanceId: instance.instanceId })) {
        await host.kill(instance, `self-fence: its lease was revoked by a storage fence (controller epoch ${revocation!.epoch})`);
        continue;
      }
      if (lease !== null && lease.host !== host.name && otherHolderWaitMs(host, lease) > 0) {
        await host.kill(instance, `self-fence: host ${lease.host} holds its lease`);
        continue;
      }
      await writeAtomic(file, JSON.stringify(leaseFor(host, instance, now)));
      instance.leaseRenewedAtMs = performance.now();
    }
  }

  /** A storage fence of this host: kill everything, acknowledge on the datastore, start nothing. */
  private async obeyFence(): Promise<void> {
    const host = this.host;
    host.fenced = true;
    const killed: string[] = [];
    for (const instance of [...host.instances.values()]) {
      await host.kill(instance, 'storage fence of the host');
      killed.push(instance.vm);
    }
    for (const ds of host.manifest.datastores) {
      const fence = await readJson<FenceRecord>(host.layout.fence(ds, host.name));
      if (fence === null) continue;
      const ack: FenceAck = { host: host.name, epoch: fence.epoch, atMs: Date.now(), killed };
      await writeAtomic(host.layout.fenceAck(ds, host.name), JSON.stringify(ack));
    }
    host.log('host.fenced', { method: 'storage', killed });
  }

  private async storagePathChanged(up: boolean): Promise<void> {
    const host = this.host;
    host.storagePathUp = up;
    // All paths down: the guests' disk I/O stalls, as it does on a real host (QEMU pauses them).
    for (const instance of host.instances.values()) {
      if (!instance.diskAttached) continue;
      await instance.qemu.qmp.execute(up ? 'cont' : 'stop', undefined, 2_000).catch(() => undefined);
      instance.paused = !up;
    }
    host.log(up ? 'storage.path-restored' : 'storage.path-lost');
  }
}

/** The lease a copy of this host holds from `now` for the lab's lease time. */
export function leaseFor(host: AgentHost, instance: AgentInstance, now: number): Lease {
  return {
    vm: instance.vm,
    host: host.name,
    instanceId: instance.instanceId,
    epoch: host.epoch,
    generation: instance.generation,
    renewedAtMs: now,
    expiresAtMs: now + host.manifest.timings.leaseMs,
  };
}

/** Takes a VM's lease for a copy that is about to write; refuses while another host holds it. */
export async function takeLease(host: AgentHost, instance: Pick<AgentInstance, 'vm' | 'instanceId' | 'generation'>): Promise<string | null> {
  const vm = host.vm(instance.vm)!;
  const file = host.layout.lease(vm.datastore, vm.name);
  const now = Date.now();
  const lease = await readJson<Lease>(file);
  const revocation = await readJson<Revocation>(host.layout.revocation(vm.datastore, vm.name));
  if (lease !== null && lease.host !== host.name && !revokes(revocation, lease)) {
    // Held by another host and not revoked: free only once this agent has watched it not change for a lease time.
    const waitMs = otherHolderWaitMs(host, lease);
    if (waitMs > 0) return `host ${lease.host} holds the lease of ${vm.name}: it is free if not renewed within ${Math.ceil(waitMs / 100) / 10} s`;
  }
  const taken: Lease = { vm: vm.name, host: host.name, instanceId: instance.instanceId, epoch: host.epoch, generation: instance.generation, renewedAtMs: now, expiresAtMs: now + host.manifest.timings.leaseMs };
  await writeAtomic(file, JSON.stringify(taken));
  return null;
}

/**
 * How long another holder's lease still stands as this agent sees it: a lease time after this agent
 * last saw it renewed (its content change), on this agent's monotonic clock. The expiry the holder
 * wrote is its own clock's and is never compared with ours.
 */
function otherHolderWaitMs(host: AgentHost, lease: Lease): number {
  const content = `${lease.host}:${lease.instanceId}:${lease.epoch}:${lease.renewedAtMs}`;
  return leaseWaitMs(host.leaseWatch, lease.vm, content, performance.now(), host.manifest.timings.leaseMs);
}

/** Gives a stopped copy's lease back, if it is still this copy's. */
export async function releaseLease(host: AgentHost, instance: AgentInstance): Promise<void> {
  const vm = host.vm(instance.vm)!;
  const file = host.layout.lease(vm.datastore, vm.name);
  const lease = await readJson<Lease>(file);
  if (lease !== null && lease.host === host.name && lease.instanceId === instance.instanceId) await rm(file, { force: true });
}

/** Whether a storage fence of this host stands on any datastore. */
export async function fenceStanding(host: AgentHost): Promise<boolean> {
  for (const ds of host.manifest.datastores) {
    if (existsSync(host.layout.fence(ds, host.name))) return true;
  }
  return false;
}
