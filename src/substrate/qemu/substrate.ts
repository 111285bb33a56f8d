/**
 * The `qemu` substrate: real VMs behind the same Substrate port as the twin. It runs in the
 * control plane (the root namespace) and talks to one host agent per host over the lab network,
 * with the agents' bearer token (agent-client.ts). What the controller sees comes from the real
 * parts (observer.ts); this module is the port's fenced actions:
 *
 * - every action checks its fencing token as the twin does (fencing-tokens.ts), and the agents
 *   check the epoch again;
 * - fencing is both methods at once, either confirms: storage (the host's leases revoked and a
 *   fence record on the datastore, acknowledged by the host's agent once its QEMUs are dead;
 *   storage-fence.ts) and power (through each host's fence agent — fence_ipmilan against the lab's
 *   IPMI BMCs — as the fencing file says; fence-power.ts), or, without a fencing file, the
 *   simulated power controller that kills everything in the host's namespace;
 * - snapshots are immutable inside their retention, for every caller.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  ActionOutcome,
  Clock,
  FenceAgentOutcome,
  FencingToken,
  RestoreObservation,
  RestoreRequest,
  SnapshotObservation,
  StartRequest,
  Substrate,
  SubstrateEvent,
  SubstrateSnapshot,
  VmMetrics,
  VmSecuritySample,
} from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import type { SegmentationPolicy } from '../../model/segmentation.ts';
import { AgentClient } from './agent-client.ts';
import { FencingTokens } from './fencing-tokens.ts';
import { type LabLayout, type LabManifest, type Lease, readJson } from './lab.ts';
import { liveCopies, type LiveCopies } from './live-copies.ts';
import { networkRules } from './network-policy.ts';
import { LabObserver, type ObservedInstance } from './observer.ts';
import { PowerController } from './power.ts';
import { fenceOutcome, FencePower } from './fence-power.ts';
import { liftFence, revokeLeases, revokeStoppedLease, storageFence } from './storage-fence.ts';
import { LabRestores } from './lab-restore.ts';
import { SecurityTelemetry } from './security-telemetry.ts';

export { networkRules } from './network-policy.ts';

/** Each VM has its own range of migration ports on the target host (its index × 100 + generation). */
const MIGRATION_PORT_BASE = 50_000;
/** How long a copy started here is kept although its agent's state does not show it yet. */
const EXPECTED_FOR_MS = 30_000;

export interface QemuSubstrateOptions {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly blueprint: Blueprint;
  readonly token: string;
  readonly clock: Clock;
  /** How often the agents are polled and the guests probed. */
  readonly pollMs?: number;
  /** Silence on a channel longer than this is reported as a lost heartbeat. */
  readonly missedAfterMs?: number;
  /**
   * The power-fencing file (fence agents per host, outside the blueprint); default: the lab's own
   * (`LAB/fencing.json`) when it exists, else the simulated power controller.
   */
  readonly fencingFile?: string;
}

export class QemuSubstrate implements Substrate {
  readonly name = 'qemu';
  private readonly power: PowerController;
  /** Power fencing through fence agents (fence_ipmilan…), when a fencing file is configured. */
  private fencePower: FencePower | null = null;
  private readonly agents: AgentClient;
  private readonly tokens: FencingTokens;
  private readonly observer: LabObserver;
  private readonly vmAddress: ReadonlyMap<string, string>;
  private readonly vmDatastore: ReadonlyMap<string, string>;
  /** Hosts being fenced, so a fence is not raced by a start on the same host. */
  private readonly fencing = new Set<string>();
  private readonly telemetry: SecurityTelemetry;
  private readonly restores: LabRestores;

  constructor(private readonly options: QemuSubstrateOptions) {
    this.power = new PowerController(options.layout, options.manifest);
    this.agents = new AgentClient(options.manifest, options.token);
    this.tokens = new FencingTokens(options.layout.controlDirectory);
    this.observer = new LabObserver({
      layout: options.layout,
      manifest: options.manifest,
      clock: options.clock,
      client: this.agents,
      pollMs: options.pollMs ?? options.manifest.timings.heartbeatMs,
      missedAfterMs: options.missedAfterMs ?? 3 * options.manifest.timings.heartbeatMs,
    });
    this.vmAddress = new Map(options.manifest.vms.map((vm) => [vm.name, vm.address]));
    this.vmDatastore = new Map(options.manifest.vms.map((vm) => [vm.name, vm.datastore]));
    this.telemetry = new SecurityTelemetry(this.vmAddress);
    this.restores = new LabRestores({ layout: options.layout, manifest: options.manifest, agents: this.agents, observer: this.observer, tokens: this.tokens, listSnapshots: (vm) => this.listSnapshots(vm) });
  }

  /** Loads the persisted epoch and generations, reads every host once, then polls. */
  async open(): Promise<void> {
    await this.tokens.load();
    this.fencePower = FencePower.load(this.options.fencingFile, this.options.layout, this.options.manifest, async (host) => (await this.agents.state(host)) !== null);
    const fencePower = this.fencePower;
    await this.observer.open(async (host) => (await (fencePower ?? this.power).state(host)) === 'on');
  }

  close(): void {
    this.observer.close();
    this.agents.close();
  }

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    return this.observer.subscribe(listener);
  }

  snapshot(): Promise<SubstrateSnapshot> {
    return Promise.resolve(this.observer.snapshot(this.tokens.vmGenerations()));
  }

  async metrics(): Promise<readonly VmMetrics[]> {
    return this.observer.metrics();
  }

  claimEpoch(token: FencingToken): Promise<ActionOutcome> {
    const refused = this.tokens.check(token, null);
    if (refused !== null) return Promise.resolve(refused);
    return Promise.resolve({ ok: true });
  }

  // ── Copies ───────────────────────────────────────────────────────────────────────────────────

  async startVm(request: StartRequest): Promise<ActionOutcome> {
    if (!this.vmAddress.has(request.vm)) return { ok: false, reason: `VM ${request.vm} is not in the lab` };
    if (this.fencing.has(request.host)) return { ok: false, reason: `host ${request.host} is being fenced` };
    return this.tokens.vmAction(request.token, request.vm, async (generation) => {
      const instanceId = `${request.vm}.g${generation}`;
      this.observer.expect(instanceId, Date.now() + EXPECTED_FOR_MS);
      const answer = await this.agents.post(request.host, '/vms/start', { epoch: request.token.epoch, vm: request.vm, instanceId, generation, role: request.role });
      if (!answer.ok) {
        this.observer.unexpect(instanceId);
        return answer;
      }
      this.observer.changed({
        id: instanceId,
        vm: request.vm,
        host: request.host,
        role: request.role,
        state: 'booting',
        healthy: false,
        synced: request.role === 'primary',
        datastore: request.datastore,
        pid: Number(/pid (\d+)/.exec(answer.detail ?? '')?.[1] ?? 0),
      });
      return { ok: true, detail: `${instanceId} on ${request.host}` };
    });
  }

  async stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): Promise<ActionOutcome> {
    return this.tokens.vmAction(request.token, request.vm, async () => {
      const answer = await this.agents.post(request.host, '/vms/stop', { epoch: request.token.epoch, vm: request.vm, instanceId: request.instanceId });
      if (!answer.ok) return answer;
      // Its host confirmed the copy is gone; a host cut off from the datastore could not release
      // the lease itself, so the control plane revokes it for the next copy.
      const datastore = this.vmDatastore.get(request.vm)!;
      await revokeStoppedLease(this.options, { datastore, vm: request.vm, host: request.host, instanceId: request.instanceId, epoch: request.token.epoch });
      this.observer.removed(request.instanceId, request.vm, request.host);
      return { ok: true };
    });
  }

  async promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): Promise<ActionOutcome> {
    const instance = this.observer.instance(request.instanceId);
    if (instance === undefined) return { ok: false, reason: `no copy ${request.instanceId}` };
    return this.tokens.vmAction(request.token, request.vm, async (generation) => {
      const answer = await this.agents.post(instance.host, '/vms/promote', { epoch: request.token.epoch, vm: request.vm, instanceId: request.instanceId, generation });
      if (!answer.ok) return answer;
      this.observer.changed({ ...instance, role: 'primary' as const, synced: true, healthy: false }, { resetProbes: true });
      return { ok: true };
    });
  }

  /**
   * Live migration: a paused QEMU waits on the target host for the VM's state over TCP, the
   * source sends it (QEMU's own migration: memory first, a short stop for the rest), then the
   * target takes the lease and announces the VM's MAC on its new port.
   */
  async migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): Promise<ActionOutcome> {
    const source = this.observer.instance(request.instanceId);
    const target = this.observer.host(request.toHost);
    if (source === undefined || target === undefined) return { ok: false, reason: `no copy ${request.instanceId} or no host ${request.toHost}` };
    return this.tokens.vmAction(request.token, request.vm, async (generation) => {
      // The copy keeps its identity across hosts (as on the twin): the same instance, moved.
      const instanceId = source.id;
      const vmIndex = this.options.manifest.vms.findIndex((vm) => vm.name === request.vm);
      const port = MIGRATION_PORT_BASE + vmIndex * 100 + (generation % 100);
      const incoming = await this.agents.post(request.toHost, '/vms/start', { epoch: request.token.epoch, vm: request.vm, instanceId, generation, role: source.role, incomingPort: port });
      if (!incoming.ok) return incoming;
      const sent = await this.agents.post(source.host, '/vms/migrate', { epoch: request.token.epoch, vm: request.vm, instanceId, toAddress: target.address, port });
      if (!sent.ok) {
        await this.agents.post(request.toHost, '/vms/stop', { epoch: request.token.epoch, vm: request.vm, instanceId });
        return sent;
      }
      const adopted = await this.agents.post(request.toHost, '/vms/adopt', { epoch: request.token.epoch, vm: request.vm, instanceId, generation });
      if (!adopted.ok) return adopted;
      const moved: ObservedInstance = { ...source, host: request.toHost, state: 'running', healthy: source.healthy, pid: Number(/pid (\d+)/.exec(incoming.detail ?? '')?.[1] ?? 0) };
      this.observer.changed(moved);
      return { ok: true, detail: sent.detail ?? 'migrated' };
    });
  }

  async setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): Promise<ActionOutcome> {
    const refused = this.tokens.check(request.token, null);
    if (refused !== null) return refused;
    const instance = this.observer.instance(request.instanceId);
    if (instance === undefined) return { ok: false, reason: `no copy ${request.instanceId}` };
    return this.agents.post(instance.host, '/vms/shares', { epoch: request.token.epoch, vm: request.vm, shares: Math.round(request.shares) });
  }

  // ── Hosts ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Both fencing methods at once; the answer is "accepted", the confirmations arrive as
   * `fence.completed` events (as on the twin). Storage: every lease the host holds is revoked and
   * a fence record is written; its agent, if alive and on the datastore, kills its QEMUs and
   * acknowledges. Power: the power controller cuts the host.
   */
  async fenceHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    const refused = this.tokens.check(request.token, null);
    if (refused !== null) return refused;
    if (this.observer.host(request.host) === undefined) return { ok: false, reason: `unknown host ${request.host}` };
    this.fencing.add(request.host);
    // The host's leases are revoked before either method runs: once a fence is confirmed, no
    // lease of the host stands in the way of a standby taking over.
    await revokeLeases(this.options, request.host, request.token.epoch);
    let confirmed = false;
    const confirm = (method: 'storage' | 'power', ok: boolean, detail: string, agent?: FenceAgentOutcome) => {
      if (this.observer.closed) return;
      if (ok && !confirmed) {
        confirmed = true;
        this.fencing.delete(request.host);
        this.observer.hostFenced(request.host);
      }
      this.observer.emit({ type: 'fence.completed', host: request.host, method, ok, detail, ...(agent === undefined ? {} : { agent }) });
    };
    void storageFence(this.options, request.host, request.token.epoch, () => this.observer.closed).then(
      (result) => confirm('storage', result.ok, result.detail),
      (error: unknown) => confirm('storage', false, String(error)),
    );
    if (this.fencePower !== null) {
      // Through the host's fence agent: confirmed only when its status answers off. An agent that
      // hangs, fails or lies leaves the power method failed; the storage method may still confirm
      // (a live agent on the datastore kills its VMs), and if neither does, nothing is restarted.
      void this.fencePower.off(request.host, () => this.observer.closed).then(
        (result) => {
          if (result.ok) this.observer.poweredOff(request.host);
          confirm('power', result.ok, result.detail, fenceOutcome(result));
        },
        (error: unknown) => confirm('power', false, String(error)),
      );
    } else {
      void this.power.off(request.host).then(
        (result) => {
          this.observer.poweredOff(request.host);
          confirm('power', result.confirmed, result.confirmed ? `power off, ${result.killed} processes killed, none left` : 'processes survived the power cut');
        },
        (error: unknown) => confirm('power', false, String(error)),
      );
    }
    return { ok: true, detail: 'fencing by storage and power' };
  }

  async powerOnHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    const refused = this.tokens.check(request.token, null);
    if (refused !== null) return refused;
    if (this.observer.host(request.host) === undefined) return { ok: false, reason: `unknown host ${request.host}` };
    // A powered-on host's agent may be running already (the host was storage-fenced only): cut it first.
    if (this.fencePower !== null) {
      const off = await this.fencePower.off(request.host);
      if (!off.ok) return { ok: false, reason: off.detail };
      await liftFence(this.options, request.host);
      const on = await this.fencePower.on(request.host);
      if (!on.ok) return { ok: false, reason: on.detail };
    } else {
      await this.power.off(request.host);
      await liftFence(this.options, request.host);
      try {
        await this.power.on(request.host);
      } catch (error) {
        return { ok: false, reason: error instanceof Error ? error.message : String(error) };
      }
    }
    this.observer.poweredOnAgain(request.host);
    return { ok: true };
  }

  // ── Snapshots ────────────────────────────────────────────────────────────────────────────────

  async listSnapshots(vm: string): Promise<readonly SnapshotObservation[]> {
    const ds = this.vmDatastore.get(vm);
    if (ds === undefined) return [];
    const directory = this.options.layout.snapshots(ds, vm);
    const snapshots: SnapshotObservation[] = [];
    for (const file of await readdir(directory).catch(() => [] as string[])) {
      if (!file.endsWith('.json')) continue;
      const record = await readJson<{ id: string; takenAtMs: number; retainUntilMs: number; complete: boolean }>(join(directory, file));
      if (record === null || !record.complete) continue;
      snapshots.push({ id: record.id, vm, datastore: ds, takenAtMs: this.observer.clockAt(record.takenAtMs), retainUntilMs: this.observer.clockAt(record.retainUntilMs), immutable: true, digest: record.id });
    }
    return snapshots.sort((a, b) => a.takenAtMs - b.takenAtMs);
  }

  /** Immutability is enforced here, for every caller: a snapshot inside its retention is never deleted. */
  async deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): Promise<ActionOutcome> {
    const refused = this.tokens.check(request.token, null);
    if (refused !== null) return refused;
    for (const vm of this.vmDatastore.keys()) {
      const snapshot = (await this.listSnapshots(vm)).find((candidate) => candidate.id === request.snapshotId);
      if (snapshot === undefined) continue;
      if (snapshot.retainUntilMs > this.options.clock.nowMs()) {
        this.telemetry.deletionRefused(vm);
        return { ok: false, reason: `snapshot ${request.snapshotId} is immutable until its retention ends (${Math.round((snapshot.retainUntilMs - this.options.clock.nowMs()) / 1000)} s)` };
      }
      const directory = this.options.layout.snapshots(this.vmDatastore.get(vm)!, vm);
      await rm(join(directory, `${request.snapshotId}.qcow2`), { force: true });
      await rm(join(directory, `${request.snapshotId}.json`), { force: true });
      return { ok: true };
    }
    return { ok: false, reason: `no snapshot ${request.snapshotId}` };
  }

  /**
   * Takes a snapshot of the VM's running primary now (its host's agent: QMP drive-backup into the
   * datastore's snapshot directory, read-only, immutable until `retainMs` from now). The twin takes
   * its snapshots on the tier's schedule itself; on the lab the drill drives the schedule.
   */
  async takeSnapshot(request: { epoch: number; vm: string; retainMs: number }): Promise<ActionOutcome> {
    const primary = this.observer.copiesOf(request.vm).find((copy) => copy.role === 'primary' && copy.state === 'running');
    if (primary === undefined) return { ok: false, reason: `${request.vm} has no running primary` };
    const snapshotId = `${request.vm}-${Date.now()}`;
    return this.agents.post(primary.host, '/vms/snapshot', { epoch: request.epoch, vm: request.vm, snapshotId, retainUntilMs: Date.now() + request.retainMs });
  }

  // ── Security: telemetry and restores (security-telemetry.ts, lab-restore.ts) ─────────────────

  /** One sample per running primary: every powered-on host's agent closes its window now. */
  async securityTelemetry(): Promise<readonly VmSecuritySample[]> {
    const readings = await Promise.all(this.observer.poweredOnHosts().map((host) => this.agents.telemetry(host)));
    const serving = (instanceId: string) => {
      const copy = this.observer.instance(instanceId);
      return copy !== undefined && copy.state === 'running';
    };
    return this.telemetry.samples(readings.filter((reading) => reading !== null), { atMs: this.options.clock.nowMs(), serving });
  }

  restoreSnapshot(request: RestoreRequest): Promise<ActionOutcome> {
    return this.restores.restore(request);
  }

  restoreStatus(restoreId: string): Promise<RestoreObservation | null> {
    return this.restores.status(restoreId);
  }

  promoteRestored(request: { token: FencingToken; vm: string; restoreId: string }): Promise<ActionOutcome> {
    return this.restores.promote(request);
  }

  /** Stops the restored copies still running (a drill's end). */
  closeRestores(epoch: number): Promise<void> {
    return this.restores.close(epoch);
  }

  // ── Network ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Enforces a segmentation policy on every host's bridge (nftables, default deny for VM traffic):
   * VMs by their addresses, networks by their blueprint CIDR; the control plane's address keeps
   * reaching every VM (its health probes).
   */
  async applyNetworkPolicy(request: { token: FencingToken; policy: SegmentationPolicy }): Promise<ActionOutcome> {
    const refused = this.tokens.check(request.token, null);
    if (refused !== null) return refused;
    const rules = networkRules(request.policy, this.options.blueprint, this.vmAddress);
    const body = { epoch: request.token.epoch, monitor: [this.options.manifest.rootAddress], rules };
    const answers = await Promise.all(this.observer.poweredOnHosts().map(async (host) => [host, await this.agents.post(host, '/policy', body)] as const));
    const failed = answers.filter(([, answer]) => !answer.ok);
    if (failed.length > 0) return { ok: false, reason: failed.map(([host, answer]) => `${host}: ${answer.ok ? '' : answer.reason}`).join('; ') };
    return { ok: true, detail: `${rules.length} address rules on ${answers.length} hosts` };
  }

  /** Quarantine at the host's virtual switch (nftables), leaving the VM the forensic address only. */
  async quarantineVm(request: { token: FencingToken; vm: string }): Promise<ActionOutcome> {
    return this.setQuarantine(request, true);
  }

  async releaseVm(request: { token: FencingToken; vm: string }): Promise<ActionOutcome> {
    return this.setQuarantine(request, false);
  }

  private async setQuarantine(request: { token: FencingToken; vm: string }, quarantined: boolean): Promise<ActionOutcome> {
    const refused = this.tokens.check(request.token, null);
    if (refused !== null) return refused;
    const copies = this.observer.copiesOf(request.vm);
    if (copies.length === 0) return { ok: false, reason: `${request.vm} does not run` };
    for (const copy of copies) {
      const answer = await this.agents.post(copy.host, '/vms/quarantine', { epoch: request.token.epoch, vm: request.vm, quarantined, allow: [this.options.manifest.rootAddress] });
      if (!answer.ok) return answer;
    }
    return { ok: true };
  }

  // ── Checks from outside ──────────────────────────────────────────────────────────────────────

  /** The live QEMU processes of a VM on this machine (live-copies.ts): a check, not the source of truth. */
  static copiesOf(vm: string, disk: string, options: { migrating?: boolean } = {}): Promise<LiveCopies> {
    return liveCopies(vm, disk, options);
  }

  /** The lease of a VM as the datastore holds it. */
  async lease(vm: string): Promise<Lease | null> {
    const ds = this.vmDatastore.get(vm);
    return ds === undefined ? null : readJson<Lease>(this.options.layout.lease(ds, vm));
  }
}
