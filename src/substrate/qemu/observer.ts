/**
 * What the qemu substrate sees, from the real parts, every `pollMs`:
 * - the management heartbeat is a poll of each agent (`GET /state`);
 * - the datastore heartbeat is the file each agent rewrites on the shared datastore;
 * - a primary is healthy when its guest answers `GET /health` at the VM's address (one answer is
 *   health; a single miss is not sickness); a standby is in sync when its guest has booted (it
 *   shares the primary's disk and takes it on promotion).
 * Changes become the port's events (heartbeat lost/restored, instance changed/removed, host power).
 * The substrate's own actions report what they changed here too, and a poll that was on the wire
 * while one did is discarded: its picture is stale.
 */
import { ChangeWatch, type Clock, type HeartbeatChannel, type HostObservation, type InstanceObservation, type SubstrateEvent, type SubstrateSnapshot, type VmMetrics } from '../../ports/index.ts';
import { type AgentClient, probeHealth } from './agent-client.ts';
import type { AgentState } from './agent-protocol.ts';
import { type HeartbeatRecord, type LabLayout, type LabManifest, readJson } from './lab.ts';

const HEALTH_FAILURES = 2;

/** A copy as observed, with the pid of its QEMU (kept here, not reported to the controller). */
export type ObservedInstance = InstanceObservation & { pid: number };

export interface HostView {
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

export interface LabObserverOptions {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly clock: Clock;
  readonly client: AgentClient;
  readonly pollMs: number;
  /** Silence on a channel longer than this is reported as a lost heartbeat. */
  readonly missedAfterMs: number;
}

export class LabObserver {
  /** Polling rounds run so far. */
  polls = 0;
  private readonly listeners = new Set<(event: SubstrateEvent) => void>();
  private readonly hosts = new Map<string, HostView>();
  private readonly instances = new Map<string, ObservedInstance>();
  private readonly healthy = new Map<string, boolean>();
  /** Consecutive failed health probes per copy: unhealthy after HEALTH_FAILURES, healthy again on one answer. */
  private readonly failedProbes = new Map<string, number>();
  /** Copies started here that the agent's next state may not show yet: kept until seen, or until the deadline. */
  private readonly expected = new Map<string, number>();
  private readonly cpu = new Map<string, CpuSample>();
  private readonly vmAddress: ReadonlyMap<string, string>;
  private readonly vmDatastore: ReadonlyMap<string, string>;
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  private isClosed = false;
  /** Bumped by every change made by an action (a start, a stop, a fence): a poll that began before it is stale. */
  private version = 0;
  /** Each host's datastore heartbeat records, judged by when this observer saw them change (liveness.ts). */
  private readonly records = new ChangeWatch();

  constructor(private readonly options: LabObserverOptions) {
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

  /** Reads each host's power and every host once, then polls. */
  async open(poweredOn: (host: string) => Promise<boolean>): Promise<void> {
    for (const host of this.hosts.values()) host.poweredOn = await poweredOn(host.name);
    await this.poll(true);
    this.timer = setInterval(() => void this.poll(false), this.options.pollMs);
  }

  close(): void {
    this.isClosed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: SubstrateEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  /** Wall-clock ms as the controller's clock reads them (the two need not share a zero). */
  clockAt(wallMs: number): number {
    return this.options.clock.nowMs() - (Date.now() - wallMs);
  }

  host(name: string): Readonly<HostView> | undefined {
    return this.hosts.get(name);
  }

  poweredOnHosts(): string[] {
    return [...this.hosts.values()].filter((host) => host.poweredOn).map((host) => host.name);
  }

  instance(id: string): ObservedInstance | undefined {
    return this.instances.get(id);
  }

  copiesOf(vm: string): ObservedInstance[] {
    return [...this.instances.values()].filter((instance) => instance.vm === vm);
  }

  // ── What the substrate's own actions changed ────────────────────────────────────────────────

  /** A copy just started: kept until an agent's state shows it, or until `untilWallMs`. */
  expect(id: string, untilWallMs: number): void {
    this.expected.set(id, untilWallMs);
  }

  unexpect(id: string): void {
    this.expected.delete(id);
  }

  /** A copy an action started, promoted or moved; `resetProbes` forgets its failed health probes. */
  changed(instance: ObservedInstance, options: { readonly resetProbes?: boolean } = {}): void {
    this.version++;
    this.instances.set(instance.id, instance);
    if (options.resetProbes === true) this.failedProbes.delete(instance.id);
    this.emit({ type: 'instance.changed', instance: strip(instance) });
  }

  /** A copy its host confirmed stopped. */
  removed(id: string, vm: string, host: string): void {
    this.expected.delete(id);
    this.version++;
    if (this.instances.delete(id)) this.emit({ type: 'instance.removed', id, vm, host });
  }

  /** A fence of `host` is confirmed: none of its copies runs any more. */
  hostFenced(host: string): void {
    this.version++;
    for (const instance of [...this.instances.values()]) {
      if (instance.host !== host) continue;
      this.instances.delete(instance.id);
      this.emit({ type: 'instance.removed', id: instance.id, vm: instance.vm, host: instance.host });
    }
  }

  poweredOff(name: string): void {
    const host = this.hosts.get(name)!;
    host.poweredOn = false;
    host.agent = null;
    this.emit({ type: 'host.power', host: name, poweredOn: false });
  }

  /** A host powered on: its channels get a fresh start rather than an outage's worth of silence. */
  poweredOnAgain(name: string): void {
    const host = this.hosts.get(name)!;
    host.poweredOn = true;
    host.lastSeenWallMs = { management: Date.now(), datastore: Date.now() };
    this.emit({ type: 'host.power', host: name, poweredOn: true });
  }

  // ── Polling ──────────────────────────────────────────────────────────────────────────────────

  /** One round: every agent, every datastore heartbeat, every primary's health. */
  private async poll(initial: boolean): Promise<void> {
    if (this.polling || this.isClosed) return;
    this.polling = true;
    try {
      this.polls++;
      const startedAtVersion = this.version;
      const hosts = [...this.hosts.values()];
      // The agents and the guests are asked at once: a silent host must not slow the health probes down.
      const primaries = [...this.instances.values()].filter((instance) => instance.role === 'primary' && instance.state === 'running');
      const [states, probes] = await Promise.all([
        Promise.all(hosts.map((host) => (host.poweredOn ? this.options.client.state(host.name) : Promise.resolve(null)))),
        Promise.all(primaries.map((instance) => probeHealth(this.vmAddress.get(instance.vm)))),
      ]);
      for (const [index, instance] of primaries.entries()) this.recordProbe(instance.id, probes[index]!);
      const now = Date.now();
      for (const [index, host] of hosts.entries()) await this.updateChannels(host, states[index] ?? null, now, initial);
      await this.refreshInstances(initial, startedAtVersion);
    } finally {
      this.polling = false;
    }
  }

  /** Records what the host's agent and its datastore heartbeat said; reports a channel lost or restored. */
  private async updateChannels(host: HostView, state: AgentState | null, now: number, initial: boolean): Promise<void> {
    if (state !== null) {
      host.agent = state;
      host.lastSeenWallMs.management = now;
    }
    // The record's time is the host's own clock, which may be stepped: it is never compared with
    // ours. The record is alive while we see it change (its sequence number moves), on our clock.
    for (const ds of this.options.manifest.datastores) {
      const record = await readJson<HeartbeatRecord>(this.options.layout.heartbeat(ds, host.name));
      if (record === null) continue;
      const changedAtMs = this.records.observe(`${host.name}@${ds}`, `${record.host}:${record.seq}:${record.atMs}`, now);
      if (changedAtMs > host.lastSeenWallMs.datastore) host.lastSeenWallMs.datastore = changedAtMs;
    }
    if (initial) {
      // A restarted control plane reports what it finds, without waiting out a timeout: a record
      // first seen counts as alive now, and is judged silent only if it then stops changing.
      host.up.management = state !== null;
      host.up.datastore = now - host.lastSeenWallMs.datastore <= this.options.missedAfterMs;
      return;
    }
    for (const channel of ['management', 'datastore'] as const) {
      const fresh = now - host.lastSeenWallMs[channel] <= this.options.missedAfterMs;
      if (fresh && !host.up[channel]) {
        host.up[channel] = true;
        this.emit({ type: 'heartbeat.restored', host: host.name, channel });
      } else if (!fresh && host.up[channel]) {
        host.up[channel] = false;
        this.emit({ type: 'heartbeat.lost', host: host.name, channel, lastSeenAtMs: this.clockAt(host.lastSeenWallMs[channel]) });
      }
    }
  }

  private async refreshInstances(initial: boolean, startedAtVersion: number): Promise<void> {
    const seen = this.copiesSeen();
    // A copy that just became a running primary is probed now rather than a round later.
    const unprobed = [...seen.values()].filter((instance) => instance.role === 'primary' && instance.state === 'running' && !this.healthy.has(instance.id));
    const probes = await Promise.all(unprobed.map((instance) => probeHealth(this.vmAddress.get(instance.vm))));
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

  /** Every copy the agents report, plus those of unreachable hosts and those started a moment ago. */
  private copiesSeen(): Map<string, ObservedInstance> {
    const seen = new Map<string, ObservedInstance>();
    for (const host of this.hosts.values()) {
      if (!host.poweredOn) continue;
      if (host.agent === null || Date.now() - host.lastSeenWallMs.management > this.options.missedAfterMs) {
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
    return seen;
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

  // ── What the port reads ──────────────────────────────────────────────────────────────────────

  snapshot(vmGenerations: ReadonlyMap<string, number>): SubstrateSnapshot {
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
      vmGenerations,
    };
  }

  /** CPU of every running copy, as its host's agent reported it (from /proc): used, and waited for. */
  metrics(): VmMetrics[] {
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
}

function strip(instance: InstanceObservation & { pid?: number }): InstanceObservation {
  const { pid: _pid, ...observation } = instance;
  return observation;
}
