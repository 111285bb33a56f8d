/**
 * The host agent (`tomaranai agent`): one per host, running inside the host's network namespace,
 * like a hypervisor node's HA agent. It starts, stops, promotes and migrates the host's VMs
 * through QMP, answers the control plane over the management network (bearer-token
 * authenticated), and keeps the second heartbeat channel and the per-VM leases on the shared
 * datastore.
 *
 * Its one safety duty: never let an isolated host keep a second writable copy of a VM alive.
 * - A VM's writable copy runs only under a lease on the datastore (`leases/<vm>.json`); the agent
 *   takes the lease before it boots or promotes a copy, and refuses while another host holds it.
 * - It renews its leases every heartbeat. A lease revoked by a storage fence, or taken by another
 *   host, kills the copy at once.
 * - It fences itself — kills every VM it runs — when it has lost both channels: the control plane
 *   has not polled it and it could not renew its leases for longer than the lease minus a margin,
 *   so its copies are dead before anyone else may take the leases.
 * - A storage fence of the whole host (`fence/<host>.json`) kills every VM and is acknowledged on
 *   the datastore; the agent then starts nothing until the fence is lifted (power-on).
 *
 * QEMU runs daemonized: an agent that dies leaves its VMs running, and a new agent reattaches to
 * them by their pid files and QMP sockets and repeats nothing.
 */
import { timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { type FenceAck, type FenceRecord, type HeartbeatRecord, type LabLayout, type LabManifest, type LabVm, type Lease, leaseFree, readJson, type Revocation, revokes, writeAtomic } from './lab.ts';
import { createTap, HOST_BRIDGE, tapName } from './netns.ts';
import { run, tryRun } from './command.ts';
import { attachVm, createOverlay, hotplugDisk, killVm, launchVm, loadGuestImage, processAlive, stopVm, type GuestImage, type RunningVm } from './vm.ts';

/** QEMU's self-announcement (RARP, or a GARP from the guest): three rounds, 50 ms apart. */
const ANNOUNCE = { initial: 10, max: 100, rounds: 3, step: 50 } as const;

/** Time left on a lease when an agent that cannot renew it stops its copy. */
const SELF_FENCE_MARGIN_MS = 1_000;

export type AgentRole = 'primary' | 'secondary';

/** What the agent persists per VM next to QEMU's pid file, so a new agent knows what it runs. */
interface InstanceRecord {
  readonly vm: string;
  readonly instanceId: string;
  role: AgentRole;
  readonly generation: number;
  diskAttached: boolean;
  /** Wall-clock ms when QEMU was launched. */
  readonly launchedAtMs: number;
  quarantined: boolean;
  shares: number;
}

interface AgentInstance extends InstanceRecord {
  qemu: RunningVm;
  booted: boolean;
  paused: boolean;
  /** Wall-clock ms of the last renewal of its lease (primaries only). */
  leaseRenewedAtMs: number;
  incoming: boolean;
}

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
const StartBody = z.strictObject({
  epoch: epochField,
  vm: vmField,
  instanceId: z.string().min(1).max(128),
  generation: z.number().int().nonnegative(),
  role: z.enum(['primary', 'secondary']),
  incomingPort: z.number().int().min(1024).max(65535).optional(),
});
const VmBody = z.strictObject({ epoch: epochField, vm: vmField, instanceId: z.string().min(1).max(128) });
const PromoteBody = z.strictObject({ epoch: epochField, vm: vmField, instanceId: z.string().min(1).max(128), generation: z.number().int().nonnegative() });
const MigrateBody = z.strictObject({ epoch: epochField, vm: vmField, instanceId: z.string().min(1).max(128), toAddress: z.string().regex(/^[0-9.]+$/), port: z.number().int().min(1024).max(65535) });
const SharesBody = z.strictObject({ epoch: epochField, vm: vmField, shares: z.number().int().min(1).max(262_144) });
const QuarantineBody = z.strictObject({ epoch: epochField, vm: vmField, quarantined: z.boolean(), allow: z.array(z.string().regex(/^[0-9.]+(\/\d+)?$/)).max(16) });
const SnapshotBody = z.strictObject({ epoch: epochField, vm: vmField, snapshotId: z.string().regex(/^[a-zA-Z0-9._-]{1,96}$/), retainUntilMs: z.number().nonnegative() });
const EpochBody = z.strictObject({ epoch: epochField });
const address = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/);
const PolicyBody = z.strictObject({
  epoch: epochField,
  /** Addresses that reach every VM and are reached by them (the control plane's health probes). */
  monitor: z.array(address).max(16),
  rules: z.array(z.strictObject({ from: address, to: address, port: z.number().int().min(0).max(65535), protocol: z.enum(['tcp', 'udp']) })).max(20_000),
});
export type NetworkPolicyRequest = z.infer<typeof PolicyBody>;

export const POLICY_TABLE = 'tmr-policy';

/**
 * The nftables script of a segmentation policy on one host's bridge: ARP passes; the monitor
 * addresses reach every VM; each allowed flow passes, and its answers (stateless: source port);
 * every other frame into or out of a VM's tap is dropped. The host's own traffic (its agent) does
 * not cross the bridge's forward hook and is not touched.
 */
export function policyScript(policy: Omit<NetworkPolicyRequest, 'epoch'>): string {
  const lines = [
    `table bridge ${POLICY_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    '    ether type { arp, 0x8035 } accept',
    ...policy.monitor.flatMap((monitor) => [`    ip saddr ${monitor} accept`, `    ip daddr ${monitor} accept`]),
    ...policy.rules.flatMap((rule) =>
      rule.port === 0
        ? [`    ip saddr ${rule.from} ip daddr ${rule.to} accept`, `    ip saddr ${rule.to} ip daddr ${rule.from} accept`]
        : [`    ip saddr ${rule.from} ip daddr ${rule.to} ${rule.protocol} dport ${rule.port} accept`, `    ip saddr ${rule.to} ip daddr ${rule.from} ${rule.protocol} sport ${rule.port} accept`],
    ),
    '    iifname "tmr-t*" drop',
    '    oifname "tmr-t*" drop',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

export class HostAgent {
  private readonly instances = new Map<string, AgentInstance>();
  private readonly busy = new Set<string>();
  private epoch = 0;
  /** Wall-clock ms of the control plane's last authenticated call. */
  private lastHeardMs = Date.now();
  private storagePathUp = true;
  private fenced = false;
  private heartbeatSeq = 0;
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private server: FastifyInstance | null = null;
  private image: GuestImage | null = null;
  private readonly vmByName: ReadonlyMap<string, LabVm>;
  private readonly tokenBuffer: Buffer;

  constructor(
    private readonly options: {
      readonly layout: LabLayout;
      readonly manifest: LabManifest;
      readonly host: string;
      readonly token: string;
      readonly listen?: { host: string; port: number };
    },
  ) {
    this.vmByName = new Map(options.manifest.vms.map((vm) => [vm.name, vm]));
    this.tokenBuffer = Buffer.from(options.token, 'utf8');
  }

  private get runDirectory(): string {
    return this.options.layout.run(this.options.host);
  }

  private log(event: string, data: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ at: new Date().toISOString(), host: this.options.host, event, ...data });
    void appendFile(this.options.layout.agentLog(this.options.host), `${line}\n`).catch(() => undefined);
  }

  async start(): Promise<void> {
    this.image = await loadGuestImage(this.options.manifest.imageDirectory);
    if (this.image === null) throw new Error(`the guest image is missing in ${this.options.manifest.imageDirectory}: run npm run vm:image`);
    this.epoch = Number((await readFile(join(this.runDirectory, 'epoch'), 'utf8').catch(() => '0')).trim()) || 0;
    await this.reattach();
    this.fenced = await this.fenceStanding();
    // A host that was powered off lost nothing of its namespace here, but a real one would have:
    // the last policy it was given is enforced again before it runs anything.
    const stored = await readJson<Omit<NetworkPolicyRequest, 'epoch'>>(join(this.runDirectory, 'policy.json'));
    if (stored !== null) {
      const existing = await tryRun(['nft', 'list', 'table', 'bridge', POLICY_TABLE]);
      await run(['nft', '-f', '-'], { input: `${existing === null ? '' : `delete table bridge ${POLICY_TABLE}\n`}${policyScript(stored)}` });
    }
    this.timer = setInterval(() => void this.tick(), this.options.manifest.timings.heartbeatMs);
    await this.tick();
    const listen = this.options.listen ?? { host: this.ownAddress(), port: this.options.manifest.agentPort };
    this.server = this.buildServer();
    await this.server.listen(listen);
    this.log('agent.started', { epoch: this.epoch, instances: [...this.instances.keys()], listen: `${listen.host}:${listen.port}` });
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.server?.close();
    for (const instance of this.instances.values()) instance.qemu.qmp.close();
  }

  private ownAddress(): string {
    const host = this.options.manifest.hosts.find((candidate) => candidate.name === this.options.host);
    if (host === undefined) throw new Error(`host ${this.options.host} is not in the lab manifest`);
    return host.address;
  }

  /** Finds the VMs a previous agent left running: their records, pid files and QMP sockets. */
  private async reattach(): Promise<void> {
    let files: string[] = [];
    try {
      files = await readdir(this.runDirectory);
    } catch {
      return;
    }
    for (const file of files.filter((name) => name.endsWith('.instance.json'))) {
      const record = await readJson<InstanceRecord>(join(this.runDirectory, file));
      if (record === null) continue;
      const qemu = await attachVm({ name: record.vm, runDirectory: this.runDirectory }).catch(() => null);
      if (qemu === null) {
        await rm(join(this.runDirectory, file), { force: true });
        continue;
      }
      const status = await qemu.qmp.execute<{ running: boolean; status: string }>('query-status').catch(() => null);
      this.instances.set(record.vm, {
        ...record,
        qemu,
        booted: await this.consoleShowsBoot(record.vm),
        paused: status !== null && !status.running,
        leaseRenewedAtMs: Date.now(),
        incoming: status?.status === 'inmigrate',
      });
      this.log('vm.reattached', { vm: record.vm, instanceId: record.instanceId, pid: qemu.pid });
    }
  }

  private recordFile(vm: string): string {
    return join(this.runDirectory, `${vm}.instance.json`);
  }

  private async persist(instance: AgentInstance): Promise<void> {
    const record: InstanceRecord = {
      vm: instance.vm,
      instanceId: instance.instanceId,
      role: instance.role,
      generation: instance.generation,
      diskAttached: instance.diskAttached,
      launchedAtMs: instance.launchedAtMs,
      quarantined: instance.quarantined,
      shares: instance.shares,
    };
    await writeAtomic(this.recordFile(instance.vm), JSON.stringify(record));
  }

  private async consoleShowsBoot(vm: string): Promise<boolean> {
    try {
      return (await readFile(join(this.runDirectory, `${vm}.console.log`), 'utf8')).includes(`tmr-guest: ${vm} up at`);
    } catch {
      return false;
    }
  }

  async state(): Promise<AgentState> {
    const cpu = new Map<string, { cpuMs: number; waitMs: number } | null>();
    for (const instance of this.instances.values()) cpu.set(instance.vm, await readCpu(instance.qemu.pid));
    return {
      host: this.options.host,
      atMs: Date.now(),
      epoch: this.epoch,
      storagePathUp: this.storagePathUp,
      fenced: this.fenced,
      instances: [...this.instances.values()].map((instance) => ({
        id: instance.instanceId,
        vm: instance.vm,
        role: instance.role,
        state: instance.booted && !instance.incoming ? 'running' : 'booting',
        booted: instance.booted,
        diskAttached: instance.diskAttached,
        pid: instance.qemu.pid,
        generation: instance.generation,
        paused: instance.paused,
        incoming: instance.incoming,
        quarantined: instance.quarantined,
        shares: instance.shares,
        launchedAtMs: instance.launchedAtMs,
        cpuMs: cpu.get(instance.vm)?.cpuMs ?? null,
        cpuWaitMs: cpu.get(instance.vm)?.waitMs ?? null,
      })),
    };
  }

  // ── The heartbeat: datastore channel, leases, fences, self-fencing ──────────────────────────

  /**
   * Every heartbeat: the datastore heartbeat and the leases first (they are what keeps the host
   * trusted and its copies legitimate), then the bookkeeping of each copy. Nothing here waits on a
   * guest: a QEMU busy with a migration must not delay the heartbeat.
   */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = Date.now();
      const pathUp = !existsSync(this.options.layout.fault(this.options.host, 'storage-path-down'));
      if (pathUp !== this.storagePathUp) await this.storagePathChanged(pathUp);
      if (this.storagePathUp) {
        await this.writeHeartbeats(now);
        if (!this.fenced && (await this.fenceStanding())) await this.obeyFence();
        await this.renewLeases(now);
      } else {
        // Lost the datastore: the leases cannot be renewed. If the control plane is silent too,
        // nobody can tell this host to stop: stop before the leases run out.
        const silentMs = now - this.lastHeardMs;
        const limit = this.options.manifest.timings.leaseMs - SELF_FENCE_MARGIN_MS;
        for (const instance of [...this.instances.values()]) {
          if (instance.role !== 'primary' || !instance.diskAttached) continue;
          if (silentMs > limit && now - instance.leaseRenewedAtMs > limit) {
            await this.kill(instance, 'self-fence: lost both the control plane and the datastore (its lease cannot be renewed)');
          }
        }
      }
      // Reap copies whose QEMU is gone (it crashed, or someone killed it); notice boots.
      for (const instance of [...this.instances.values()]) {
        if (!processAlive(instance.qemu.pid)) {
          if (this.instances.get(instance.vm) !== instance) continue;
          this.instances.delete(instance.vm);
          instance.qemu.qmp.close();
          await rm(this.recordFile(instance.vm), { force: true });
          this.log('vm.exited', { vm: instance.vm, instanceId: instance.instanceId });
        } else if (!instance.booted && !instance.incoming && (await this.consoleShowsBoot(instance.vm))) {
          instance.booted = true;
          this.log('vm.booted', { vm: instance.vm, afterMs: now - instance.launchedAtMs });
          // A copy restarted here has a MAC the bridges last saw behind another host: announce it
          // (segmentation drops the guest's own IPv6 chatter that used to teach them).
          if (instance.role === 'primary') void instance.qemu.qmp.execute('announce-self', ANNOUNCE).catch(() => undefined);
        }
      }
    } catch (error) {
      this.log('tick.error', { error: error instanceof Error ? error.message : String(error) });
    } finally {
      this.ticking = false;
    }
  }

  private async writeHeartbeats(now: number): Promise<void> {
    const record: HeartbeatRecord = { host: this.options.host, atMs: now, seq: ++this.heartbeatSeq };
    for (const ds of this.options.manifest.datastores) await writeAtomic(this.options.layout.heartbeat(ds, this.options.host), JSON.stringify(record));
  }

  private async renewLeases(now: number): Promise<void> {
    for (const instance of [...this.instances.values()]) {
      if (instance.role !== 'primary' || !instance.diskAttached || instance.incoming) continue;
      const vm = this.vmByName.get(instance.vm)!;
      const file = this.options.layout.lease(vm.datastore, vm.name);
      const lease = await readJson<Lease>(file);
      const revocation = await readJson<Revocation>(this.options.layout.revocation(vm.datastore, vm.name));
      if (revokes(revocation, { host: this.options.host, instanceId: instance.instanceId })) {
        await this.kill(instance, `self-fence: its lease was revoked by a storage fence (controller epoch ${revocation!.epoch})`);
        continue;
      }
      if (lease !== null && lease.host !== this.options.host && lease.expiresAtMs > now) {
        await this.kill(instance, `self-fence: host ${lease.host} holds its lease`);
        continue;
      }
      await writeAtomic(file, JSON.stringify(this.leaseFor(instance, now)));
      instance.leaseRenewedAtMs = now;
    }
  }

  private leaseFor(instance: AgentInstance, now: number): Lease {
    return {
      vm: instance.vm,
      host: this.options.host,
      instanceId: instance.instanceId,
      epoch: this.epoch,
      generation: instance.generation,
      renewedAtMs: now,
      expiresAtMs: now + this.options.manifest.timings.leaseMs,
    };
  }

  /** Takes a VM's lease for a copy that is about to write; refuses while another host holds it. */
  private async takeLease(instance: Pick<AgentInstance, 'vm' | 'instanceId' | 'generation'>): Promise<string | null> {
    const vm = this.vmByName.get(instance.vm)!;
    const file = this.options.layout.lease(vm.datastore, vm.name);
    const now = Date.now();
    const lease = await readJson<Lease>(file);
    const revocation = await readJson<Revocation>(this.options.layout.revocation(vm.datastore, vm.name));
    if (!leaseFree(lease, revocation, this.options.host, now)) {
      return `host ${lease!.host} holds the lease of ${vm.name} for ${Math.ceil((lease!.expiresAtMs - now) / 100) / 10} s more`;
    }
    const taken: Lease = { vm: vm.name, host: this.options.host, instanceId: instance.instanceId, epoch: this.epoch, generation: instance.generation, renewedAtMs: now, expiresAtMs: now + this.options.manifest.timings.leaseMs };
    await writeAtomic(file, JSON.stringify(taken));
    return null;
  }

  private async releaseLease(instance: AgentInstance): Promise<void> {
    const vm = this.vmByName.get(instance.vm)!;
    const file = this.options.layout.lease(vm.datastore, vm.name);
    const lease = await readJson<Lease>(file);
    if (lease !== null && lease.host === this.options.host && lease.instanceId === instance.instanceId) await rm(file, { force: true });
  }

  private async fenceStanding(): Promise<boolean> {
    for (const ds of this.options.manifest.datastores) {
      if (existsSync(this.options.layout.fence(ds, this.options.host))) return true;
    }
    return false;
  }

  /** A storage fence of this host: kill everything, acknowledge on the datastore, start nothing. */
  private async obeyFence(): Promise<void> {
    this.fenced = true;
    const killed: string[] = [];
    for (const instance of [...this.instances.values()]) {
      await this.kill(instance, 'storage fence of the host');
      killed.push(instance.vm);
    }
    for (const ds of this.options.manifest.datastores) {
      const fence = await readJson<FenceRecord>(this.options.layout.fence(ds, this.options.host));
      if (fence === null) continue;
      const ack: FenceAck = { host: this.options.host, epoch: fence.epoch, atMs: Date.now(), killed };
      await writeAtomic(this.options.layout.fenceAck(ds, this.options.host), JSON.stringify(ack));
    }
    this.log('host.fenced', { method: 'storage', killed });
  }

  private async storagePathChanged(up: boolean): Promise<void> {
    this.storagePathUp = up;
    // All paths down: the guests' disk I/O stalls, as it does on a real host (QEMU pauses them).
    for (const instance of this.instances.values()) {
      if (!instance.diskAttached) continue;
      await instance.qemu.qmp.execute(up ? 'cont' : 'stop', undefined, 2_000).catch(() => undefined);
      instance.paused = !up;
    }
    this.log(up ? 'storage.path-restored' : 'storage.path-lost');
  }

  private async kill(instance: AgentInstance, reason: string): Promise<void> {
    await killVm(instance.qemu).catch(() => undefined);
    this.instances.delete(instance.vm);
    await rm(this.recordFile(instance.vm), { force: true });
    this.log('vm.killed', { vm: instance.vm, instanceId: instance.instanceId, reason });
  }

  // ── Operations the control plane asks for ────────────────────────────────────────────────────

  /** Every mutating call carries the controller's epoch; an older one is refused. */
  private async checkEpoch(epoch: number): Promise<string | null> {
    if (epoch < this.epoch) return `epoch ${epoch} is older than ${this.epoch}: a newer controller leads`;
    if (epoch > this.epoch) {
      this.epoch = epoch;
      await writeAtomic(join(this.runDirectory, 'epoch'), String(epoch));
    }
    return null;
  }

  private async withVm(vm: string, work: () => Promise<AgentAnswer>): Promise<AgentAnswer> {
    if (this.busy.has(vm)) return { ok: false, reason: `another operation on ${vm} is under way` };
    this.busy.add(vm);
    try {
      return await work();
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    } finally {
      this.busy.delete(vm);
    }
  }

  async startVm(request: z.infer<typeof StartBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    if (this.fenced) return { ok: false, reason: `host ${this.options.host} is fenced: power it on first` };
    if (!this.storagePathUp) return { ok: false, reason: `host ${this.options.host} has no path to its datastore` };
    const vm = this.vmByName.get(request.vm);
    if (vm === undefined) return { ok: false, reason: `VM ${request.vm} is not in this lab` };
    return this.withVm(request.vm, async () => {
      if (this.instances.has(vm.name)) return { ok: false, reason: `VM ${vm.name} already runs on ${this.options.host}` };
      const writable = request.role === 'primary';
      const incoming = request.incomingPort !== undefined;
      const disk = this.options.layout.disk(vm.datastore, vm.name);
      if (writable) {
        await createOverlay({ base: this.image!.baseDisk, overlay: disk });
        // A migration's target takes the lease when the migration completes, not before.
        if (!incoming) {
          const held = await this.takeLease({ vm: vm.name, instanceId: request.instanceId, generation: request.generation });
          if (held !== null) return { ok: false, reason: held };
        }
      }
      const tap = await createTap({ host: this.options.host, vm: vm.name });
      const qemu = await launchVm(
        {
          name: vm.name,
          image: this.image!,
          runDirectory: this.runDirectory,
          ...(writable ? { disk } : {}),
          network: { tap, address: `${vm.address}/${this.options.manifest.prefix}`, gateway: this.options.manifest.rootAddress, mac: vm.mac },
          accelerator: this.options.manifest.accelerator,
          memoryMiB: vm.memoryMiB,
          writeIntervalMs: this.options.manifest.timings.writeIntervalMs,
          ...(incoming ? { incoming: `tcp:${this.ownAddress()}:${request.incomingPort}` } : {}),
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
        leaseRenewedAtMs: Date.now(),
        incoming,
      };
      this.instances.set(vm.name, instance);
      await this.persist(instance);
      this.log('vm.started', { vm: vm.name, instanceId: request.instanceId, role: request.role, pid: qemu.pid, incoming });
      return { ok: true, detail: `pid ${qemu.pid}` };
    });
  }

  async stopVm(request: z.infer<typeof VmBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return this.withVm(request.vm, async () => {
      const instance = this.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: true, detail: 'not running here' };
      // A paused guest (its storage path is down) cannot shut down cleanly: cut it.
      if (instance.paused) await killVm(instance.qemu);
      else await stopVm(instance.qemu, { graceMs: 2_000 });
      this.instances.delete(instance.vm);
      await rm(this.recordFile(instance.vm), { force: true });
      if (this.storagePathUp) await this.releaseLease(instance);
      this.log('vm.stopped', { vm: instance.vm, instanceId: instance.instanceId });
      return { ok: true };
    });
  }

  /** A hot standby takes over: the lease, the disk (hot-plugged), the link, an announcement. */
  async promote(request: z.infer<typeof PromoteBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    if (this.fenced) return { ok: false, reason: `host ${this.options.host} is fenced` };
    return this.withVm(request.vm, async () => {
      const instance = this.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: false, reason: `no standby ${request.instanceId} on ${this.options.host}` };
      if (instance.role === 'primary') return { ok: true, detail: 'already primary' };
      const held = await this.takeLease({ vm: instance.vm, instanceId: instance.instanceId, generation: request.generation });
      if (held !== null) return { ok: false, reason: held };
      const vm = this.vmByName.get(instance.vm)!;
      const disk = this.options.layout.disk(vm.datastore, vm.name);
      await createOverlay({ base: this.image!.baseDisk, overlay: disk });
      await hotplugDisk(instance.qemu, disk);
      await instance.qemu.qmp.execute('set_link', { name: 'net0', up: true });
      // The same MAC now behind another port: tell the bridges (RARP/GARP self-announcement).
      await instance.qemu.qmp.execute('announce-self', ANNOUNCE).catch(() => undefined);
      instance.role = 'primary';
      instance.diskAttached = true;
      instance.leaseRenewedAtMs = Date.now();
      await this.persist(instance);
      this.log('vm.promoted', { vm: instance.vm, instanceId: instance.instanceId });
      return { ok: true };
    });
  }

  /** Live migration out: QEMU sends the running VM to the target's waiting QEMU; the lease follows. */
  async migrateOut(request: z.infer<typeof MigrateBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return this.withVm(request.vm, async () => {
      const instance = this.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: false, reason: `VM ${request.vm} does not run here as ${request.instanceId}` };
      const started = Date.now();
      await instance.qemu.qmp.execute('migrate', { uri: `tcp:${request.toAddress}:${request.port}` });
      for (;;) {
        const status = await instance.qemu.qmp.execute<{ status?: string; 'error-desc'?: string; downtime?: number }>('query-migrate');
        if (status.status === 'completed') {
          const downtimeMs = status.downtime ?? null;
          // The source is paused for good now: it must not run again. The target owns the lease.
          await killVm(instance.qemu);
          this.instances.delete(instance.vm);
          await rm(this.recordFile(instance.vm), { force: true });
          this.log('vm.migrated-out', { vm: instance.vm, to: request.toAddress, ms: Date.now() - started, downtimeMs });
          return { ok: true, detail: `migrated in ${Date.now() - started} ms, downtime ${downtimeMs ?? '?'} ms` };
        }
        if (status.status === 'failed' || status.status === 'cancelled') return { ok: false, reason: `migration ${status.status}: ${status['error-desc'] ?? ''}` };
        if (Date.now() - started > 30_000) {
          await instance.qemu.qmp.execute('migrate_cancel').catch(() => undefined);
          return { ok: false, reason: 'migration did not complete within 30 s' };
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });
  }

  /** The target of a migration, once it runs: it takes the lease and announces itself. */
  async adoptMigrated(request: z.infer<typeof PromoteBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return this.withVm(request.vm, async () => {
      const instance = this.instances.get(request.vm);
      if (instance === undefined || instance.instanceId !== request.instanceId) return { ok: false, reason: `no incoming copy ${request.instanceId} here` };
      // QEMU resumes the guest on the target by itself once the whole state has arrived.
      let status = await instance.qemu.qmp.execute<{ running: boolean; status: string }>('query-status');
      for (let waitedMs = 0; !status.running && waitedMs < 10_000; waitedMs += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        status = await instance.qemu.qmp.execute<{ running: boolean; status: string }>('query-status');
      }
      if (!status.running) return { ok: false, reason: `the incoming copy is ${status.status}, not running` };
      if (instance.role === 'primary') {
        const vm = this.vmByName.get(instance.vm)!;
        const taken: Lease = { ...this.leaseFor(instance, Date.now()), generation: request.generation };
        await writeAtomic(this.options.layout.lease(vm.datastore, vm.name), JSON.stringify(taken));
      }
      // A standby stays off the network; a primary announces its MAC on its new port.
      await instance.qemu.qmp.execute('set_link', { name: 'net0', up: instance.role === 'primary' });
      instance.incoming = false;
      instance.paused = false;
      instance.booted = true;
      instance.leaseRenewedAtMs = Date.now();
      if (instance.role === 'primary') await instance.qemu.qmp.execute('announce-self', ANNOUNCE).catch(() => undefined);
      await this.persist(instance);
      return { ok: true };
    });
  }

  /** CPU weight of a copy: the nice value of its QEMU (shares 1024 = nice 0; double = 5 less). */
  async setShares(request: z.infer<typeof SharesBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    const instance = this.instances.get(request.vm);
    if (instance === undefined) return { ok: false, reason: `VM ${request.vm} does not run here` };
    const nice = Math.max(-20, Math.min(19, Math.round(-5 * Math.log2(request.shares / 1024))));
    await run(['renice', '-n', String(nice), '-p', String(instance.qemu.pid)]);
    instance.shares = request.shares;
    await this.persist(instance);
    return { ok: true, detail: `nice ${nice}` };
  }

  /**
   * Quarantine at the host's virtual switch: an nftables `bridge` table in this namespace drops
   * every frame from or to the VM's tap except to and from the allowed addresses (the forensic
   * network). Nothing else on the host changes; release deletes the VM's chain.
   */
  async quarantine(request: z.infer<typeof QuarantineBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    const instance = this.instances.get(request.vm);
    const table = `tmr-q-${request.vm}`.slice(0, 60);
    if (!request.quarantined) {
      await tryRun(['nft', 'delete', 'table', 'bridge', table]);
      if (instance !== undefined) {
        instance.quarantined = false;
        await this.persist(instance);
      }
      return { ok: true };
    }
    const tap = tapName(request.vm);
    const allowed = request.allow.length > 0 ? `{ ${request.allow.join(', ')} }` : null;
    // ARP passes (the forensic workstation must resolve the VM); IP only to and from `allow`.
    const script = [
      `table bridge ${table} {`,
      '  chain forward {',
      '    type filter hook forward priority -10; policy accept;',
      `    iifname "${tap}" ether type { arp, 0x8035 } accept`,
      `    oifname "${tap}" ether type { arp, 0x8035 } accept`,
      ...(allowed === null ? [] : [`    iifname "${tap}" ip daddr ${allowed} accept`, `    oifname "${tap}" ip saddr ${allowed} accept`]),
      `    iifname "${tap}" drop`,
      `    oifname "${tap}" drop`,
      '  }',
      '}',
    ].join('\n');
    await tryRun(['nft', 'delete', 'table', 'bridge', table]);
    await run(['nft', '-f', '-'], { input: script });
    if (instance !== undefined) {
      instance.quarantined = true;
      await this.persist(instance);
    }
    this.log('vm.quarantined', { vm: request.vm, bridge: HOST_BRIDGE, allow: request.allow });
    return { ok: true };
  }

  /** Enforces a segmentation policy on this host's bridge (replacing the previous one at once). */
  async applyPolicy(request: NetworkPolicyRequest): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    const script = policyScript(request);
    // Delete and re-create in one transaction: no moment without a policy.
    const existing = await tryRun(['nft', 'list', 'table', 'bridge', POLICY_TABLE]);
    await run(['nft', '-f', '-'], { input: `${existing === null ? '' : `delete table bridge ${POLICY_TABLE}\n`}${script}` });
    await writeAtomic(join(this.runDirectory, 'policy.json'), JSON.stringify({ monitor: request.monitor, rules: request.rules }));
    this.log('policy.applied', { rules: request.rules.length });
    return { ok: true, detail: `${request.rules.length} rules` };
  }

  /** A point-in-time copy of a running VM's disk (QMP drive-backup, full), made read-only. */
  async snapshot(request: z.infer<typeof SnapshotBody>): Promise<AgentAnswer> {
    const refused = await this.checkEpoch(request.epoch);
    if (refused !== null) return { ok: false, reason: refused };
    return this.withVm(request.vm, async () => {
      const instance = this.instances.get(request.vm);
      if (instance === undefined || !instance.diskAttached) return { ok: false, reason: `VM ${request.vm} has no writable copy here` };
      const vm = this.vmByName.get(instance.vm)!;
      const directory = this.options.layout.snapshots(vm.datastore, vm.name);
      const target = join(directory, `${request.snapshotId}.qcow2`);
      await writeAtomic(join(directory, `${request.snapshotId}.json`), JSON.stringify({ id: request.snapshotId, vm: vm.name, takenAtMs: Date.now(), retainUntilMs: request.retainUntilMs, complete: false }));
      const done = instance.qemu.qmp.waitForEvent('BLOCK_JOB_COMPLETED', 30_000, (event) => (event.data as { device?: string } | undefined)?.device === `snap-${request.snapshotId}`.slice(0, 60));
      await instance.qemu.qmp.execute('drive-backup', { 'job-id': `snap-${request.snapshotId}`.slice(0, 60), device: 'disk0', target, sync: 'full', format: 'qcow2', mode: 'absolute-paths' });
      await done;
      await run(['chmod', '0444', target]);
      await writeAtomic(join(directory, `${request.snapshotId}.json`), JSON.stringify({ id: request.snapshotId, vm: vm.name, takenAtMs: Date.now(), retainUntilMs: request.retainUntilMs, complete: true }), 0o444);
      return { ok: true, detail: target };
    });
  }

  // ── HTTP ─────────────────────────────────────────────────────────────────────────────────────

  private authorized(header: string | undefined): boolean {
    if (header === undefined || !header.startsWith('Bearer ')) return false;
    const offered = Buffer.from(header.slice(7), 'utf8');
    return offered.length === this.tokenBuffer.length && timingSafeEqual(offered, this.tokenBuffer);
  }

  buildServer(): FastifyInstance {
    const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024 });
    app.addHook('onRequest', async (request, reply) => {
      if (!this.authorized(request.headers.authorization)) {
        await reply.code(401).send({ ok: false, reason: 'missing or wrong bearer token' });
        return reply;
      }
      this.lastHeardMs = Date.now();
      return undefined;
    });
    const handle = <S extends z.ZodType>(schema: S, work: (body: z.infer<S>) => Promise<AgentAnswer>) =>
      async (request: { body: unknown }, reply: FastifyReply) => {
        const parsed = schema.safeParse(request.body);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          return reply.code(400).send({ ok: false, reason: `bad request at ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}` });
        }
        const answer = await work(parsed.data);
        return reply.code(answer.ok ? 200 : 409).send(answer);
      };
    app.get('/state', () => this.state());
    app.post('/epoch', handle(EpochBody, async (body) => {
      const refused = await this.checkEpoch(body.epoch);
      return refused === null ? { ok: true } : { ok: false, reason: refused };
    }));
    app.post('/vms/start', handle(StartBody, (body) => this.startVm(body)));
    app.post('/vms/stop', handle(VmBody, (body) => this.stopVm(body)));
    app.post('/vms/promote', handle(PromoteBody, (body) => this.promote(body)));
    app.post('/vms/migrate', handle(MigrateBody, (body) => this.migrateOut(body)));
    app.post('/vms/adopt', handle(PromoteBody, (body) => this.adoptMigrated(body)));
    app.post('/vms/shares', handle(SharesBody, (body) => this.setShares(body)));
    app.post('/vms/quarantine', handle(QuarantineBody, (body) => this.quarantine(body)));
    app.post('/vms/snapshot', handle(SnapshotBody, (body) => this.snapshot(body)));
    app.post('/policy', handle(PolicyBody, (body) => this.applyPolicy(body)));
    return app;
  }
}

/** CPU of a process from /proc: user + system time, and the run-queue wait (schedstat) — the CPU ready. */
export async function readCpu(pid: number): Promise<{ cpuMs: number; waitMs: number } | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const schedstat = (await readFile(`/proc/${pid}/schedstat`, 'utf8')).trim().split(' ');
    return { cpuMs: (ticks * 1000) / 100, waitMs: Number(schedstat[1]) / 1e6 };
  } catch {
    return null;
  }
}
