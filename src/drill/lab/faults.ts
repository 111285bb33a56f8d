/**
 * The FaultInjector port on the real-VM lab: a power cut through the lab's power controller, a cut
 * uplink, a lost storage path (the fault file the host's agent obeys), a killed host agent. The
 * copies a scenario aims by are the ones the controller observes, as an operator's console shows
 * them.
 *
 * Of the faults nobody scripted (issue 13) it strikes what real processes allow: a slowed host (its
 * QEMU processes stopped and continued in a duty cycle, as cpulimit does: they get `speed` of the
 * CPU while the host's agent, and so its heartbeats, run freely), a health pattern (the VM's QEMU
 * stopped while it should fail), a flapping uplink. It refuses the others with
 * TMR_LAB_FAULT_UNSUPPORTED, saying why (see UNSUPPORTED).
 *
 * A lab host has a single uplink for management and VM traffic, so isolating it cuts its VMs off
 * too: host-isolation and host-network-loss are the same cut here (calibrate.ts compares a real
 * isolation with the twin's host-network-loss for that reason).
 */
import { readFile, rm } from 'node:fs/promises';
import type { Controller } from '../../control/controller.ts';
import { TomaranaiError } from '../../errors/index.ts';
import type { Fault, FaultInjector, PlacedCopy } from '../../ports/index.ts';
import { type LabLayout, type LabManifest, writeAtomic } from '../../substrate/qemu/lab.ts';
import { namespacePids, setUplink } from '../../substrate/qemu/netns.ts';
import type { PowerController } from '../../substrate/qemu/power.ts';

/** The faults the lab can strike: some of the twin's, and one the twin has no part for (its host agents). */
export type LabFault = Fault | { readonly kind: 'agent-failure'; readonly host: string };

/** Why the lab cannot strike a kind: the message of its TMR_LAB_FAULT_UNSUPPORTED. */
export const UNSUPPORTED: Readonly<Partial<Record<LabFault['kind'], string>>> = Object.freeze({
  'clock-step': "the lab's host namespaces share the machine's clock: a step would move every host and the controller with it",
  'datastore-latency': "the lab's datastore is a directory on the machine's disk; it has no I/O path to slow",
  'datastore-full': "the lab's datastore is a directory; filling the machine's disk would break more than the lab",
  'snapshot-failure': 'the lab takes no scheduled snapshots to fail',
  'crash-loop': 'the lab has no hook in a guest to crash it after each boot',
  'controller-pause': "the lab's controller runs in the drill's own process, which cannot pause and wake itself",
  'host-crash': 'a host namespace cannot crash while its power stays on; use host-power-loss',
  'host-hang': 'a host namespace cannot hang as a whole',
  'rack-failure': 'the lab has one host per power outlet; fail them one by one',
  'room-failure': 'the lab has one host per power outlet; fail them one by one',
  'power-feed-failure': 'the lab has one host per power outlet; fail them one by one',
  'datastore-failure': "the lab's datastore is a directory on the machine's disk",
});

/** What the lab does to real processes, injectable so that its timing can be tested without QEMU. */
export interface LabProcesses {
  /** The QEMU processes of a host (every VM's, or one VM's), never its agent. */
  qemuPids(host: string, vm?: string): Promise<number[]>;
  signal(pid: number, signal: 'SIGSTOP' | 'SIGCONT'): void;
  setUplink(host: string, up: boolean): Promise<void>;
}

export interface LabFaultInjectorOptions {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly power: PowerController;
  readonly controller: Controller;
  readonly processes?: LabProcesses;
}

/** A duty cycle of real time: `off` for offMs, then on for onMs, over and over, until stopped. */
export class DutyCycle {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly phases: { readonly offMs: number; readonly onMs: number },
    private readonly set: (on: boolean) => Promise<void>,
  ) {}

  start(): void {
    void this.phase(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.set(true);
  }

  private async phase(on: boolean): Promise<void> {
    if (this.stopped) return;
    await this.set(on);
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.phase(!on), on ? this.phases.onMs : this.phases.offMs);
  }
}

/** The period of a slowed host's duty cycle: short enough that a probe sees the slowness, not an outage. */
const SLOWDOWN_PERIOD_MS = 200;

export class LabFaultInjector implements FaultInjector<LabFault> {
  private readonly cycles = new Map<string, DutyCycle>();
  private readonly processes: LabProcesses;

  constructor(private readonly options: LabFaultInjectorOptions) {
    this.processes = options.processes ?? realProcesses(options.manifest);
  }

  async inject(fault: LabFault): Promise<void> {
    switch (fault.kind) {
      case 'host-power-loss':
        await this.options.power.off(fault.host);
        return;
      case 'host-isolation':
      case 'host-network-loss':
        await setUplink({ host: fault.host, up: false });
        return;
      case 'storage-path-loss':
        await writeAtomic(this.options.layout.fault(fault.host, 'storage-path-down'), 'down');
        return;
      case 'agent-failure': {
        const agent = await agentPid(this.options.manifest, fault.host);
        if (agent !== null) process.kill(agent, 'SIGKILL');
        return;
      }
      case 'host-slowdown': {
        const runMs = Math.max(1, Math.round(SLOWDOWN_PERIOD_MS * Math.min(1, Math.max(0, fault.speed))));
        this.cycle(`slow:${fault.host}`, { offMs: SLOWDOWN_PERIOD_MS - runMs, onMs: runMs }, (on) => this.signalAll(fault.host, undefined, on));
        return;
      }
      case 'vm-health-pattern': {
        const host = this.options.controller.state.vms.get(fault.vm)?.lastHost ?? null;
        if (host === null) throw new TomaranaiError('TMR_LAB_FAULT_UNSUPPORTED', `${fault.vm} runs on no host the controller knows`);
        this.cycle(`pattern:${fault.vm}`, { offMs: fault.failS * 1000, onMs: fault.passS * 1000 }, (on) => this.signalAll(host, fault.vm, on));
        return;
      }
      case 'channel-flap':
        // One uplink per lab host: a flap cuts the VMs' traffic too (see the note at the top).
        this.cycle(`flap:${fault.host}`, { offMs: fault.downS * 1000, onMs: fault.upS * 1000 }, (on) => this.processes.setUplink(fault.host, on));
        return;
      default:
        throw refusal(fault.kind);
    }
  }

  /** Starts a duty cycle under `key`, replacing none: a fault struck twice runs once. */
  private cycle(key: string, phases: { offMs: number; onMs: number }, set: (on: boolean) => Promise<void>): void {
    if (this.cycles.has(key)) return;
    const cycle = new DutyCycle(phases, set);
    this.cycles.set(key, cycle);
    cycle.start();
  }

  private async stopCycle(key: string): Promise<void> {
    const cycle = this.cycles.get(key);
    this.cycles.delete(key);
    await cycle?.stop();
  }

  private async signalAll(host: string, vm: string | undefined, on: boolean): Promise<void> {
    for (const pid of await this.processes.qemuPids(host, vm)) this.processes.signal(pid, on ? 'SIGCONT' : 'SIGSTOP');
  }

  /**
   * Repairs a cut link or storage path. A host whose power was cut, or whose agent was killed,
   * comes back only when the operator powers it on through the controller, which may have fenced
   * it: powering it on behind the controller's back would undo a fence it relies on.
   */
  async heal(fault: LabFault): Promise<void> {
    switch (fault.kind) {
      case 'host-isolation':
      case 'host-network-loss':
        await setUplink({ host: fault.host, up: true });
        return;
      case 'storage-path-loss':
        await rm(this.options.layout.fault(fault.host, 'storage-path-down'), { force: true });
        return;
      case 'host-power-loss':
      case 'agent-failure':
        throw new Error(`the lab does not repair ${fault.kind} itself: the operator powers the host on through the controller`);
      case 'host-slowdown':
        await this.stopCycle(`slow:${fault.host}`);
        return;
      case 'vm-health-pattern':
        await this.stopCycle(`pattern:${fault.vm}`);
        return;
      case 'channel-flap':
        await this.stopCycle(`flap:${fault.host}`);
        return;
      default:
        throw refusal(fault.kind);
    }
  }

  copies(): readonly PlacedCopy[] {
    return [...this.options.controller.state.instances.values()];
  }
}

function refusal(kind: LabFault['kind']): TomaranaiError {
  const why = UNSUPPORTED[kind] ?? 'it has no part to break for it';
  return new TomaranaiError('TMR_LAB_FAULT_UNSUPPORTED', `the lab cannot strike ${kind}: ${why}`);
}

/** The real processes: QEMU's are named tmr-<vm> (the agent is the node process beside them). */
function realProcesses(manifest: LabManifest): LabProcesses {
  return {
    async qemuPids(host, vm) {
      const namespace = manifest.hosts.find((candidate) => candidate.name === host)?.namespace;
      if (namespace === undefined) return [];
      const pids: number[] = [];
      for (const pid of await namespacePids(namespace)) {
        const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (!command.includes('qemu')) continue;
        // QEMU runs as `-name tmr-<vm>,process=…` (substrate/qemu/vm.ts); the comma ends the name.
        if (vm === undefined || command.includes(`tmr-${vm},`)) pids.push(pid);
      }
      return pids;
    },
    signal(pid, signal) {
      try {
        process.kill(pid, signal);
      } catch {
        // Gone meanwhile (stopped by the controller): nothing to slow.
      }
    },
    setUplink: (host, up) => setUplink({ host, up }),
  };
}

/** The agent's pid: the node process in the host's namespace (QEMU's are named tmr-…). */
export async function agentPid(manifest: LabManifest, host: string): Promise<number | null> {
  const namespace = manifest.hosts.find((candidate) => candidate.name === host)?.namespace;
  if (namespace === undefined) return null;
  for (const pid of await namespacePids(namespace)) {
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (command.includes('\0agent\0')) return pid;
  }
  return null;
}
