/**
 * Restored copies on a host: a VM booted from one of its immutable snapshots into an isolated
 * network, to be checked before it serves. The snapshot itself is never written: the copy boots
 * from a new qcow2 overlay on it (`LAB/datastore/<ds>/restores/<restore>.qcow2`). Its network is
 * QEMU user networking with `restrict=on` (the guest reaches nothing), and its port 80 is forwarded
 * from one port of the host's address, so the control plane — the forensic workstation — can check
 * it and nothing else can reach it. It takes no lease: it never writes the VM's disk. On cut-over the
 * control plane stops it and its overlay becomes the VM's disk (lab-restore.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentHost } from './agent-host.ts';
import type { AgentAnswer, RestoreStartRequest, RestoreStopRequest } from './agent-protocol.ts';
import { createOverlay, launchVm, type RunningVm, stopVm } from './vm.ts';

interface RestoredCopy {
  readonly restoreId: string;
  readonly vm: string;
  readonly qemu: RunningVm;
}

/** The name of a restored copy's QEMU and guest: the VM's name with `-r` (its run files differ from the production copy's). */
export function restoredGuestName(vm: string): string {
  return `${vm}-r`;
}

export class RestoreOperations {
  private readonly copies = new Map<string, RestoredCopy>();

  constructor(private readonly host: AgentHost) {}

  async start(request: RestoreStartRequest): Promise<AgentAnswer> {
    const host = this.host;
    const refused = await host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    if (host.fenced) return { ok: false, reason: `host ${host.name} is fenced` };
    const vm = host.vm(request.vm);
    if (vm === undefined) return { ok: false, reason: `VM ${request.vm} is not in this lab` };
    if (this.copies.has(request.restoreId)) return { ok: false, reason: `restore ${request.restoreId} runs already` };
    if ([...this.copies.values()].some((copy) => copy.vm === vm.name)) return { ok: false, reason: `a restored copy of ${vm.name} runs already on ${host.name}` };
    const snapshot = join(host.layout.snapshots(vm.datastore, vm.name), `${request.snapshotId}.qcow2`);
    if (!existsSync(snapshot)) return { ok: false, reason: `no snapshot ${request.snapshotId} of ${vm.name}` };
    host.log('vm.restoring', { vm: vm.name, restoreId: request.restoreId, snapshotId: request.snapshotId });
    const disk = host.layout.restoreDisk(vm.datastore, request.restoreId);
    await createOverlay({ base: snapshot, overlay: disk });
    const qemu = await launchVm(
      {
        name: restoredGuestName(vm.name),
        image: host.image!,
        runDirectory: host.runDirectory,
        disk,
        isolatedNetwork: { forward: `${host.ownAddress()}:${request.port}` },
        accelerator: host.manifest.accelerator,
        memoryMiB: vm.memoryMiB,
        writeIntervalMs: host.manifest.timings.writeIntervalMs,
      },
      { nowMs: () => Date.now() },
    );
    this.copies.set(request.restoreId, { restoreId: request.restoreId, vm: vm.name, qemu });
    host.log('vm.restored', { vm: vm.name, restoreId: request.restoreId, snapshotId: request.snapshotId, pid: qemu.pid, port: request.port });
    return { ok: true, detail: `pid ${qemu.pid}` };
  }

  /** Stops a restored copy (QEMU flushes its overlay); its disk stays for the cut-over. */
  async stop(request: RestoreStopRequest): Promise<AgentAnswer> {
    const refused = await this.host.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    const copy = this.copies.get(request.restoreId);
    if (copy === undefined) return { ok: true, detail: 'not running here' };
    await stopVm(copy.qemu, { graceMs: 2_000 });
    this.copies.delete(request.restoreId);
    this.host.log('vm.restore-stopped', { vm: copy.vm, restoreId: request.restoreId });
    return { ok: true };
  }
}
