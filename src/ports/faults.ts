/**
 * The FaultInjector port: what a drill scenario needs to strike a fault and repair it, and what it
 * reads to aim one (where the copies run). The twin implements it in memory; the real-VM lab
 * (src/drill/lab/faults.ts) with its power controller, uplinks and storage paths. A scenario
 * written against it runs on both.
 *
 * Powering a fenced host on, evacuating a host and releasing it are not here: a drill asks the
 * controller for those, as an operator would, on every substrate. No I/O here.
 */
import type { Blueprint } from '../model/index.ts';
import type { InstanceObservation } from './substrate.ts';

export type Fault =
  | { readonly kind: 'host-crash'; readonly host: string }
  | { readonly kind: 'host-hang'; readonly host: string }
  | { readonly kind: 'host-isolation'; readonly host: string }
  /** The host loses every network (management and the VMs' service networks), not its storage path. */
  | { readonly kind: 'host-network-loss'; readonly host: string }
  | { readonly kind: 'storage-path-loss'; readonly host: string }
  | { readonly kind: 'host-power-loss'; readonly host: string }
  | { readonly kind: 'rack-failure'; readonly rack: string }
  | { readonly kind: 'room-failure'; readonly room: string }
  | { readonly kind: 'power-feed-failure'; readonly feed: string }
  | { readonly kind: 'datastore-failure'; readonly datastore: string };

export function faultTarget(fault: Fault): string {
  switch (fault.kind) {
    case 'rack-failure':
      return fault.rack;
    case 'room-failure':
      return fault.room;
    case 'power-feed-failure':
      return fault.feed;
    case 'datastore-failure':
      return fault.datastore;
    default:
      return fault.host;
  }
}

/** One copy of a VM and where it runs: what a scenario aims its fault by. */
export type PlacedCopy = Pick<InstanceObservation, 'vm' | 'host' | 'role'>;

/** vCPU and memory of the copies on each host, every host of the blueprint listed in its order (an idle one at 0). */
export function hostLoad(blueprint: Blueprint, copies: readonly PlacedCopy[]): Map<string, { vcpu: number; memoryGiB: number }> {
  const sizes = new Map(blueprint.vms.map((vm) => [vm.name, vm]));
  const load = new Map(blueprint.hosts.map((host) => [host.name, { vcpu: 0, memoryGiB: 0 }]));
  for (const copy of copies) {
    const vm = sizes.get(copy.vm)!;
    const entry = load.get(copy.host)!;
    entry.vcpu += vm.vcpu;
    entry.memoryGiB += vm.memoryGiB;
  }
  return load;
}

/**
 * Strikes faults and repairs them. `F` is the faults a substrate can strike: the twin strikes
 * every `Fault`; the lab strikes fewer, and one the twin cannot (a killed host agent). An injector
 * refuses, by throwing, a fault it cannot strike. The twin completes at once; the lab when the
 * machine has done it.
 */
export interface FaultInjector<F extends { readonly kind: string } = Fault> {
  inject(fault: F): void | Promise<void>;
  /** Undoes a fault: a repair. */
  heal(fault: F): void | Promise<void>;
  /** The copies that run or boot now, in a stable order: the busiest host, a continuous VM's primary. */
  copies(): readonly PlacedCopy[];
}
