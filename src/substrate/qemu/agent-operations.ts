/**
 * The VM operations a host agent runs for the control plane, through QMP: start a copy (a primary
 * under its lease, a hot standby with its link down, or a migration's paused target), stop it,
 * promote a standby, migrate a copy out and adopt it on the target, weigh its CPU, and snapshot
 * its disk. Every one checks the controller's epoch first and runs alone on its VM; none starts a
 * writable copy without the VM's lease (agent-heartbeat.ts), nor anything on a fenced host.
 */
import { join } from 'node:path';
import { ANNOUNCE, type AgentHost, type AgentInstance } from './agent-host.ts';
import { leaseFor, releaseLease, takeLease } from './agent-heartbeat.ts';
import type { AgentAnswer, MigrateRequest, PromoteRequest, SharesRequest, SnapshotRequest, StartVmRequest, StopVmRequest } from './agent-protocol.ts';
import { run } from './command.ts';
import { type Lease, writeAtomic } from './lab.ts';
import { createTap } from './netns.ts';
import { createOverlay, hotplugDisk, killVm, launchVm, stopVm } from './vm.ts';

/** How long a migration may take before the source cancels it. */
const MIGRATION_TIMEOUT_MS = 30_000;
/** How long the target of a migration waits for QEMU to resume the guest. */
const ADOPT_TIMEOUT_MS = 10_000;
const QMP_POLL_MS = 50;

export class VmOperations {
  constructor(private readonly host: AgentHost) {}

  async startVm(request: StartVmRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    if (host.fenced) return { ok: false, reason: `host ${host.name} is fenced: power it on first` };
    if (!host.storagePathUp) return { ok: false, reason: `host ${host.name} has no path to its datastore` };
    const vm = host.vm(request.vm);
    if (vm === undefined) return { ok: false, reason: `VM ${request.vm} is not in this lab` };
    return host.withVm(request.vm, async () => {
      if (host.instances.has(vm.name)) return { ok: false, reason: `VM ${vm.name} already runs on ${host.name}` };
      const writable = request.role === 'primary';
      const incoming = request.incomingPort !== undefined;
      const disk = host.layout.disk(vm.datastore, vm.name);
      if (writable) {
        await createOverlay({ base: host.image!.baseDisk, overlay: disk });
        // A migration's target takes the lease when the migration completes, not before.
        if (!incoming) {
          const held = await takeLease(host, { vm: vm.name, instanceId: request.instanceId, generation: request.generation });
          if (held !== null) return { ok: false, reason: held };
        }
      }
      const tap = await createTap({ host: host.name, vm: vm.name });
      const qemu = await launchVm(
        {
          name: vm.name,
          image: host.image!,
          runDirectory: host.runDirectory,
          ...(writable ? { disk } : {}),
          network: { tap, address: `${vm.address}/${host.manifest.prefix}`, gateway: host.manifest.rootAddress, mac: vm.mac },
          accelerator: host.manifest.accelerator,
          memoryMiB: vm.memoryMiB,
          writeIntervalMs: host.manifest.timings.writeIntervalMs,
          ...(incoming ? { incoming: `tcp:${host.ownAddress()}:${request.incomingPort}` } : {}),
        },
        { nowMs: () => Date.now() },
      );
      // A hot standby has the service's address and MAC too: its link stays down until promotion.
      if (!writable) await qemu.qmp.execute('set_link', { name: 'net0', up: false });
      const instance: AgentInstance = {
        vm: vm.name,
        instanceId: request.instanceId,
        role: request.role,
        generation: request.generation,
        diskAttached: writable,
        launchedAtMs: Date.now(),
        quarantined: false,
        shares: 1024,
        qemu,
        booted: false,
        paused: incoming,
        leaseRenewedAtMs: performance.now(),
        incoming,
      };
      host.instances.set(vm.name, instance);
      await host.persist(instance);
      host.log('vm.started', { vm: vm.name, instanceId: request.instanceId, role: request.role, pid: qemu.pid, incoming });
      return { ok: true, detail: `pid ${qemu.pid}` };
    });
  }

  async stopVm(request: StopVmRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return host.withVm(request.vm, async () => {
      const instance = host.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: true, detail: 'not running here' };
      // A paused guest (its storage path is down) cannot shut down cleanly: cut it.
      if (instance.paused) await killVm(instance.qemu);
      else await stopVm(instance.qemu, { graceMs: 2_000 });
      await host.forget(instance);
      if (host.storagePathUp) await releaseLease(host, instance);
      host.log('vm.stopped', { vm: instance.vm, instanceId: instance.instanceId });
      return { ok: true };
    });
  }

  /** A hot standby takes over: the lease, the disk (hot-plugged), the link, an announcement. */
  async promote(request: PromoteRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    if (host.fenced) return { ok: false, reason: `host ${host.name} is fenced` };
    return host.withVm(request.vm, async () => {
      const instance = host.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: false, reason: `no standby ${request.instanceId} on ${host.name}` };
      if (instance.role === 'primary') return { ok: true, detail: 'already primary' };
      const held = await takeLease(host, { vm: instance.vm, instanceId: instance.instanceId, generation: request.generation });
      if (held !== null) return { ok: false, reason: held };
      const vm = host.vm(instance.vm)!;
      const disk = host.layout.disk(vm.datastore, vm.name);
      await createOverlay({ base: host.image!.baseDisk, overlay: disk });
      await hotplugDisk(instance.qemu, disk);
      await instance.qemu.qmp.execute('set_link', { name: 'net0', up: true });
      // The same MAC now behind another port: tell the bridges (RARP/GARP self-announcement).
      await instance.qemu.qmp.execute('announce-self', ANNOUNCE).catch(() => undefined);
      instance.role = 'primary';
      instance.diskAttached = true;
      instance.leaseRenewedAtMs = performance.now();
      await host.persist(instance);
      host.log('vm.promoted', { vm: instance.vm, instanceId: instance.instanceId });
      return { ok: true };
    });
  }

  /** Live migration out: QEMU sends the running VM to the target's waiting QEMU; the lease follows. */
  async migrateOut(request: MigrateRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return host.withVm(request.vm, async () => {
      const instance = host.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: false, reason: `VM ${request.vm} does not run here as ${request.instanceId}` };
      const started = Date.now();
      await instance.qemu.qmp.execute('migrate', { uri: `tcp:${request.toAddress}:${request.port}` });
      for (;;) {
        const status = await instance.qemu.qmp.execute<{ status?: string; 'error-desc'?: string; downtime?: number }>('query-migrate');
        if (status.status === 'completed') {
          const downtimeMs = status.downtime ?? null;
          // The source is paused for good now: it must not run again. The target owns the lease.
          await killVm(instance.qemu);
          await host.forget(instance);
          host.log('vm.migrated-out', { vm: instance.vm, to: request.toAddress, ms: Date.now() - started, downtimeMs });
          return { ok: true, detail: `migrated in ${Date.now() - started} ms, downtime ${downtimeMs ?? '?'} ms` };
        }
        if (status.status === 'failed' || status.status === 'cancelled') return { ok: false, reason: `migration ${status.status}: ${status['error-desc'] ?? ''}` };
        if (Date.now() - started > MIGRATION_TIMEOUT_MS) {
          await instance.qemu.qmp.execute('migrate_cancel').catch(() => undefined);
          return { ok: false, reason: 'migration did not complete within 30 s' };
        }
        await new Promise((resolve) => setTimeout(resolve, QMP_POLL_MS));
      }
    });
  }

  /** The target of a migration, once it runs: it takes the lease and announces itself. */
  async adoptMigrated(request: PromoteRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return host.withVm(request.vm, async () => {
      const instance = host.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: false, reason: `no incoming copy ${request.instanceId} here` };
      // QEMU resumes the guest on the target by itself once the whole state has arrived.
      let status = await instance.qemu.qmp.execute<{ running: boolean; status: string }>('query-status');
      for (let waitedMs = 0; !status.running && waitedMs < ADOPT_TIMEOUT_MS; waitedMs += QMP_POLL_MS) {
        await new Promise((resolve) => setTimeout(resolve, QMP_POLL_MS));
        status = await instance.qemu.qmp.execute<{ running: boolean; status: string }>('query-status');
      }
      if (!status.running) return { ok: false, reason: `the incoming copy is ${status.status}, not running` };
      if (instance.role === 'primary') {
        const vm = host.vm(instance.vm)!;
        const taken: Lease = { ...leaseFor(host, instance, Date.now()), generation: request.generation };
        await writeAtomic(host.layout.lease(vm.datastore, vm.name), JSON.stringify(taken));
      }
      // A standby stays off the network; a primary announces its MAC on its new port.
      await instance.qemu.qmp.execute('set_link', { name: 'net0', up: instance.role === 'primary' });
      instance.incoming = false;
      instance.paused = false;
      instance.booted = true;
      instance.leaseRenewedAtMs = performance.now();
      if (instance.role === 'primary') await instance.qemu.qmp.execute('announce-self', ANNOUNCE).catch(() => undefined);
      await host.persist(instance);
      return { ok: true };
    });
  }

  /** CPU weight of a copy: the nice value of its QEMU (shares 1024 = nice 0; double = 5 less). */
  async setShares(request: SharesRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    const instance = host.instances.get(request.vm);
    if (instance === undefined) return { ok: false, reason: `VM ${request.vm} does not run here` };
    const nice = Math.max(-20, Math.min(19, Math.round(-5 * Math.log2(request.shares / 1024))));
    await run(['renice', '-n', String(nice), '-p', String(instance.qemu.pid)]);
    instance.shares = request.shares;
    await host.persist(instance);
    return { ok: true, detail: `nice ${nice}` };
  }

  /**
   * A point-in-time copy of a running VM's disk, made read-only: QMP drive-backup of the overlay's
   * own clusters (`sync: top`; the copy's backing file is the same read-only guest image), a few MiB
   * instead of the whole disk, so the lab can take one every few seconds. Its time is when the
   * backup started: the point in time it holds.
   */
  async snapshot(request: SnapshotRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return host.withVm(request.vm, async () => {
      const instance = host.instances.get(request.vm);
      if (instance === undefined || !instance.diskAttached) return { ok: false, reason: `VM ${request.vm} has no writable copy here` };
      const vm = host.vm(instance.vm)!;
      const directory = host.layout.snapshots(vm.datastore, vm.name);
      const target = join(directory, `${request.snapshotId}.qcow2`);
      const takenAtMs = Date.now();
      await writeAtomic(join(directory, `${request.snapshotId}.json`), JSON.stringify({ id: request.snapshotId, vm: vm.name, takenAtMs, retainUntilMs: request.retainUntilMs, complete: false }));
      const done = instance.qemu.qmp.waitForEvent('BLOCK_JOB_COMPLETED', 30_000, (event) => (event.data as { device?: string } | undefined)?.device === `snap-${request.snapshotId}`.slice(0, 60));
      await instance.qemu.qmp.execute('drive-backup', { 'job-id': `snap-${request.snapshotId}`.slice(0, 60), device: 'disk0', target, sync: 'top', format: 'qcow2', mode: 'absolute-paths' });
      await done;
      await run(['chmod', '0444', target]);
      await writeAtomic(join(directory, `${request.snapshotId}.json`), JSON.stringify({ id: request.snapshotId, vm: vm.name, takenAtMs, retainUntilMs: request.retainUntilMs, complete: true }), 0o444);
      return { ok: true, detail: target };
    });
  }
}
