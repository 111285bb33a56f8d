/**
 * One packing of the placement heuristic (placement.ts): the load of each host, the host of each
 * copy and the copies of each host, in typed arrays indexed by host and copy so the inner loops stay
 * fast; the hard constraints as a cheap test per (copy, host) once a copy is prepared; the two
 * choosers — best fit (fewest hosts) and least loaded (balanced) — and the greedy construction that
 * places every copy with them. Repair (placement-repair.ts) and the local searches
 * (local-search.ts) work on the same state.
 */
import { apart, CAPACITY_EPSILON, type PlacementRules } from './placement-rules.ts';
import { packingResult, type PlacementObjective, type PlacementResult } from './placement-result.ts';

/** How far the constraints are relaxed for a copy that fits nowhere under all of them. */
export const STRICT = 0;
const WITHOUT_GENERATOR = 1;
const WITHOUT_SPREAD = 2;
const SOFT_PENALTY = 1000;

export interface Variant {
  readonly sizeKey: 'dominant' | 'cores' | 'memory' | 'sum';
  /** Open generator-backed hosts first: they can take any copy, the others not. */
  readonly openGeneratorFirst: boolean;
}

export interface PackingOptions extends Variant {
  readonly ejection: boolean;
  /** Hosts this attempt may use (1), or null for all eligible hosts. */
  readonly enabled: Uint8Array | null;
}

/** The mutable state of one packing: loads per host, the host of each copy, copies per host. */
export class Packing {
  readonly hostCount: number;
  readonly usedCores: Float64Array;
  readonly usedMemory: Float64Array;
  /** Host of copy `2 * vm` (primary) and `2 * vm + 1` (secondary), -1 when unplaced. */
  readonly copyHost: Int32Array;
  readonly hostCopies: number[][];
  readonly copySize: Float64Array;
  /** 1 for a copy placed with a rule relaxed, which repair (placement-repair.ts) tries to fix. */
  readonly relaxed: Uint8Array;
  private readonly stamp: Int32Array;
  private stampToken = 0;
  private forbiddenRack = -1;
  private partnerHost = -1;
  private hardSiblings = false;

  constructor(
    readonly rules: PlacementRules,
    readonly options: PackingOptions,
  ) {
    this.hostCount = rules.hosts.length;
    this.usedCores = new Float64Array(this.hostCount);
    this.usedMemory = new Float64Array(this.hostCount);
    this.copyHost = new Int32Array(2 * rules.vms.length).fill(-1);
    this.hostCopies = Array.from({ length: this.hostCount }, () => []);
    this.stamp = new Int32Array(this.hostCount);
    this.relaxed = new Uint8Array(2 * rules.vms.length);
    let totalCores = 0;
    let totalMemory = 0;
    for (let host = 0; host < this.hostCount; host++) {
      totalCores += rules.capacityCores[host]!;
      totalMemory += rules.capacityMemoryGiB[host]!;
    }
    const averageCores = totalCores / Math.max(1, this.hostCount);
    const averageMemory = totalMemory / Math.max(1, this.hostCount);
    this.copySize = new Float64Array(2 * rules.vms.length);
    rules.vms.forEach((vm, index) => {
      const cores = vm.cores / averageCores;
      const memory = vm.memoryGiB / averageMemory;
      const key = options.sizeKey;
      const size = key === 'cores' ? cores : key === 'memory' ? memory : key === 'sum' ? cores + memory : Math.max(cores, memory);
      this.copySize[2 * index] = size;
      this.copySize[2 * index + 1] = size;
    });
  }

  /** Places every copy in constraint-then-size order; returns the copies that found no host. */
  construct(objective: PlacementObjective): Map<string, string> {
    const { rules } = this;
    const order: number[] = [];
    rules.vms.forEach((vm, index) => {
      order.push(2 * index);
      if (vm.failover) order.push(2 * index + 1);
    });
    const constrained = (copy: number) => {
      const vm = rules.vms[copy >> 1]!;
      return (vm.needsGenerator ? 2 : 0) + (rules.services[vm.service]!.distinctHard ? 1 : 0);
    };
    // Primary and secondary have equal keys; the copy index keeps the primary first.
    order.sort((a, b) => constrained(b) - constrained(a) || this.copySize[b]! - this.copySize[a]! || a - b);
    const unplaced = new Map<string, string>();
    for (const copy of order) {
      const vm = rules.vms[copy >> 1]!;
      const secondary = (copy & 1) === 1;
      if (secondary && this.copyHost[copy - 1]! < 0) continue;
      let host = -1;
      let level = STRICT;
      for (; level <= WITHOUT_SPREAD && host < 0; level++) {
        host = objective === 'fewest-hosts' ? this.bestFit(copy, level, -1, true) : this.leastLoaded(copy, level);
      }
      if (host >= 0) {
        this.add(copy, host);
        this.relaxed[copy] = level - 1 > STRICT ? 1 : 0;
      } else if (secondary) {
        unplaced.set(vm.name, `no host in another ${vm.secondaryDomain} has room for the secondary (${round(vm.cores)} cores, ${round(vm.memoryGiB)} GiB)`);
      } else {
        unplaced.set(vm.name, `no eligible host has room (${round(vm.cores)} cores, ${round(vm.memoryGiB)} GiB)`);
      }
    }
    return unplaced;
  }

  /**
   * The open host that `copy` fills best (least normalised room left), or with `allowOpening` the
   * largest closed host that fits when no open one does. `exclude` and `closed` hosts are skipped.
   */
  bestFit(copy: number, level: number, exclude: number, allowOpening: boolean, closed?: Uint8Array): number {
    const { rules } = this;
    const vm = rules.vms[copy >> 1]!;
    this.prepare(copy);
    let best = -1;
    let bestScore = Infinity;
    for (let host = 0; host < this.hostCount; host++) {
      if (host === exclude || this.hostCopies[host]!.length === 0 || (closed !== undefined && closed[host] === 1)) continue;
      if (!this.fits(copy, host, level)) continue;
      const residual =
        (rules.capacityCores[host]! - this.usedCores[host]! - vm.cores) / rules.capacityCores[host]! +
        (rules.capacityMemoryGiB[host]! - this.usedMemory[host]! - vm.memoryGiB) / rules.capacityMemoryGiB[host]!;
      const score = residual + (this.stamp[host] === this.stampToken ? SOFT_PENALTY : 0);
      if (score < bestScore) {
        bestScore = score;
        best = host;
      }
    }
    if (best >= 0 || !allowOpening) return best;
    // Open a new host: the largest, keeping generator-backed hosts for the copies that need them.
    for (let host = 0; host < this.hostCount; host++) {
      if (this.hostCopies[host]!.length > 0 || !this.fits(copy, host, level)) continue;
      const size = rules.capacityCores[host]! + rules.capacityMemoryGiB[host]! / 1e6;
      const generator = rules.hostGenerator[host] === 1;
      const feedPenalty = this.options.openGeneratorFirst ? (generator ? -1e6 : 0) : !vm.needsGenerator && generator ? 1e-7 : 0;
      const score = -size + feedPenalty;
      if (score < bestScore) {
        bestScore = score;
        best = host;
      }
    }
    return best;
  }

  /** The host with the lowest dominant utilisation after taking `copy`; siblings only as a last resort. */
  leastLoaded(copy: number, level: number, exclude = -1): number {
    const vm = this.rules.vms[copy >> 1]!;
    this.prepare(copy);
    let best = -1;
    let bestScore = Infinity;
    for (let host = 0; host < this.hostCount; host++) {
      if (host === exclude || !this.fits(copy, host, level)) continue;
      const score = this.loadWith(host, vm.cores, vm.memoryGiB) + (this.stamp[host] === this.stampToken ? SOFT_PENALTY : 0);
      if (score < bestScore) {
        bestScore = score;
        best = host;
      }
    }
    return best;
  }

  /**
   * Looks up, once per copy, what its constraints depend on: the hosts of its siblings (stamped),
   * the rack it may not complete, and its partner copy's host.
   */
  prepare(copy: number): void {
    const { rules } = this;
    const vmIndex = copy >> 1;
    const vm = rules.vms[vmIndex]!;
    const service = rules.services[vm.service]!;
    const role = copy & 1;
    this.stampToken++;
    this.hardSiblings = service.distinctHard;
    let placedSiblings = 0;
    let sharedRack = -2;
    for (const sibling of service.vms) {
      if (sibling === vmIndex) continue;
      const host = this.copyHost[2 * sibling + role]!;
      if (host >= 0) this.stamp[host] = this.stampToken;
      if (role === 0 && host >= 0) {
        placedSiblings++;
        const rack = rules.hostRack[host]!;
        sharedRack = sharedRack === -2 || sharedRack === rack ? rack : -1;
      }
    }
    this.forbiddenRack = role === 0 && service.rackSpread && placedSiblings === service.vms.length - 1 ? sharedRack : -1;
    this.partnerHost = vm.failover ? this.copyHost[copy ^ 1]! : -1;
  }

  /** Whether the prepared `copy` may go on `host` with the constraints of `level` in force. */
  fits(copy: number, host: number, level: number): boolean {
    const { rules } = this;
    const vm = rules.vms[copy >> 1]!;
    if (this.usedCores[host]! + vm.cores > rules.capacityCores[host]! + CAPACITY_EPSILON) return false;
    if (this.usedMemory[host]! + vm.memoryGiB > rules.capacityMemoryGiB[host]! + CAPACITY_EPSILON) return false;
    return this.fitsRules(copy, host, level);
  }

  /** The rules other than capacity, for the prepared `copy` on `host`. */
  fitsRules(copy: number, host: number, level: number): boolean {
    const { rules } = this;
    if (this.options.enabled !== null && this.options.enabled[host] === 0) return false;
    const vm = rules.vms[copy >> 1]!;
    if (this.partnerHost >= 0 && !apart(rules, vm.secondaryDomain, host, this.partnerHost)) return false;
    if (level < WITHOUT_GENERATOR && vm.needsGenerator && (copy & 1) === 0 && rules.hostGenerator[host] === 0) return false;
    if (level < WITHOUT_SPREAD) {
      if (this.hardSiblings && this.stamp[host] === this.stampToken) return false;
      if (this.forbiddenRack >= 0 && rules.hostRack[host] === this.forbiddenRack) return false;
    }
    return true;
  }

  add(copy: number, host: number): void {
    const vm = this.rules.vms[copy >> 1]!;
    this.usedCores[host]! += vm.cores;
    this.usedMemory[host]! += vm.memoryGiB;
    this.copyHost[copy] = host;
    this.hostCopies[host]!.push(copy);
  }

  remove(copy: number, host: number): void {
    const vm = this.rules.vms[copy >> 1]!;
    this.usedCores[host]! -= vm.cores;
    this.usedMemory[host]! -= vm.memoryGiB;
    this.copyHost[copy] = -1;
    const copies = this.hostCopies[host]!;
    const at = copies.lastIndexOf(copy);
    copies[at] = copies[copies.length - 1]!;
    copies.pop();
  }

  /** Whether a sibling of the prepared copy (same service, same role) runs on `host`. */
  siblingOn(host: number): boolean {
    return this.stamp[host] === this.stampToken;
  }

  load(host: number): number {
    return this.loadWith(host, 0, 0);
  }

  loadWith(host: number, cores: number, memoryGiB: number): number {
    return Math.max(
      (this.usedCores[host]! + cores) / this.rules.capacityCores[host]!,
      (this.usedMemory[host]! + memoryGiB) / this.rules.capacityMemoryGiB[host]!,
    );
  }

  hostsUsed(): number {
    let used = 0;
    for (const copies of this.hostCopies) if (copies.length > 0) used++;
    return used;
  }

  result(input: {
    objective: PlacementObjective;
    unplaced: Map<string, string>;
    constructionHostsUsed: number;
    moves: number;
    emptied: number;
  }): PlacementResult {
    return packingResult(this.rules, this.copyHost, { ...input, method: 'heuristic' });
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
