/**
 * What a placement planner returns, heuristic (placement.ts) or exact (plan/exact.ts): the host of
 * each copy, what found none and why, every hard-constraint violation, and the statistics the plan
 * report prints. `packingResult` builds it from the host of every copy, so both planners count
 * alike.
 */
import type { Placement } from './capacity.ts';
import { listViolations, type PlacementRules } from './placement-rules.ts';

export type PlacementObjective = 'fewest-hosts' | 'balanced';

export interface PlacementStats {
  readonly vms: number;
  readonly eligibleHosts: number;
  /** Primaries plus secondaries. */
  readonly copies: number;
  readonly placedCopies: number;
  /** Hosts used after the construction, before local search. */
  readonly constructionHostsUsed: number;
  readonly localSearchMoves: number;
  readonly hostsEmptied: number;
  /** Copies sharing a host with a sibling where that is only a preference (soft anti-affinity). */
  readonly softSpreadMisses: number;
  readonly maxCoreUtilisation: number;
  readonly maxMemoryUtilisation: number;
  /** max(ceil(cores / largest host), ceil(memory / largest host), 2 when a secondary needs another domain). */
  readonly lowerBoundHosts: number;
}

export interface PlacementResult {
  readonly placements: ReadonlyMap<string, Placement>;
  /** VMs (or their secondaries) that found no host, with why. */
  readonly unplaced: ReadonlyMap<string, string>;
  /** Every hard-constraint violation of the result (checkPlacement's sentences); empty when valid. */
  readonly violations: readonly string[];
  readonly hostsUsed: number;
  readonly method: 'heuristic' | 'exact';
  readonly objective: PlacementObjective;
  readonly stats: PlacementStats;
}

/** Builds the result shape from the host of every copy; shared with the exact planner. */
export function packingResult(
  rules: PlacementRules,
  copyHost: Int32Array,
  input: {
    objective: PlacementObjective;
    method: 'heuristic' | 'exact';
    unplaced: Map<string, string>;
    constructionHostsUsed: number;
    moves: number;
    emptied: number;
  },
): PlacementResult {
  const vmCount = rules.vms.length;
  const primaryHost = new Int32Array(vmCount);
  const secondaryHost = new Int32Array(vmCount);
  const placements = new Map<string, Placement>();
  const usedCores = new Float64Array(rules.hosts.length);
  const usedMemory = new Float64Array(rules.hosts.length);
  const copies = new Int32Array(rules.hosts.length);
  let placedCopies = 0;
  let softSpreadMisses = 0;
  for (let vm = 0; vm < vmCount; vm++) {
    primaryHost[vm] = copyHost[2 * vm]!;
    secondaryHost[vm] = copyHost[2 * vm + 1]!;
    const rule = rules.vms[vm]!;
    for (const host of [primaryHost[vm]!, secondaryHost[vm]!]) {
      if (host < 0) continue;
      placedCopies++;
      copies[host]!++;
      usedCores[host]! += rule.cores;
      usedMemory[host]! += rule.memoryGiB;
    }
    if (primaryHost[vm]! >= 0) {
      const secondary = secondaryHost[vm]!;
      placements.set(rule.name, {
        primary: rules.hosts[primaryHost[vm]!]!.name,
        secondary: secondary >= 0 ? rules.hosts[secondary]!.name : null,
      });
    }
  }
  for (const service of rules.services) {
    if (service.distinctHard) continue;
    for (const hostsOf of [primaryHost, secondaryHost]) {
      const seen = new Set<number>();
      for (const vm of service.vms) {
        const host = hostsOf[vm]!;
        if (host < 0) continue;
        if (seen.has(host)) softSpreadMisses++;
        seen.add(host);
      }
    }
  }
  let hostsUsed = 0;
  let maxCoreUtilisation = 0;
  let maxMemoryUtilisation = 0;
  let totalCores = 0;
  let totalMemory = 0;
  let largestCores = 0;
  let largestMemory = 0;
  for (let host = 0; host < rules.hosts.length; host++) {
    if (copies[host]! > 0) hostsUsed++;
    maxCoreUtilisation = Math.max(maxCoreUtilisation, usedCores[host]! / rules.capacityCores[host]!);
    maxMemoryUtilisation = Math.max(maxMemoryUtilisation, usedMemory[host]! / rules.capacityMemoryGiB[host]!);
    largestCores = Math.max(largestCores, rules.capacityCores[host]!);
    largestMemory = Math.max(largestMemory, rules.capacityMemoryGiB[host]!);
  }
  for (const vm of rules.vms) {
    const copiesOfVm = vm.failover ? 2 : 1;
    totalCores += copiesOfVm * vm.cores;
    totalMemory += copiesOfVm * vm.memoryGiB;
  }
  const needsTwoDomains = rules.vms.some((vm) => vm.failover) ? 2 : 1;
  const lowerBoundHosts = Math.max(
    Math.ceil(totalCores / Math.max(largestCores, 1e-9) - 1e-9),
    Math.ceil(totalMemory / Math.max(largestMemory, 1e-9) - 1e-9),
    rules.vms.length > 0 ? needsTwoDomains : 0,
  );
  const unplaced = new Map(input.unplaced);
  rules.vms.forEach((vm, index) => {
    if (unplaced.has(vm.name)) return;
    if (primaryHost[index]! < 0) unplaced.set(vm.name, 'not placed');
    else if (vm.failover && secondaryHost[index]! < 0) unplaced.set(vm.name, 'its secondary is not placed');
  });
  return {
    placements,
    unplaced,
    violations: listViolations(rules, primaryHost, secondaryHost),
    hostsUsed,
    method: input.method,
    objective: input.objective,
    stats: {
      vms: vmCount,
      eligibleHosts: rules.hosts.length,
      copies: rules.vms.reduce((sum, vm) => sum + (vm.failover ? 2 : 1), 0),
      placedCopies,
      constructionHostsUsed: input.constructionHostsUsed,
      localSearchMoves: input.moves,
      hostsEmptied: input.emptied,
      softSpreadMisses,
      maxCoreUtilisation,
      maxMemoryUtilisation,
      lowerBoundHosts,
    },
  };
}
