/**
 * Restores on the lab, the control plane's side (the Substrate port's `restoreSnapshot`,
 * `restoreStatus`, `promoteRestored`): a snapshot booted by a host agent into an isolated network
 * (agent-restore.ts), checked from the forensic workstation (this process: the guest answers its
 * health check and reads every one of its documents clean), and on cut-over put in the VM's place:
 * the restored copy stops (QEMU flushes), every infected production copy stops and its quarantine
 * is lifted on its host, the infected disk is kept as evidence, the restored copy's disk becomes the
 * VM's disk, and the VM starts from it under its lease with its own address — one copy at a time,
 * never two.
 */
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ActionOutcome, FencingToken, RestoreObservation, RestoreRequest, SnapshotObservation } from '../../ports/index.ts';
import type { AgentClient } from './agent-client.ts';
import type { FencingTokens } from './fencing-tokens.ts';
import type { LabLayout, LabManifest } from './lab.ts';
import type { LabObserver } from './observer.ts';
import { revokeStoppedLease, type StorageFenceContext } from './storage-fence.ts';

/** Restored copies' forwarded ports on their host's address: base + the VM's index × 10 + the restore's count. */
const RESTORE_PORT_BASE = 18_000;
const HEALTH_TIMEOUT_MS = 1_000;
/** The guest reads 16 documents' first sectors; under TCG beside six guests that takes a while. */
const VERIFY_TIMEOUT_MS = 10_000;
/** How long a copy started here is kept although its agent's state does not show it yet. */
const EXPECTED_FOR_MS = 30_000;

interface RestoredCopy {
  readonly id: string;
  readonly vm: string;
  readonly snapshotId: string;
  readonly host: string;
  readonly port: number;
  readonly restorePointMs: number;
  /** It answered its health check once: it runs. */
  running: boolean;
}

/** What the guest's /cgi-bin/verify printed: its documents, clean, encrypted (TMRCRYPT) or unreadable. */
export interface DocumentCheck {
  readonly files: number;
  readonly clean: number;
  readonly encrypted: number;
  readonly unreadable: number;
}

export function parseDocumentCheck(text: string | null): DocumentCheck | null {
  const match = /files (\d+) clean (\d+) encrypted (\d+) unreadable (\d+)/.exec(text ?? '');
  if (match === null) return null;
  return { files: Number(match[1]), clean: Number(match[2]), encrypted: Number(match[3]), unreadable: Number(match[4]) };
}

export interface LabRestoreContext extends StorageFenceContext {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly agents: AgentClient;
  readonly observer: LabObserver;
  readonly tokens: FencingTokens;
  readonly listSnapshots: (vm: string) => Promise<readonly SnapshotObservation[]>;
}

export class LabRestores {
  private readonly copies = new Map<string, RestoredCopy>();
  private count = 0;

  constructor(private readonly lab: LabRestoreContext) {}

  async restore(request: RestoreRequest): Promise<ActionOutcome> {
    const { lab } = this;
    const refused = lab.tokens.check(request.token, null);
    if (refused !== null) return refused;
    if (request.network !== 'recovery') return { ok: false, reason: 'restore into the recovery network, verify it, then promote it (never two running copies)' };
    const vmIndex = lab.manifest.vms.findIndex((vm) => vm.name === request.vm);
    if (vmIndex < 0) return { ok: false, reason: `VM ${request.vm} is not in the lab` };
    if (lab.observer.host(request.host)?.poweredOn !== true) return { ok: false, reason: `host ${request.host} is not up` };
    const snapshot = (await lab.listSnapshots(request.vm)).find((candidate) => candidate.id === request.snapshotId);
    if (snapshot === undefined) return { ok: false, reason: `no snapshot ${request.snapshotId} of ${request.vm}` };
    // A restore given up (it failed its check) is stopped before the next one of the same VM boots.
    for (const previous of [...this.copies.values()].filter((copy) => copy.vm === request.vm)) await this.discard(previous, request.token.epoch);
    this.count += 1;
    const id = `restore-${request.vm}-${this.count}`;
    const port = RESTORE_PORT_BASE + vmIndex * 10 + (this.count % 10);
    const answer = await lab.agents.post(request.host, '/vms/restore', { epoch: request.token.epoch, vm: request.vm, restoreId: id, snapshotId: snapshot.id, port });
    if (!answer.ok) return answer;
    this.copies.set(id, { id, vm: request.vm, snapshotId: snapshot.id, host: request.host, port, restorePointMs: snapshot.takenAtMs, running: false });
    return { ok: true, detail: id };
  }

  /** Healthy only when the guest answers its health check and reads all its documents clean. */
  async status(restoreId: string): Promise<RestoreObservation | null> {
    const copy = this.copies.get(restoreId);
    if (copy === undefined) return null;
    const healthy = await this.verified(copy);
    return { id: copy.id, vm: copy.vm, snapshotId: copy.snapshotId, host: copy.host, network: 'recovery', state: copy.running ? 'running' : 'booting', healthy, restorePointMs: copy.restorePointMs };
  }

  async promote(request: { token: FencingToken; vm: string; restoreId: string }): Promise<ActionOutcome> {
    const { lab } = this;
    const copy = this.copies.get(request.restoreId);
    if (copy === undefined || copy.vm !== request.vm) return { ok: false, reason: `no restored copy ${request.restoreId} of ${request.vm}` };
    if (!(await this.verified(copy))) return { ok: false, reason: `restored copy ${copy.id} has not passed its check` };
    const vm = lab.manifest.vms.find((candidate) => candidate.name === request.vm)!;
    const epoch = request.token.epoch;
    const evidence = lab.layout.evidenceDisk(vm.datastore, `${vm.name}-${copy.id}`);
    // Everything that can fail without stopping a copy is done first.
    await mkdir(dirname(evidence), { recursive: true });
    return lab.tokens.vmAction(request.token, request.vm, async (generation) => {
      const stopped = await lab.agents.post(copy.host, '/vms/restore-stop', { epoch, vm: vm.name, restoreId: copy.id });
      if (!stopped.ok) return stopped;
      this.copies.delete(copy.id);
      for (const infected of lab.observer.copiesOf(vm.name)) {
        const answer = await lab.agents.post(infected.host, '/vms/stop', { epoch, vm: vm.name, instanceId: infected.id });
        if (!answer.ok) return { ok: false, reason: `the infected copy ${infected.id} did not stop: ${answer.reason}` };
        await revokeStoppedLease(lab, { datastore: vm.datastore, vm: vm.name, host: infected.host, instanceId: infected.id, epoch });
        lab.observer.removed(infected.id, vm.name, infected.host);
        await lab.agents.post(infected.host, '/vms/quarantine', { epoch, vm: vm.name, quarantined: false, allow: [] });
      }
      // The infected disk is evidence; the verified one takes its place.
      await rename(lab.layout.disk(vm.datastore, vm.name), evidence);
      await rename(lab.layout.restoreDisk(vm.datastore, copy.id), lab.layout.disk(vm.datastore, vm.name));
      const instanceId = `${vm.name}.g${generation}`;
      lab.observer.expect(instanceId, Date.now() + EXPECTED_FOR_MS);
      const started = await lab.agents.post(copy.host, '/vms/start', { epoch, vm: vm.name, instanceId, generation, role: 'primary' });
      if (!started.ok) {
        lab.observer.unexpect(instanceId);
        return started;
      }
      lab.observer.changed({ id: instanceId, vm: vm.name, host: copy.host, role: 'primary', state: 'booting', healthy: false, synced: true, datastore: vm.datastore, pid: Number(/pid (\d+)/.exec(started.detail ?? '')?.[1] ?? 0) });
      return { ok: true, detail: `${instanceId} on ${copy.host} from ${copy.snapshotId}`, restorePointMs: copy.restorePointMs };
    });
  }

  /** Stops every restored copy still running (the drill's end). */
  async close(epoch: number): Promise<void> {
    for (const copy of [...this.copies.values()]) await this.discard(copy, epoch);
  }

  private async discard(copy: RestoredCopy, epoch: number): Promise<void> {
    await this.lab.agents.post(copy.host, '/vms/restore-stop', { epoch, vm: copy.vm, restoreId: copy.id });
    this.copies.delete(copy.id);
  }

  private async verified(copy: RestoredCopy): Promise<boolean> {
    const address = this.lab.observer.host(copy.host)?.address;
    if (address === undefined) return false;
    const health = await fetchText(`http://${address}:${copy.port}/health`, HEALTH_TIMEOUT_MS);
    if (health?.trim() !== 'ok') return false;
    copy.running = true;
    const check = parseDocumentCheck(await fetchText(`http://${address}:${copy.port}/cgi-bin/verify`, VERIFY_TIMEOUT_MS));
    return check !== null && check.files > 0 && check.clean === check.files;
  }
}

async function fetchText(url: string, timeoutMs: number): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}
