/**
 * The host agent's memory of its own host: the copies it runs (each persisted next to QEMU's pid
 * file, so a new agent reattaches to what an old one left running and repeats nothing), the
 * controller epoch it last obeyed, whether the host is fenced or cut off from its datastore, when
 * the control plane last called, and the agent's log. The heartbeat (agent-heartbeat.ts), the VM
 * operations (agent-operations.ts) and the network policy (network-policy.ts) all act through it,
 * so there is one place that knows what runs here.
 */
import { ChangeWatch } from '../../ports/liveness.ts';
import { appendFile, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentAnswer, AgentRole, AgentState } from './agent-protocol.ts';
import { type LabLayout, type LabManifest, type LabVm, readJson, writeAtomic } from './lab.ts';
import { attachVm, killVm, type GuestImage, type RunningVm } from './vm.ts';

/** QEMU's self-announcement (RARP, or a GARP from the guest): three rounds, 50 ms apart. */
export const ANNOUNCE = { initial: 10, max: 100, rounds: 3, step: 50 } as const;

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

export interface AgentInstance extends InstanceRecord {
  qemu: RunningVm;
  booted: boolean;
  paused: boolean;
  /** Wall-clock ms of the last renewal of its lease (primaries only). */
  /** On the agent's monotonic clock (performance.now()). */
  leaseRenewedAtMs: number;
  incoming: boolean;
}

export class AgentHost {
  readonly instances = new Map<string, AgentInstance>();
  private readonly busy = new Set<string>();
  epoch = 0;
  /** Wall-clock ms of the control plane's last authenticated call. */
  /** When the control plane last polled it, on this process's monotonic clock (a step of the wall clock moves nothing). */
  lastHeardMs = performance.now();
  /** Other holders' leases, judged by when this agent saw them change (liveness.ts), never by their written expiry. */
  readonly leaseWatch = new ChangeWatch();
  storagePathUp = true;
  fenced = false;
  /** The guest image every copy boots from, loaded when the agent starts. */
  image: GuestImage | null = null;
  private readonly vmByName: ReadonlyMap<string, LabVm>;

  constructor(
    readonly layout: LabLayout,
    readonly manifest: LabManifest,
    /** The host's name in the lab manifest. */
    readonly name: string,
  ) {
    this.vmByName = new Map(manifest.vms.map((vm) => [vm.name, vm]));
  }

  get runDirectory(): string {
    return this.layout.run(this.name);
  }

  /** The lab's VM of that name, or undefined when it is not in this lab. */
  vm(name: string): LabVm | undefined {
    return this.vmByName.get(name);
  }

  log(event: string, data: Record<string, unknown> = {}): void {
    const line = JSON.stringify({ at: new Date().toISOString(), host: this.name, event, ...data });
    void appendFile(this.layout.agentLog(this.name), `${line}\n`).catch(() => undefined);
  }

  ownAddress(): string {
    const host = this.manifest.hosts.find((candidate) => candidate.name === this.name);
    if (host === undefined) throw new Error(`host ${this.name} is not in the lab manifest`);
    return host.address;
  }

  /** Reads the epoch the previous agent persisted (0 when none did). */
  async loadEpoch(): Promise<void> {
    this.epoch = Number((await readFile(join(this.runDirectory, 'epoch'), 'utf8').catch(() => '0')).trim()) || 0;
  }

  /** Finds the VMs a previous agent left running: their records, pid files and QMP sockets. */
  async reattach(): Promise<void> {
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
        leaseRenewedAtMs: performance.now(),
        incoming: status?.status === 'inmigrate',
      });
      this.log('vm.reattached', { vm: record.vm, instanceId: record.instanceId, pid: qemu.pid });
    }
  }

  recordFile(vm: string): string {
    return join(this.runDirectory, `${vm}.instance.json`);
  }

  async persist(instance: AgentInstance): Promise<void> {
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

  /** Drops a copy whose QEMU is gone (stopped, migrated away or killed) and its record. */
  async forget(instance: AgentInstance): Promise<void> {
    this.instances.delete(instance.vm);
    await rm(this.recordFile(instance.vm), { force: true });
  }

  async consoleShowsBoot(vm: string): Promise<boolean> {
    try {
      return (await readFile(join(this.runDirectory, `${vm}.console.log`), 'utf8')).includes(`tmr-guest: ${vm} up at`);
    } catch {
      return false;
    }
  }

  async kill(instance: AgentInstance, reason: string): Promise<void> {
    await killVm(instance.qemu).catch(() => undefined);
    await this.forget(instance);
    this.log('vm.killed', { vm: instance.vm, instanceId: instance.instanceId, reason });
  }

  /** Every mutating call carries the controller's epoch; an older one is refused. */
  async checkEpoch(epoch: number): Promise<string | null> {
    if (epoch < this.epoch) return `epoch ${epoch} is older than ${this.epoch}: a newer controller leads`;
    if (epoch > this.epoch) {
      this.epoch = epoch;
      await writeAtomic(join(this.runDirectory, 'epoch'), String(epoch));
    }
    return null;
  }

  /** Runs one operation on a VM, refusing while another is under way on it; a throw becomes a refusal. */
  async withVm(vm: string, work: () => Promise<AgentAnswer>): Promise<AgentAnswer> {
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

  async state(): Promise<AgentState> {
    const cpu = new Map<string, { cpuMs: number; waitMs: number } | null>();
    for (const instance of this.instances.values()) cpu.set(instance.vm, await readCpu(instance.qemu.pid));
    return {
      host: this.name,
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
