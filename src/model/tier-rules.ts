/**
 * Rules that follow from a VM's tier, stated once: what a VM costs on a host, and the RTO a
 * service is held to when both copies of a continuous VM were lost at once (a cold restart).
 * The planner, the controller, the failure analysis and the drill report all read them here.
 */
import type { Blueprint, Vm } from './blueprint.ts';
import type { Tier } from './tiers.ts';

/** A tier that allows memory overcommit counts a VM's memory at 1 / this ratio. */
export const MEMORY_OVERCOMMIT_RATIO = 1.5;

export interface VmCost {
  /** Physical cores: vCPU / the tier's CPU overcommit ceiling ("1.5 vCPU" standard = 0.75 core). */
  readonly cores: number;
  /** Memory in full, or at 1 / ratio for a tier that allows memory overcommit. */
  readonly memoryGiB: number;
}

export function vmCost(vm: Vm, tier: Tier, memoryOvercommitRatio: number = MEMORY_OVERCOMMIT_RATIO): VmCost {
  return { cores: vm.vcpu / tier.cpuOvercommit, memoryGiB: tier.memoryOvercommit ? vm.memoryGiB / memoryOvercommitRatio : vm.memoryGiB };
}

/**
 * The RTO a service is held to: its tier's, or — when a VM of it had to be cold-restarted because
 * both its copies were lost — the critical tier's, if that is longer (it was restarted like one).
 */
export function effectiveRtoS(blueprint: Blueprint, tier: Tier, coldRestarted: boolean): number {
  const critical = blueprint.tiers.get('critical');
  return coldRestarted && critical !== undefined ? Math.max(tier.rtoS, critical.rtoS) : tier.rtoS;
}
