/**
 * The capacity planner's heuristic: every VM (and every continuous VM's secondary) on a host,
 * honouring the hard constraints of validate-placement.ts, for one of two objectives:
 *
 * - `fewest-hosts` (sizing): a first-fit-decreasing construction that puts each copy on the open
 *   host it fills best (best fit by normalised residual) and opens the largest fitting host only
 *   when none fits; then a local search that empties the least-loaded host by moving its copies
 *   to the other open hosts, host after host, until a sweep empties none.
 * - `balanced` (the running hospital): the same order, each copy on the host whose dominant
 *   utilisation (the larger of its CPU and memory shares) is lowest afterwards (a worst fit); then
 *   moves off the most loaded host while they lower the maximum.
 *
 * Copies that must run on generator-backed hosts (continuous and critical) go first, then by size,
 * largest first. A copy that finds no host under every hard constraint is placed with the
 * generator rule relaxed, then with the spread rules relaxed, and the result lists the violation;
 * capacity and the secondary's failure domain are never relaxed: such a copy stays unplaced,
 * with the reason. Deterministic: no randomness, ties go to blueprint order.
 * Inner loops work on typed arrays indexed by host and copy; 10,000 VMs on 500 hosts take well
 * under a second (bench/plan.ts).
 */
import type { Blueprint } from '../model/index.ts';
import type { Placement } from './capacity.ts';
import {
  apart,
  CAPACITY_EPSILON,
  listViolations,
  placementRules,
  type PlacementRules,
  type RuleOptions,
} from './placement-rules.ts';

export type PlacementObjective = 'fewest-hosts' | 'balanced';

export interface PlacementOptions extends RuleOptions {
  readonly objective?: PlacementObjective;
  /** Bound on local-search sweeps (fewest-hosts) or moves (balanced); defaults suit 10,000 VMs. */
  readonly localSearchLimit?: number;
}

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

/** How far the constraints are relaxed for a copy that fits nowhere under all of them. */
const STRICT = 0;
const WITHOUT_GENERATOR = 1;
const WITHOUT_SPREAD = 2;
const SOFT_PENALTY = 1000;
/** Copies tried for eviction per host when a copy fits nowhere directly. */
const EJECTION_CANDIDATES = 6;

export function planPlacement(blueprint: Blueprint, options: PlacementOptions = {}): PlacementResult {
  const objective = options.objective ?? 'balanced';
  const rules = placementRules(blueprint, options);
  const copies = rules.vms.reduce((sum, vm) => sum + (vm.failover ? 2 : 1), 0);
  const work = Math.max(1, copies * rules.hosts.length);
  // Small clusters get several constructions (sort keys, which hosts to open first) and the best
  // wins; large ones get one, so that 10,000 VMs on 500 hosts stay well under a second.
  const variantCount = Math.max(1, Math.min(VARIANTS.length, Math.floor(VARIANT_WORK_BUDGET / work)));
  const ejection = work <= EJECTION_WORK_LIMIT;
  let best: Attempt | null = null;
  for (const variant of VARIANTS.slice(0, variantCount)) {
    const attempt = runAttempt(rules, objective, { ...variant, ejection, enabled: null }, options.localSearchLimit);
    if (best === null || better(attempt, best, objective)) best = attempt;
  }
  if (best!.defects > 0) {
    // Spreading first can fragment the generator-backed hosts, packing first can crowd a service
    // into one rack: the other construction, followed by this objective's local search, sometimes
    // fits what the first could not.
    const construction = objective === 'balanced' ? 'fewest-hosts' : 'balanced';
    for (const variant of VARIANTS.slice(0, variantCount)) {
      const other = runAttempt(rules, objective, { ...variant, ejection, enabled: null, construction }, options.localSearchLimit);
      if (better(other, best!, objective)) best = other;
    }
  }
  if (objective === 'fewest-hosts' && work <= DROP_HOST_WORK_LIMIT) best = dropHosts(rules, best!, ejection, options.localSearchLimit);
  const chosen = best!;
  return chosen.packing.result({
    objective,
    unplaced: chosen.unplaced,
    constructionHostsUsed: chosen.constructionHostsUsed,
    moves: chosen.moves,
    emptied: chosen.emptied,
  });
}

interface Variant {
  readonly sizeKey: 'dominant' | 'cores' | 'memory' | 'sum';
  /** Open generator-backed hosts first: they can take any copy, the others not. */
  readonly openGeneratorFirst: boolean;
}

interface AttemptOptions extends Variant {
  readonly ejection: boolean;
  /** Hosts this attempt may use (1), or null for all eligible hosts. */
  readonly enabled: Uint8Array | null;
  /** Construct as for this objective, then run the attempt's own local search. */
  readonly construction?: PlacementObjective;
}

interface Attempt {
  readonly packing: Packing;
  readonly unplaced: Map<string, string>;
  /** Unplaced copies plus copies placed with a rule relaxed. */
  readonly defects: number;
  readonly hostsUsed: number;
  readonly peakLoad: number;
  readonly constructionHostsUsed: number;
  readonly moves: number;
  readonly emptied: number;
}

const VARIANTS: readonly Variant[] = [
  { sizeKey: 'dominant', openGeneratorFirst: false },
  { sizeKey: 'dominant', openGeneratorFirst: true },
  { sizeKey: 'sum', openGeneratorFirst: true },
  { sizeKey: 'cores', openGeneratorFirst: true },
  { sizeKey: 'memory', openGeneratorFirst: true },
  { sizeKey: 'sum', openGeneratorFirst: false },
  { sizeKey: 'cores', openGeneratorFirst: false },
  { sizeKey: 'memory', openGeneratorFirst: false },
];
/** Copies × hosts × variants that the planner spends on extra constructions. */
const VARIANT_WORK_BUDGET = 2_000_000;
const EJECTION_WORK_LIMIT = 300_000;
const DROP_HOST_WORK_LIMIT = 20_000;

function runAttempt(rules: PlacementRules, objective: PlacementObjective, options: AttemptOptions, limit: number | undefined): Attempt {
  const packing = new Packing(rules, options);
  const construction = options.construction ?? objective;
  const unplaced = packing.construct(construction);
  packing.repair(construction);
  const constructionHostsUsed = packing.hostsUsed();
  let moves = 0;
  let emptied = 0;
  if (objective === 'fewest-hosts') {
    const outcome = packing.consolidate(limit ?? 8);
    moves = outcome.moves;
    emptied = outcome.emptied;
  } else {
    moves = packing.balance(limit ?? 2000);
  }
  let peakLoad = 0;
  for (let host = 0; host < packing.hostCount; host++) peakLoad = Math.max(peakLoad, packing.load(host));
  let defects = 0;
  for (let copy = 0; copy < packing.copyHost.length; copy++) {
    const vm = rules.vms[copy >> 1]!;
    const exists = (copy & 1) === 0 || vm.failover;
    if (exists && (packing.copyHost[copy]! < 0 || packing.relaxed[copy] === 1)) defects++;
  }
  return { packing, unplaced, defects, hostsUsed: packing.hostsUsed(), peakLoad, constructionHostsUsed, moves, emptied };
}

function better(candidate: Attempt, incumbent: Attempt, objective: PlacementObjective): boolean {
  if (candidate.defects !== incumbent.defects) return candidate.defects < incumbent.defects;
  if (objective === 'fewest-hosts' && candidate.hostsUsed !== incumbent.hostsUsed) return candidate.hostsUsed < incumbent.hostsUsed;
  return candidate.peakLoad < incumbent.peakLoad - 1e-12;
}

/**
 * Fewest-hosts, small clusters: try to repack everything on the used hosts minus one (each in
 * turn, least loaded first); keep the first repack that places everything, and repeat.
 */
function dropHosts(rules: PlacementRules, start: Attempt, ejection: boolean, limit: number | undefined): Attempt {
  let best = start;
  for (let round = 0; round < rules.hosts.length; round++) {
    const used: number[] = [];
    for (let host = 0; host < rules.hosts.length; host++) if (best.packing.hostCopies[host]!.length > 0) used.push(host);
    used.sort((a, b) => best.packing.load(a) - best.packing.load(b) || a - b);
    let improved = false;
    for (const dropped of used) {
      const enabled = new Uint8Array(rules.hosts.length);
      for (const host of used) if (host !== dropped) enabled[host] = 1;
      for (const variant of VARIANTS) {
        const attempt = runAttempt(rules, 'fewest-hosts', { ...variant, ejection, enabled }, limit);
        if (better(attempt, best, 'fewest-hosts')) {
          best = attempt;
          improved = true;
          break;
        }
      }
      if (improved) break;
    }
    if (!improved) break;
  }
  return best;
}

/** The mutable state of one packing: loads per host, the host of each copy, copies per host. */
class Packing {
  readonly hostCount: number;
  readonly usedCores: Float64Array;
  readonly usedMemory: Float64Array;
  /** Host of copy `2 * vm` (primary) and `2 * vm + 1` (secondary), -1 when unplaced. */
  readonly copyHost: Int32Array;
  readonly hostCopies: number[][];
  readonly copySize: Float64Array;
  /** 1 for a copy placed with a rule relaxed, which repair() tries to fix. */
  readonly relaxed: Uint8Array;
  private readonly stamp: Int32Array;
  private stampToken = 0;
  private forbiddenRack = -1;
  private partnerHost = -1;
  private hardSiblings = false;

  constructor(
    readonly rules: PlacementRules,
    private readonly options: AttemptOptions,
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
   * Gives each copy that had a rule relaxed a second chance: on a host where it would break no rule
   * but lacks room, evict copies (one that frees enough, else the smallest first) and place them
   * elsewhere under every rule. Keeps the first exchange that works; undoes the rest.
   */
  repair(objective: PlacementObjective): void {
    const { rules } = this;
    for (let copy = 0; copy < this.relaxed.length; copy++) {
      if (this.relaxed[copy] === 0 || this.copyHost[copy]! < 0) continue;
      if (this.eject(copy, objective)) {
        this.relaxed[copy] = 0;
        continue;
      }
      // A service all in one rack may also be fixed by moving one of the other primaries.
      const vm = rules.vms[copy >> 1]!;
      const service = rules.services[vm.service]!;
      if ((copy & 1) === 1 || !service.rackSpread) continue;
      for (const sibling of service.vms) {
        if (2 * sibling === copy || this.copyHost[2 * sibling]! < 0) continue;
        if (this.eject(2 * sibling, objective) && this.obeysRules(copy)) {
          this.relaxed[copy] = 0;
          break;
        }
      }
    }
  }

  /** Whether a placed copy breaks no rule other than capacity where it is. */
  private obeysRules(copy: number): boolean {
    this.prepare(copy);
    return this.fitsRules(copy, this.copyHost[copy]!, STRICT);
  }

  private eject(copy: number, objective: PlacementObjective): boolean {
    const { rules } = this;
    const vm = rules.vms[copy >> 1]!;
    const origin = this.copyHost[copy]!;
    this.remove(copy, origin);
    this.prepare(copy);
    const candidates: number[] = [];
    for (let host = 0; host < this.hostCount; host++) {
      if (host !== origin && this.fitsRules(copy, host, STRICT)) candidates.push(host);
    }
    candidates.sort((a, b) => this.load(a) - this.load(b) || a - b);
    const needs = (host: number, without: number) =>
      this.usedCores[host]! - rules.vms[without >> 1]!.cores + vm.cores <= rules.capacityCores[host]! + CAPACITY_EPSILON &&
      this.usedMemory[host]! - rules.vms[without >> 1]!.memoryGiB + vm.memoryGiB <= rules.capacityMemoryGiB[host]! + CAPACITY_EPSILON;
    for (const host of candidates) {
      const bySize = [...this.hostCopies[host]!].sort((a, b) => this.copySize[a]! - this.copySize[b]! || a - b);
      const plans: number[][] = bySize.filter((other) => needs(host, other)).slice(0, 4).map((other) => [other]);
      // Copies bound to generator hosts or to a failure domain are the hardest to re-place.
      const free = bySize.filter((other) => !rules.vms[other >> 1]!.needsGenerator && !rules.vms[other >> 1]!.failover);
      plans.push(free, bySize);
      for (const plan of plans) {
        if (this.exchange(copy, host, plan, objective)) return true;
      }
    }
    this.add(copy, origin);
    return false;
  }

  /** Evicts copies of `plan` from `host` in order until `copy` fits there, then re-places them. */
  private exchange(copy: number, host: number, plan: readonly number[], objective: PlacementObjective): boolean {
    const evicted: number[] = [];
    this.prepare(copy);
    for (const other of plan) {
      if (this.fits(copy, host, STRICT)) break;
      this.remove(other, host);
      evicted.push(other);
      this.prepare(copy);
    }
    const undoEvictions = () => {
      for (const other of evicted) this.add(other, host);
    };
    if (!this.fits(copy, host, STRICT)) {
      undoEvictions();
      return false;
    }
    this.add(copy, host);
    const moved: Array<[copy: number, to: number]> = [];
    evicted.sort((a, b) => this.copySize[b]! - this.copySize[a]! || a - b);
    for (const other of evicted) {
      const target =
        objective === 'fewest-hosts' ? this.bestFit(other, STRICT, host, true) : this.leastLoaded(other, STRICT, host);
      if (target < 0) {
        for (const [done, to] of moved) this.remove(done, to);
        this.remove(copy, host);
        undoEvictions();
        return false;
      }
      this.add(other, target);
      moved.push([other, target]);
    }
    for (const other of evicted) this.relaxed[other] = 0;
    return true;
  }

  /**
   * The fewest-hosts local search: sweep the open hosts from the least loaded and try to move all
   * copies of each to the other open hosts; keep the moves if the host empties, undo them if not.
   */
  consolidate(sweepLimit: number): { moves: number; emptied: number } {
    let moves = 0;
    let emptied = 0;
    const closed = new Uint8Array(this.hostCount);
    for (let sweep = 0; sweep < sweepLimit; sweep++) {
      let emptiedThisSweep = 0;
      const open: number[] = [];
      for (let host = 0; host < this.hostCount; host++) if (this.hostCopies[host]!.length > 0) open.push(host);
      open.sort((a, b) => this.load(a) - this.load(b) || a - b);
      for (const host of open) {
        if (this.hostCopies[host]!.length === 0) continue;
        const copies = [...this.hostCopies[host]!].sort((a, b) => this.copySize[b]! - this.copySize[a]! || a - b);
        closed[host] = 1;
        const log: Array<[copy: number, from: number, to: number]> = [];
        let emptiedHost = true;
        for (const copy of copies) {
          const target = this.bestFit(copy, STRICT, host, false, closed);
          if (target >= 0) this.move(copy, host, target, log);
          else if (!this.options.ejection || !this.ejectInto(copy, host, closed, log)) {
            emptiedHost = false;
            break;
          }
        }
        if (emptiedHost) {
          moves += log.length;
          emptiedThisSweep++;
        } else {
          for (const [copy, from, to] of log.reverse()) {
            this.remove(copy, to);
            this.add(copy, from);
          }
          closed[host] = 0;
        }
      }
      emptied += emptiedThisSweep;
      if (emptiedThisSweep === 0) break;
    }
    return { moves, emptied };
  }

  private move(copy: number, from: number, to: number, log: Array<[copy: number, from: number, to: number]>): void {
    this.remove(copy, from);
    this.add(copy, to);
    log.push([copy, from, to]);
  }

  /**
   * Moves `copy` off `from` onto an open host where it breaks no rule but lacks room, after moving
   * one smaller copy from there to a third open host. Bounded: a few candidates per host.
   */
  private ejectInto(copy: number, from: number, closed: Uint8Array, log: Array<[copy: number, from: number, to: number]>): boolean {
    const size = this.copySize[copy]!;
    for (let host = 0; host < this.hostCount; host++) {
      if (host === from || closed[host] === 1 || this.hostCopies[host]!.length === 0) continue;
      this.prepare(copy);
      if (!this.fitsRules(copy, host, STRICT)) continue;
      const candidates = this.hostCopies[host]!
        .filter((other) => this.copySize[other]! <= size)
        .sort((a, b) => this.copySize[b]! - this.copySize[a]! || a - b)
        .slice(0, EJECTION_CANDIDATES);
      for (const other of candidates) {
        const target = this.bestFit(other, STRICT, host, false, closed);
        if (target < 0) continue;
        this.move(other, host, target, log);
        this.prepare(copy);
        if (this.fits(copy, host, STRICT)) {
          this.move(copy, from, host, log);
          return true;
        }
        log.pop();
        this.remove(other, target);
        this.add(other, host);
      }
    }
    return false;
  }

  /** The balanced local search: move a copy off the most loaded host while that lowers the maximum. */
  balance(moveLimit: number): number {
    let moves = 0;
    for (; moves < moveLimit; moves++) {
      let worst = -1;
      for (let host = 0; host < this.hostCount; host++) if (worst < 0 || this.load(host) > this.load(worst)) worst = host;
      if (worst < 0) break;
      const ceiling = this.load(worst) - 1e-9;
      let bestCopy = -1;
      let bestHost = -1;
      let bestPeak = ceiling;
      for (const copy of [...this.hostCopies[worst]!]) {
        this.remove(copy, worst);
        const after = this.load(worst);
        this.prepare(copy);
        const vm = this.rules.vms[copy >> 1]!;
        for (let host = 0; host < this.hostCount; host++) {
          if (host === worst || !this.fits(copy, host, STRICT) || this.stamp[host] === this.stampToken) continue;
          const peak = Math.max(after, this.loadWith(host, vm.cores, vm.memoryGiB));
          if (peak < bestPeak - 1e-12) {
            bestPeak = peak;
            bestCopy = copy;
            bestHost = host;
          }
        }
        this.add(copy, worst);
      }
      if (bestCopy < 0) break;
      this.remove(bestCopy, worst);
      this.add(bestCopy, bestHost);
    }
    return moves;
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
  private prepare(copy: number): void {
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
  private fits(copy: number, host: number, level: number): boolean {
    const { rules } = this;
    const vm = rules.vms[copy >> 1]!;
    if (this.usedCores[host]! + vm.cores > rules.capacityCores[host]! + CAPACITY_EPSILON) return false;
    if (this.usedMemory[host]! + vm.memoryGiB > rules.capacityMemoryGiB[host]! + CAPACITY_EPSILON) return false;
    return this.fitsRules(copy, host, level);
  }

  /** The rules other than capacity, for the prepared `copy` on `host`. */
  private fitsRules(copy: number, host: number, level: number): boolean {
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

  private add(copy: number, host: number): void {
    const vm = this.rules.vms[copy >> 1]!;
    this.usedCores[host]! += vm.cores;
    this.usedMemory[host]! += vm.memoryGiB;
    this.copyHost[copy] = host;
    this.hostCopies[host]!.push(copy);
  }

  private remove(copy: number, host: number): void {
    const vm = this.rules.vms[copy >> 1]!;
    this.usedCores[host]! -= vm.cores;
    this.usedMemory[host]! -= vm.memoryGiB;
    this.copyHost[copy] = -1;
    const copies = this.hostCopies[host]!;
    const at = copies.lastIndexOf(copy);
    copies[at] = copies[copies.length - 1]!;
    copies.pop();
  }

  load(host: number): number {
    return this.loadWith(host, 0, 0);
  }

  private loadWith(host: number, cores: number, memoryGiB: number): number {
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

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
