/**
 * The capacity planner's heuristic: every VM (and every continuous VM's secondary) on a host,
 * honouring the hard constraints of placement-rules.ts, for one of two objectives:
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
 *
 * This module chooses among attempts; one attempt is a packing and its greedy construction
 * (packing.ts), the repair of relaxed copies (placement-repair.ts) and the objective's local search
 * (local-search.ts). Both planners build their result alike (placement-result.ts).
 */
import type { Blueprint } from '../model/index.ts';
import { balance, consolidate } from './local-search.ts';
import { Packing, type PackingOptions, type Variant } from './packing.ts';
import { placementRules, type PlacementRules, type RuleOptions } from './placement-rules.ts';
import { repair } from './placement-repair.ts';
import type { PlacementObjective, PlacementResult } from './placement-result.ts';

export { packingResult, type PlacementObjective, type PlacementResult, type PlacementStats } from './placement-result.ts';

export interface PlacementOptions extends RuleOptions {
  readonly objective?: PlacementObjective;
  /** Bound on local-search sweeps (fewest-hosts) or moves (balanced); defaults suit 10,000 VMs. */
  readonly localSearchLimit?: number;
}

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

interface AttemptOptions extends PackingOptions {
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
  repair(packing, construction);
  const constructionHostsUsed = packing.hostsUsed();
  let moves = 0;
  let emptied = 0;
  if (objective === 'fewest-hosts') {
    const outcome = consolidate(packing, limit ?? 8);
    moves = outcome.moves;
    emptied = outcome.emptied;
  } else {
    moves = balance(packing, limit ?? 2000);
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
