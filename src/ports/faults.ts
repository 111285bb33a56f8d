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
  | { readonly kind: 'datastore-failure'; readonly datastore: string }
  // Failures nobody scripted (issue 13): the host keeps its heartbeats, something else goes wrong.
  /** The host runs at `speed` (0–1) of its CPU and disk: its VMs answer slowly, wait for CPU, and miss probes. */
  | { readonly kind: 'host-slowdown'; readonly host: string; readonly speed: number }
  /** A VM's health check fails `failS` and passes `passS`, over and over (a leaking guest, a flapping service). */
  | { readonly kind: 'vm-health-pattern'; readonly vm: string; readonly failS: number; readonly passS: number }
  /** The host's wall clock jumps by `stepMs` (an NTP step, a bad RTC): what it stamps is off by that much. */
  | { readonly kind: 'clock-step'; readonly host: string; readonly stepMs: number }
  /** Every I/O to the datastore takes `latencyMs` longer: the VMs on it answer late. */
  | { readonly kind: 'datastore-latency'; readonly datastore: string; readonly latencyMs: number }
  /** The datastore is full: its VMs run on, but no snapshot of them can be taken. */
  | { readonly kind: 'datastore-full'; readonly datastore: string }
  /** Snapshots of the datastore's VMs fail (the array's snapshot service is broken); the VMs run on. */
  | { readonly kind: 'snapshot-failure'; readonly datastore: string }
  /** The host's management link goes down `downS` and up `upS`, over and over. */
  | { readonly kind: 'channel-flap'; readonly host: string; readonly downS: number; readonly upS: number }
  /** The guest of `vm` crashes `afterS` after each boot on `host` (a bad device or local cache there): elsewhere it runs. */
  | { readonly kind: 'crash-loop'; readonly vm: string; readonly host: string; readonly afterS: number }
  /** The leading controller stops (a long pause, a frozen VM) and resumes when repaired. No substrate part breaks. */
  | { readonly kind: 'controller-pause' };

/** The faults that strike the control plane, not the substrate: a drill or storm carries them out itself. */
export function strikesController(fault: Fault): fault is Extract<Fault, { kind: 'controller-pause' }> {
  return fault.kind === 'controller-pause';
}

export function faultTarget(fault: Fault): string {
  switch (fault.kind) {
    case 'rack-failure':
      return fault.rack;
    case 'room-failure':
      return fault.room;
    case 'power-feed-failure':
      return fault.feed;
    case 'datastore-failure':
    case 'datastore-latency':
    case 'datastore-full':
    case 'snapshot-failure':
      return fault.datastore;
    case 'vm-health-pattern':
      return fault.vm;
    case 'crash-loop':
      return fault.vm;
    case 'controller-pause':
      return 'controller';
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
