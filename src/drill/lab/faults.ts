/**
 * The FaultInjector port on the real-VM lab: a power cut through the lab's power controller, a cut
 * uplink, a lost storage path (the fault file the host's agent obeys), a killed host agent. The
 * copies a scenario aims by are the ones the controller observes, as an operator's console shows
 * them.
 *
 * A lab host has a single uplink for management and VM traffic, so isolating it cuts its VMs off
 * too: host-isolation and host-network-loss are the same cut here (calibrate.ts compares a real
 * isolation with the twin's host-network-loss for that reason).
 */
import { readFile, rm } from 'node:fs/promises';
import type { Controller } from '../../control/controller.ts';
import type { Fault, FaultInjector, PlacedCopy } from '../../ports/index.ts';
import { type LabLayout, type LabManifest, writeAtomic } from '../../substrate/qemu/lab.ts';
import { namespacePids, setUplink } from '../../substrate/qemu/netns.ts';
import type { PowerController } from '../../substrate/qemu/power.ts';

/** The faults the lab can strike: some of the twin's, and one the twin has no part for (its host agents). */
export type LabFault = Fault | { readonly kind: 'agent-failure'; readonly host: string };

export interface LabFaultInjectorOptions {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly power: PowerController;
  readonly controller: Controller;
}

export class LabFaultInjector implements FaultInjector<LabFault> {
  constructor(private readonly options: LabFaultInjectorOptions) {}

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
      default:
        throw new Error(`the lab cannot strike ${fault.kind}: it has no part to break for it`);
    }
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
      default:
        throw new Error(`the lab cannot strike ${fault.kind}: it has no part to break for it`);
    }
  }

  copies(): readonly PlacedCopy[] {
    return [...this.options.controller.state.instances.values()];
  }
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
