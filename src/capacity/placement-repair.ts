/**
 * The placement heuristic's repair (placement.ts): after the construction, each copy that was
 * placed with a rule relaxed (generator or spread) gets a second chance under every rule, by
 * evicting copies from a host where it would break none and re-placing them elsewhere. Capacity
 * and failure domains are never relaxed, here or anywhere.
 */
import { CAPACITY_EPSILON } from './placement-rules.ts';
import type { PlacementObjective } from './placement-result.ts';
import { type Packing, STRICT } from './packing.ts';

/**
 * Gives each copy that had a rule relaxed a second chance: on a host where it would break no rule
 * but lacks room, evict copies (one that frees enough, else the smallest first) and place them
 * elsewhere under every rule. Keeps the first exchange that works; undoes the rest.
 */
export function repair(packing: Packing, objective: PlacementObjective): void {
  const { rules } = packing;
  for (let copy = 0; copy < packing.relaxed.length; copy++) {
    if (packing.relaxed[copy] === 0 || packing.copyHost[copy]! < 0) continue;
    if (eject(packing, copy, objective)) {
      packing.relaxed[copy] = 0;
      continue;
    }
    // A service all in one rack may also be fixed by moving one of the other primaries.
    const vm = rules.vms[copy >> 1]!;
    const service = rules.services[vm.service]!;
    if ((copy & 1) === 1 || !service.rackSpread) continue;
    for (const sibling of service.vms) {
      if (2 * sibling === copy || packing.copyHost[2 * sibling]! < 0) continue;
      if (eject(packing, 2 * sibling, objective) && obeysRules(packing, copy)) {
        packing.relaxed[copy] = 0;
        break;
      }
    }
  }
}

/** Whether a placed copy breaks no rule other than capacity where it is. */
function obeysRules(packing: Packing, copy: number): boolean {
  packing.prepare(copy);
  return packing.fitsRules(copy, packing.copyHost[copy]!, STRICT);
}

/** Moves a relaxed `copy` to a host where it breaks no rule, making room there by an exchange. */
function eject(packing: Packing, copy: number, objective: PlacementObjective): boolean {
  const { rules } = packing;
  const vm = rules.vms[copy >> 1]!;
  const origin = packing.copyHost[copy]!;
  packing.remove(copy, origin);
  packing.prepare(copy);
  const candidates: number[] = [];
  for (let host = 0; host < packing.hostCount; host++) {
    if (host !== origin && packing.fitsRules(copy, host, STRICT)) candidates.push(host);
  }
  candidates.sort((a, b) => packing.load(a) - packing.load(b) || a - b);
  const needs = (host: number, without: number) =>
    packing.usedCores[host]! - rules.vms[without >> 1]!.cores + vm.cores <= rules.capacityCores[host]! + CAPACITY_EPSILON &&
    packing.usedMemory[host]! - rules.vms[without >> 1]!.memoryGiB + vm.memoryGiB <= rules.capacityMemoryGiB[host]! + CAPACITY_EPSILON;
  for (const host of candidates) {
    const bySize = [...packing.hostCopies[host]!].sort((a, b) => packing.copySize[a]! - packing.copySize[b]! || a - b);
    const plans: number[][] = bySize.filter((other) => needs(host, other)).slice(0, 4).map((other) => [other]);
    // Copies bound to generator hosts or to a failure domain are the hardest to re-place.
    const free = bySize.filter((other) => !rules.vms[other >> 1]!.needsGenerator && !rules.vms[other >> 1]!.failover);
    plans.push(free, bySize);
    for (const plan of plans) {
      if (exchange(packing, copy, host, plan, objective)) return true;
    }
  }
  packing.add(copy, origin);
  return false;
}

/** Evicts copies of `plan` from `host` in order until `copy` fits there, then re-places them. */
function exchange(packing: Packing, copy: number, host: number, plan: readonly number[], objective: PlacementObjective): boolean {
  const evicted: number[] = [];
  packing.prepare(copy);
  for (const other of plan) {
    if (packing.fits(copy, host, STRICT)) break;
    packing.remove(other, host);
    evicted.push(other);
    packing.prepare(copy);
  }
  const undoEvictions = () => {
    for (const other of evicted) packing.add(other, host);
  };
  if (!packing.fits(copy, host, STRICT)) {
    undoEvictions();
    return false;
  }
  packing.add(copy, host);
  const moved: Array<[copy: number, to: number]> = [];
  evicted.sort((a, b) => packing.copySize[b]! - packing.copySize[a]! || a - b);
  for (const other of evicted) {
    const target =
      objective === 'fewest-hosts' ? packing.bestFit(other, STRICT, host, true) : packing.leastLoaded(other, STRICT, host);
    if (target < 0) {
      for (const [done, to] of moved) packing.remove(done, to);
      packing.remove(copy, host);
      undoEvictions();
      return false;
    }
    packing.add(other, target);
    moved.push([other, target]);
  }
  for (const other of evicted) packing.relaxed[other] = 0;
  return true;
}
