/**
 * The `qemu` substrate: real VMs behind the same Substrate port as the twin. It runs in the
 * control plane (the root namespace) and talks to one host agent per host over the lab network,
 * with the agents' bearer token. What the controller sees comes from the real parts:
 *
 * - the management heartbeat is a poll of each agent (`GET /state`) every `pollMs`;
 * - the datastore heartbeat is the file each agent rewrites on the shared datastore;
 * - a primary is healthy when its guest answers `GET /health` at the VM's address, from here,
 *   through the same bridges and uplinks a client's request would take; a standby is in sync
 *   when its guest has booted (it shares the primary's disk and takes it on promotion);
 * - fencing is both methods at once, either confirms: storage (the host's leases revoked and a
 *   fence record on the datastore, acknowledged by the host's agent once its QEMUs are dead) and
 *   power (the power controller kills everything in the host's namespace).
 *
 * Fencing tokens are checked here as in the twin (a newer epoch only; a VM action only at the VM's
 * current generation) and again by the agents (epoch). Generations and the newest epoch are kept
 * in the lab's control directory, so a restarted control plane refuses what it refused before.
 */
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tryRun } from './command.ts';
import { join } from 'node:path';
import type {
  ActionOutcome,
  Clock,
  FencingToken,
  HeartbeatChannel,
  HostObservation,
  InstanceObservation,
  SnapshotObservation,
  StartRequest,
  Substrate,
  SubstrateEvent,
  SubstrateSnapshot,
  VmMetrics,
} from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import type { AgentAnswer, AgentState, NetworkPolicyRequest } from './agent.ts';
import type { SegmentationPolicy } from '../../model/segmentation.ts';
import { type FenceAck, type HeartbeatRecord, type LabLayout, type LabManifest, type Lease, readJson, type Revocation, writeAtomic } from './lab.ts';
import { PowerController } from './power.ts';

const CALL_TIMEOUT_MS = 20_000;
const POLL_TIMEOUT_MS = 600;
const HEALTH_TIMEOUT_MS = 400;
const HEALTH_FAILURES = 2;
/** Each VM has its own range of migration ports on the target host (its index × 100 + generation). */
const MIGRATION_PORT_BASE = 50_000;

interface HostView {
  readonly name: string;
  readonly address: string;
  poweredOn: boolean;
  /** Wall-clock ms of the last answer on each channel. */
  lastSeenWallMs: Record<HeartbeatChannel, number>;
  up: Record<HeartbeatChannel, boolean>;
  agent: AgentState | null;
}

interface CpuSample {
  readonly atWallMs: number;
  readonly cpuMs: number;
  readonly waitMs: number;
}

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
}

export class QemuSubstrate implements Substrate {
  readonly name = 'qemu';
  private readonly listeners = new Set<(event: SubstrateEvent) => void>();
  private readonly hosts = new Map<string, HostView>();
  private readonly instances = new Map<string, InstanceObservation & { pid: number }>();
  private readonly healthy = new Map<string, boolean>();
  private generations = new Map<string, number>();
  private newestEpoch = 0;
  private readonly power: PowerController;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;
  private readonly cpu = new Map<string, CpuSample>();
  private readonly pollMs: number;
  private readonly missedAfterMs: number;
  private readonly vmAddress: ReadonlyMap<string, string>;
  private readonly vmDatastore: ReadonlyMap<string, string>;
  /** Operations under way per host, so a fence is not raced by a start on the same host. */
  private readonly fencing = new Set<string>();
  private readonly vmBusy = new Set<string>();
  /** Copies started here that the agent's next state may not show yet: kept until seen, or until the deadline. */
  private readonly expected = new Map<string, number>();
  /** Consecutive failed health probes per copy: unhealthy after HEALTH_FAILURES, healthy again on one answer. */
  private readonly failedProbes = new Map<string, number>();
  polls = 0;
  /** Bumped by every change made here (a start, a stop, a fence): a poll that began before it is stale. */
  private version = 0;

  constructor(private readonly options: QemuSubstrateOptions) {
    this.power = new PowerController(options.layout, options.manifest);
    this.pollMs = options.pollMs ?? options.manifest.timings.heartbeatMs;
    this.missedAfterMs = options.missedAfterMs ?? 3 * options.manifest.timings.heartbeatMs;
    this.vmAddress = new Map(options.manifest.vms.map((vm) => [vm.name, vm.address]));
    this.vmDatastore = new Map(options.manifest.vms.map((vm) => [vm.name, vm.datastore]));
    const now = Date.now();
    for (const host of options.manifest.hosts) {
      this.hosts.set(host.name, {
        name: host.name,
        address: host.address,
        poweredOn: true,
        lastSeenWallMs: { management: now, datastore: now },
        up: { management: true, datastore: true },
        agent: null,
      });
    }
  }

  /** Loads the persisted epoch and generations, reads every host once, then polls. */
  async open(): Promise<void> {
    const control = this.options.layout.controlDirectory;
    this.newestEpoch = Number((await readFile(join(control, 'epoch'), 'utf8').catch(() => '0')).trim()) || 0;
    const generations = await readJson<Record<string, number>>(join(control, 'generations.json'));
    this.generations = new Map(Object.entries(generations ?? {}));
    for (const host of this.hosts.values()) host.poweredOn = (await this.power.state(host.name)) === 'on';
    await this.poll(true);
    this.timer = setInterval(() => void this.poll(false), this.pollMs);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: SubstrateEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Wall-clock ms as the controller's clock reads them (the two need not share a zero). */
  private clockAt(wallMs: number): number {
    return this.options.clock.nowMs() - (Date.now() - wallMs);
  }

  // ── Observation ──────────────────────────────────────────────────────────────────────────────

  private async call<T>(host: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const view = this.hosts.get(host);
    if (view === undefined) throw new Error(`unknown host ${host}`);
    const response = await fetch(`http://${view.address}:${this.options.manifest.agentPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.options.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const payload = (await response.json()) as T;
    if (response.status === 401) throw new Error(`agent of ${host} refused the token`);
    return payload;
  }

  private async agentCall(host: string, path: string, body: Record<string, unknown>): Promise<AgentAnswer> {
    try {
      return await this.call<AgentAnswer>(host, 'POST', path, body);
    } catch (error) {
      return { ok: false, reason: `agent of ${host} did not answer: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  private async probe(vm: string): Promise<boolean> {
    try {
      const response = await fetch(`http://${this.vmAddress.get(vm)}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
      return response.ok && (await response.text()).trim() === 'ok';
    } catch {
      return false;
    }
  }

  /** One round: every agent, every datastore heartbeat, every primary's health. */
  private async poll(initial: boolean): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      this.polls++;
      const startedAtVersion = this.version;
      const hosts = [...this.hosts.values()];
      // The agents and the guests are asked at once: a silent host must not slow the health probes down.
      const primaries = [...this.instances.values()].filter((instance) => instance.role === 'primary' && instance.state === 'running');
      const [states, probes] = await Promise.all([
        Promise.all(hosts.map((host) => (host.poweredOn ? this.call<AgentState>(host.name, 'GET', '/state', undefined, POLL_TIMEOUT_MS).catch(() => null) : Promise.resolve(null)))),
        Promise.all(primaries.map((instance) => this.probe(instance.vm))),
      ]);
      for (const [index, instance] of primaries.entries()) this.recordProbe(instance.id, probes[index]!);
      const now = Date.now();
      for (const [index, host] of hosts.entries()) {
        const state = states[index] ?? null;
        if (state !== null) {
          host.agent = state;
          host.lastSeenWallMs.management = now;
        }
        let newest = 0;
        for (const ds of this.options.manifest.datastores) {
          const record = await readJson<HeartbeatRecord>(this.options.layout.heartbeat(ds, host.name));
          if (record !== null) newest = Math.max(newest, record.atMs);
        }
        if (newest > 0) host.lastSeenWallMs.datastore = Math.max(host.lastSeenWallMs.datastore, newest);
        if (initial) {
          // A restarted control plane reports what it finds, without waiting out a timeout.
          host.up.management = state !== null;
          host.up.datastore = now - host.lastSeenWallMs.datastore <= this.missedAfterMs;
          continue;
        }
        for (const channel of ['management', 'datastore'] as const) {
          const fresh = now - host.lastSeenWallMs[channel] <= this.missedAfterMs;
          if (fresh && !host.up[channel]) {
            host.up[channel] = true;
            this.emit({ type: 'heartbeat.restored', host: host.name, channel });
          } else if (!fresh && host.up[channel]) {
            host.up[channel] = false;
            this.emit({ type: 'heartbeat.lost', host: host.name, channel, lastSeenAtMs: this.clockAt(host.lastSeenWallMs[channel]) });
          }
        }
      }
      await this.refreshInstances(initial, startedAtVersion);
    } finally {
      this.polling = false;
    }
  }

  private async refreshInstances(initial: boolean, startedAtVersion: number): Promise<void> {
    const seen = new Map<string, InstanceObservation & { pid: number }>();
    for (const host of this.hosts.values()) {
      if (!host.poweredOn) continue;
      if (host.agent === null || Date.now() - host.lastSeenWallMs.management > this.missedAfterMs) {
        // Unreachable: what it ran is unknown; keep the last known copies (their health is probed).
        for (const instance of this.instances.values()) if (instance.host === host.name) seen.set(instance.id, instance);
        continue;
      }
      for (const instance of this.instances.values()) {
        // Started a moment ago: the agent's state may predate it.
        const deadline = this.expected.get(instance.id);
        if (instance.host === host.name && deadline !== undefined && deadline > Date.now() && !host.agent.instances.some((candidate) => candidate.id === instance.id)) seen.set(instance.id, instance);
      }
      for (const agentInstance of host.agent.instances) {
        // A migration's target is not a copy until the migration hands over (migrateVm reports it then).
        if (agentInstance.incoming) continue;
        this.expected.delete(agentInstance.id);
        const datastore = this.vmDatastore.get(agentInstance.vm) ?? '';
        seen.set(agentInstance.id, {
          id: agentInstance.id,
          vm: agentInstance.vm,
          host: host.name,
          role: agentInstance.role,
          state: agentInstance.state,
          healthy: false,
          synced: agentInstance.role === 'primary' || agentInstance.booted,
          datastore,
          pid: agentInstance.pid,
        });
      }
    }
    // A copy that just became a running primary is probed now rather than a round later.
    const unprobed = [...seen.values()].filter((instance) => instance.role === 'primary' && instance.state === 'running' && !this.healthy.has(instance.id));
    const probes = await Promise.all(unprobed.map((instance) => this.probe(instance.vm)));
    for (const [index, instance] of unprobed.entries()) this.recordProbe(instance.id, probes[index]!);
    // Something changed while this round was on the wire (a fence, a start): its picture is stale.
    if (this.version !== startedAtVersion) return;
    for (const [id, instance] of seen) {
      const healthy = instance.role === 'primary' ? (this.healthy.get(id) ?? false) : instance.synced;
      const observed = { ...instance, healthy };
      const previous = this.instances.get(id);
      this.instances.set(id, observed);
      if (initial) continue;
      if (previous === undefined || previous.state !== observed.state || previous.healthy !== observed.healthy || previous.role !== observed.role || previous.synced !== observed.synced || previous.host !== observed.host) {
        this.emit({ type: 'instance.changed', instance: strip(observed) });
      }
    }
    for (const [id, instance] of [...this.instances]) {
      if (seen.has(id)) continue;
      this.instances.delete(id);
      this.healthy.delete(id);
      this.failedProbes.delete(id);
      if (!initial) this.emit({ type: 'instance.removed', id, vm: instance.vm, host: instance.host });
    }
  }

  /**
   * One answer is health; one missed answer is not sickness (a guest on a busy machine can be slow
   * for a moment): unhealthy after HEALTH_FAILURES misses in a row, healthy again on one answer.
   */
  private recordProbe(id: string, answered: boolean): void {
    if (answered) {
      this.failedProbes.set(id, 0);
      this.healthy.set(id, true);
      return;
    }
    const failures = (this.failedProbes.get(id) ?? 0) + 1;
    this.failedProbes.set(id, failures);
    if (failures >= HEALTH_FAILURES || !this.healthy.has(id)) this.healthy.set(id, false);
  }

  snapshot(): Promise<SubstrateSnapshot> {
    return this.snapshotNow();
  }

  private async snapshotNow(): Promise<SubstrateSnapshot> {
    const hosts: HostObservation[] = [...this.hosts.values()].map((host) => ({
      name: host.name,
      poweredOn: host.poweredOn,
      heartbeats: {
        management: { up: host.up.management, lastSeenAtMs: this.clockAt(host.lastSeenWallMs.management) },
        datastore: { up: host.up.datastore, lastSeenAtMs: this.clockAt(host.lastSeenWallMs.datastore) },
      },
    }));
    return {
      atMs: this.options.clock.nowMs(),
      hosts,
      instances: [...this.instances.values()].map(strip),
      datastores: this.options.manifest.datastores.map((name) => ({ name, up: true })),
      vmGenerations: new Map(this.generations),
    };
  }

  // ── Tokens ───────────────────────────────────────────────────────────────────────────────────

  private checkToken(token: FencingToken, vm: string | null): ActionOutcome | null {
    if (token.epoch < this.newestEpoch) return { ok: false, reason: `fencing token epoch ${token.epoch} is older than ${this.newestEpoch}` };
    if (token.epoch > this.newestEpoch) {
      this.newestEpoch = token.epoch;
      void writeAtomic(join(this.options.layout.controlDirectory, 'epoch'), String(token.epoch));
    }
    if (vm !== null && token.vmGeneration !== undefined) {
      const current = this.generations.get(vm) ?? 0;
      if (token.vmGeneration !== current) return { ok: false, reason: `${vm} is at generation ${current}, the action expected ${token.vmGeneration}` };
    }
    return null;
  }

  /** The generation an accepted action moves the VM to (committed only when the agent accepts). */
  private nextGeneration(vm: string): number {
    return (this.generations.get(vm) ?? 0) + 1;
  }

  private commit(vm: string, generation: number): void {
    this.generations.set(vm, generation);
    void writeAtomic(join(this.options.layout.controlDirectory, 'generations.json'), JSON.stringify(Object.fromEntries(this.generations)));
  }

  /**
   * Runs one action on a VM: its token checked, no other action on the VM under way (so the
   * compare-and-set holds across the agent call), the generation moved on only if it succeeded.
   */
  private async vmAction(token: FencingToken, vm: string, work: (generation: number) => Promise<ActionOutcome>): Promise<ActionOutcome> {
    const refused = this.checkToken(token, vm);
    if (refused !== null) return refused;
    if (this.vmBusy.has(vm)) return { ok: false, reason: `another action on ${vm} is under way` };
    this.vmBusy.add(vm);
    try {
      const generation = this.nextGeneration(vm);
      const outcome = await work(generation);
      if (outcome.ok) this.commit(vm, generation);
      return outcome;
    } finally {
      this.vmBusy.delete(vm);
    }
  }

  claimEpoch(token: FencingToken): Promise<ActionOutcome> {
    const refused = this.checkToken(token, null);
    if (refused !== null) return Promise.resolve(refused);
    return Promise.resolve({ ok: true });
  }

  // ── Actions ──────────────────────────────────────────────────────────────────────────────────

  async startVm(request: StartRequest): Promise<ActionOutcome> {
    if (!this.vmAddress.has(request.vm)) return { ok: false, reason: `VM ${request.vm} is not in the lab` };
    if (this.fencing.has(request.host)) return { ok: false, reason: `host ${request.host} is being fenced` };
    return this.vmAction(request.token, request.vm, async (generation) => {
      const instanceId = `${request.vm}.g${generation}`;
      this.expected.set(instanceId, Date.now() + 30_000);
      const answer = await this.agentCall(request.host, '/vms/start', { epoch: request.token.epoch, vm: request.vm, instanceId, generation, role: request.role });
      if (!answer.ok) {
        this.expected.delete(instanceId);
        return answer;
      }
      const observed: InstanceObservation & { pid: number } = {
        id: instanceId,
        vm: request.vm,
        host: request.host,
        role: request.role,
        state: 'booting',
        healthy: false,
        synced: request.role === 'primary',
        datastore: request.datastore,
        pid: Number(/pid (\d+)/.exec(answer.detail ?? '')?.[1] ?? 0),
      };
      this.version++;
      this.instances.set(instanceId, observed);
      this.emit({ type: 'instance.changed', instance: strip(observed) });
      return { ok: true, detail: `${instanceId} on ${request.host}` };
    });
  }

  async stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): Promise<ActionOutcome> {
    return this.vmAction(request.token, request.vm, async () => {
      const answer = await this.agentCall(request.host, '/vms/stop', { epoch: request.token.epoch, vm: request.vm, instanceId: request.instanceId });
      if (!answer.ok) return answer;
      // Its host confirmed the copy is gone; a host cut off from the datastore could not release
      // the lease itself, so the control plane revokes it for the next copy.
      const ds = this.vmDatastore.get(request.vm)!;
      const lease = await readJson<Lease>(this.options.layout.lease(ds, request.vm));
      if (lease !== null && lease.host === request.host && lease.instanceId === request.instanceId) {
        const revocation: Revocation = { vm: request.vm, host: request.host, instanceId: request.instanceId, epoch: request.token.epoch, atMs: Date.now() };
        await writeAtomic(this.options.layout.revocation(ds, request.vm), JSON.stringify(revocation));
      }
      this.expected.delete(request.instanceId);
      this.version++;
      if (this.instances.delete(request.instanceId)) this.emit({ type: 'instance.removed', id: request.instanceId, vm: request.vm, host: request.host });
      return { ok: true };
    });
  }

  async promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): Promise<ActionOutcome> {
    const instance = this.instances.get(request.instanceId);
    if (instance === undefined) return { ok: false, reason: `no copy ${request.instanceId}` };
    return this.vmAction(request.token, request.vm, async (generation) => {
      const answer = await this.agentCall(instance.host, '/vms/promote', { epoch: request.token.epoch, vm: request.vm, instanceId: request.instanceId, generation });
      if (!answer.ok) return answer;
      this.version++;
      const promoted = { ...instance, role: 'primary' as const, synced: true, healthy: false };
      this.instances.set(instance.id, promoted);
      this.failedProbes.delete(instance.id);
      this.emit({ type: 'instance.changed', instance: strip(promoted) });
      return { ok: true };
    });
  }

  /**
   * Both fencing methods at once; the answer is "accepted", the confirmations arrive as
   * `fence.completed` events (as on the twin). Storage: every lease the host holds is revoked and
   * a fence record is written; its agent, if alive and on the datastore, kills its QEMUs and
   * acknowledges. Power: the power controller cuts the host.
   */
  async fenceHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    const refused = this.checkToken(request.token, null);
    if (refused !== null) return refused;
    const host = this.hosts.get(request.host);
    if (host === undefined) return { ok: false, reason: `unknown host ${request.host}` };
    this.fencing.add(request.host);
    // The host's leases are revoked before either method runs: once a fence is confirmed, no
    // lease of the host stands in the way of a standby taking over.
    await this.revokeLeases(request.host, request.token.epoch);
    let confirmed = false;
    const confirm = (method: 'storage' | 'power', ok: boolean, detail: string) => {
      if (this.closed) return;
      if (ok && !confirmed) {
        confirmed = true;
        this.version++;
        this.fencing.delete(request.host);
        for (const instance of [...this.instances.values()]) {
          if (instance.host !== request.host) continue;
          this.instances.delete(instance.id);
          this.emit({ type: 'instance.removed', id: instance.id, vm: instance.vm, host: instance.host });
        }
      }
      this.emit({ type: 'fence.completed', host: request.host, method, ok, detail });
    };
    void this.storageFence(request.host, request.token.epoch).then(
      (result) => confirm('storage', result.ok, result.detail),
      (error: unknown) => confirm('storage', false, String(error)),
    );
    void this.power.off(request.host).then(
      (result) => {
        host.poweredOn = false;
        host.agent = null;
        this.emit({ type: 'host.power', host: request.host, poweredOn: false });
        confirm('power', result.confirmed, result.confirmed ? `power off, ${result.killed} processes killed, none left` : 'processes survived the power cut');
      },
      (error: unknown) => confirm('power', false, String(error)),
    );
    return { ok: true, detail: 'fencing by storage and power' };
  }

  private async revokeLeases(host: string, epoch: number): Promise<void> {
    for (const vm of this.options.manifest.vms) {
      const lease = await readJson<Lease>(this.options.layout.lease(vm.datastore, vm.name));
      if (lease === null || lease.host !== host) continue;
      const revocation: Revocation = { vm: vm.name, host, instanceId: lease.instanceId, epoch, atMs: Date.now() };
      await writeAtomic(this.options.layout.revocation(vm.datastore, vm.name), JSON.stringify(revocation));
    }
  }

  /** The storage method: a fence record the host's agent obeys (kills its QEMUs) and acknowledges. */
  private async storageFence(host: string, epoch: number): Promise<{ ok: boolean; detail: string }> {
    const startedAt = Date.now();
    for (const ds of this.options.manifest.datastores) {
      await rm(this.options.layout.fenceAck(ds, host), { force: true });
      await writeAtomic(this.options.layout.fence(ds, host), JSON.stringify({ host, epoch, atMs: startedAt }));
    }
    const deadline = startedAt + 10_000;
    while (Date.now() < deadline && !this.closed) {
      for (const ds of this.options.manifest.datastores) {
        const ack = await readJson<FenceAck>(this.options.layout.fenceAck(ds, host));
        if (ack !== null && ack.epoch === epoch) return { ok: true, detail: `leases revoked; the agent killed ${ack.killed.length} VMs and acknowledged` };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { ok: false, detail: 'leases revoked; no acknowledgement from the host (its agent is down or cut off from the datastore)' };
  }

  async powerOnHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    const refused = this.checkToken(request.token, null);
    if (refused !== null) return refused;
    const host = this.hosts.get(request.host);
    if (host === undefined) return { ok: false, reason: `unknown host ${request.host}` };
    // A powered-on host's agent may be running already (the host was storage-fenced only): cut it first.
    await this.power.off(request.host);
    for (const ds of this.options.manifest.datastores) {
      await rm(this.options.layout.fence(ds, request.host), { force: true });
      await rm(this.options.layout.fenceAck(ds, request.host), { force: true });
    }
    try {
      await this.power.on(request.host);
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
    host.poweredOn = true;
    host.lastSeenWallMs = { management: Date.now(), datastore: Date.now() };
    this.emit({ type: 'host.power', host: request.host, poweredOn: true });
    return { ok: true };
  }

  async listSnapshots(vm: string): Promise<readonly SnapshotObservation[]> {
    const ds = this.vmDatastore.get(vm);
    if (ds === undefined) return [];
    const directory = this.options.layout.snapshots(ds, vm);
    const snapshots: SnapshotObservation[] = [];
    for (const file of await readdir(directory).catch(() => [] as string[])) {
      if (!file.endsWith('.json')) continue;
      const record = await readJson<{ id: string; takenAtMs: number; retainUntilMs: number; complete: boolean }>(join(directory, file));
      if (record === null || !record.complete) continue;
      snapshots.push({ id: record.id, vm, datastore: ds, takenAtMs: this.clockAt(record.takenAtMs), retainUntilMs: this.clockAt(record.retainUntilMs), immutable: true, digest: record.id });
    }
    return snapshots.sort((a, b) => a.takenAtMs - b.takenAtMs);
  }

  /** CPU of every running copy, as its host's agent reported it (from /proc): used, and waited for. */
  async metrics(): Promise<readonly VmMetrics[]> {
    const metrics: VmMetrics[] = [];
    for (const host of this.hosts.values()) {
      const state = host.agent;
      if (state === null) continue;
      for (const instance of state.instances) {
        if (instance.cpuMs === null || instance.cpuWaitMs === null || instance.incoming) continue;
        const previous = this.cpu.get(instance.id);
        this.cpu.set(instance.id, { atWallMs: state.atMs, cpuMs: instance.cpuMs, waitMs: instance.cpuWaitMs });
        if (previous === undefined || state.atMs <= previous.atWallMs) continue;
        const wallMs = state.atMs - previous.atWallMs;
        const allocatedCores = (instance.cpuMs - previous.cpuMs) / wallMs;
        const waitingCores = (instance.cpuWaitMs - previous.waitMs) / wallMs;
        metrics.push({
          vm: instance.vm,
          instanceId: instance.id,
          host: host.name,
          role: instance.role,
          demandCores: allocatedCores + waitingCores,
          allocatedCores,
          readyPercent: 100 * waitingCores,
          shares: instance.shares,
        });
      }
    }
    return metrics;
  }

  /**
   * Live migration: a paused QEMU waits on the target host for the VM's state over TCP, the
   * source sends it (QEMU's own migration: memory first, a short stop for the rest), then the
   * target takes the lease and announces the VM's MAC on its new port.
   */
  async migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): Promise<ActionOutcome> {
    const source = this.instances.get(request.instanceId);
    const target = this.hosts.get(request.toHost);
    if (source === undefined || target === undefined) return { ok: false, reason: `no copy ${request.instanceId} or no host ${request.toHost}` };
    return this.vmAction(request.token, request.vm, async (generation) => {
      // The copy keeps its identity across hosts (as on the twin): the same instance, moved.
      const instanceId = source.id;
      const vmIndex = this.options.manifest.vms.findIndex((vm) => vm.name === request.vm);
      const port = MIGRATION_PORT_BASE + vmIndex * 100 + (generation % 100);
      const incoming = await this.agentCall(request.toHost, '/vms/start', { epoch: request.token.epoch, vm: request.vm, instanceId, generation, role: source.role, incomingPort: port });
      if (!incoming.ok) return incoming;
      const sent = await this.agentCall(source.host, '/vms/migrate', { epoch: request.token.epoch, vm: request.vm, instanceId, toAddress: target.address, port });
      if (!sent.ok) {
        await this.agentCall(request.toHost, '/vms/stop', { epoch: request.token.epoch, vm: request.vm, instanceId });
        return sent;
      }
      const adopted = await this.agentCall(request.toHost, '/vms/adopt', { epoch: request.token.epoch, vm: request.vm, instanceId, generation });
      if (!adopted.ok) return adopted;
      this.version++;
      const moved: InstanceObservation & { pid: number } = { ...source, host: request.toHost, state: 'running', healthy: source.healthy, pid: Number(/pid (\d+)/.exec(incoming.detail ?? '')?.[1] ?? 0) };
      this.instances.set(instanceId, moved);
      this.emit({ type: 'instance.changed', instance: strip(moved) });
      return { ok: true, detail: sent.detail ?? 'migrated' };
    });
  }

  async setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): Promise<ActionOutcome> {
    const refused = this.checkToken(request.token, null);
    if (refused !== null) return refused;
    const instance = this.instances.get(request.instanceId);
    if (instance === undefined) return { ok: false, reason: `no copy ${request.instanceId}` };
    return this.agentCall(instance.host, '/vms/shares', { epoch: request.token.epoch, vm: request.vm, shares: Math.round(request.shares) });
  }

  /** Immutability is enforced here, for every caller: a snapshot inside its retention is never deleted. */
  async deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): Promise<ActionOutcome> {
    const refused = this.checkToken(request.token, null);
    if (refused !== null) return refused;
    for (const vm of this.vmDatastore.keys()) {
      const snapshot = (await this.listSnapshots(vm)).find((candidate) => candidate.id === request.snapshotId);
      if (snapshot === undefined) continue;
      if (snapshot.retainUntilMs > this.options.clock.nowMs()) {
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
   * Enforces a segmentation policy on every host's bridge (nftables, default deny for VM traffic):
   * VMs by their addresses, networks by their blueprint CIDR; the control plane's address keeps
   * reaching every VM (its health probes).
   */
  async applyNetworkPolicy(request: { token: FencingToken; policy: SegmentationPolicy }): Promise<ActionOutcome> {
    const refused = this.checkToken(request.token, null);
    if (refused !== null) return refused;
    const rules = networkRules(request.policy, this.options.blueprint, this.vmAddress);
    const body = { epoch: request.token.epoch, monitor: [this.options.manifest.rootAddress], rules };
    const answers = await Promise.all([...this.hosts.values()].filter((host) => host.poweredOn).map(async (host) => [host.name, await this.agentCall(host.name, '/policy', body)] as const));
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
    const refused = this.checkToken(request.token, null);
    if (refused !== null) return refused;
    const copies = [...this.instances.values()].filter((instance) => instance.vm === request.vm);
    if (copies.length === 0) return { ok: false, reason: `${request.vm} does not run` };
    for (const copy of copies) {
      const answer = await this.agentCall(copy.host, '/vms/quarantine', { epoch: request.token.epoch, vm: request.vm, quarantined, allow: [this.options.manifest.rootAddress] });
      if (!answer.ok) return answer;
    }
    return { ok: true };
  }

  /**
   * The live QEMU processes of a VM on this machine, found by process name (a check from outside,
   * not the controller's source of truth): `writable` ones hold the VM's disk open, `standby` ones
   * do not (a hot standby before promotion, or a QEMU that has not opened its disk yet). A process
   * already exiting (SIGKILLed, its memory being freed) runs no guest code and is not counted.
   */
  static async copiesOf(vm: string, disk: string, options: { migrating?: boolean } = {}): Promise<{ writable: number; standby: number; pids: number[] }> {
    const result = await tryRun(['pgrep', '-x', `tmr-${vm}`.slice(0, 15)], { timeoutMs: 5_000 });
    const pids = result === null ? [] : result.stdout.split('\n').filter((line) => line.trim() !== '').map(Number);
    let writable = 0;
    let standby = 0;
    const live: number[] = [];
    for (const pid of pids) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
      if (stat === null) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const exiting = (Number(fields[6]) & 0x4) !== 0;
      if (exiting || fields[0] === 'Z' || fields[0] === 'X') continue;
      // While the VM is being migrated, the target QEMU (started with -incoming) holds the disk
      // inactive until the source has stopped: QEMU's own handover, not a second copy.
      if (options.migrating === true && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').includes('-incoming')) continue;
      live.push(pid);
      let holdsDisk = false;
      for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === disk) {
          holdsDisk = true;
          break;
        }
      }
      if (holdsDisk) writable++;
      else standby++;
    }
    return { writable, standby, pids: live };
  }

  /** The lease of a VM as the datastore holds it. */
  async lease(vm: string): Promise<Lease | null> {
    const ds = this.vmDatastore.get(vm);
    return ds === undefined ? null : readJson<Lease>(this.options.layout.lease(ds, vm));
  }
}

function strip(instance: InstanceObservation & { pid?: number }): InstanceObservation {
  const { pid: _pid, ...observation } = instance;
  return observation;
}

/**
 * A segmentation policy in addresses: each VM endpoint is its lab address, each network endpoint
 * its blueprint CIDR (a network without one, like "external", matches nothing in the lab).
 */
export function networkRules(policy: SegmentationPolicy, blueprint: Blueprint, vmAddress: ReadonlyMap<string, string>): NetworkPolicyRequest['rules'] {
  const cidr = new Map(blueprint.networks.map((network) => [network.name, network.cidr ?? undefined]));
  const addressOf = (endpoint: string): string | null => {
    const vm = vmAddress.get(endpoint);
    if (vm !== undefined) return vm;
    const range = cidr.get(endpoint);
    return range === undefined || range === '0.0.0.0/0' ? null : range;
  };
  const rules: NetworkPolicyRequest['rules'] = [];
  const seen = new Set<string>();
  for (const rule of policy.rules) {
    const from = addressOf(rule.from);
    const to = addressOf(rule.to);
    if (from === null || to === null) continue;
    const protocol = rule.protocol === 'udp' ? 'udp' : 'tcp';
    const key = `${from}>${to}:${rule.port}/${protocol}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push({ from, to, port: rule.port, protocol });
  }
  return rules;
}
