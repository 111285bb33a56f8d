/**
 * The plan as one document (DESIGN.md's `tomaranai plan FILE --json` contract): where every VM
 * runs, what survives which failure, whether admission control holds, what the estate costs, and
 * each service's availability estimate beside its tier's promise.
 *
 *   { placements: [{vm, host, secondary}], failureAnalysis: [{failed: {kind, ids}, survivable,
 *     shed: [service], …}], admission: {…}, cost: {…}, availability: [{service, tier, estimate}] }
 *
 * `placements` has one entry per VM: `host` is where its primary runs, `secondary` where a
 * continuous VM's hot secondary runs (null for the other tiers).
 */
import type { Blueprint, ProtectionKind } from '../model/index.ts';
import { tierOf } from '../model/index.ts';
import { admissionOf, describeFailing } from './admission.ts';
import type { AvailabilityReport, ServiceAvailability } from './availability.ts';
import { CapacityModel } from '../capacity/capacity.ts';
import { analyseFailures, failureCases, type FailureKind, type FailureOutcome } from './failure-analysis.ts';
import type { PlacementResult } from '../capacity/placement.ts';

export interface PlanPlacementEntry {
  readonly vm: string;
  readonly service: string;
  readonly tier: string;
  readonly host: string | null;
  readonly secondary: string | null;
}

export interface PlanFailureEntry {
  readonly failed: { readonly kind: FailureKind; readonly ids: readonly string[] };
  readonly survivable: boolean;
  readonly shed: readonly string[];
  readonly lost: readonly string[];
  readonly late: readonly string[];
  readonly coldRestarts: readonly string[];
  readonly worstRtoEstimateS: number;
  readonly hostsLost: number;
  /** The blueprint requires this kind of failure to be survivable (admission control). */
  readonly required: boolean;
}

export interface PlanCost {
  readonly hosts: number;
  readonly hostsUsed: number;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly rackUnits: number;
  readonly watts: number;
  /** Null when a host's model has no price. */
  readonly hostsYen: number | null;
  readonly kWhPerYear: number;
  readonly energyYenPerYear: number;
  /** Physical cores and memory the VMs take in normal operation (primaries and secondaries), and the share of the estate. */
  readonly coresUsed: number;
  readonly memoryGiBUsed: number;
  readonly coreUtilisation: number;
  readonly memoryUtilisation: number;
}

export interface PlanAvailabilityEntry {
  readonly service: string;
  readonly tier: string;
  readonly estimate: Omit<ServiceAvailability, 'service' | 'tier'>;
}

export interface PlanReport {
  readonly blueprint: string;
  readonly method: 'heuristic' | 'exact';
  readonly objective: string;
  readonly exact: { readonly status: string; readonly optimal: boolean; readonly gap: number | null; readonly solverTimeS: number } | null;
  readonly valid: boolean;
  readonly placements: readonly PlanPlacementEntry[];
  readonly unplaced: readonly { readonly vm: string; readonly reason: string }[];
  readonly violations: readonly string[];
  readonly failureAnalysis: readonly PlanFailureEntry[];
  readonly admission: {
    readonly required: readonly ProtectionKind[];
    readonly holds: boolean;
    readonly casesChecked: number;
    readonly failing: readonly string[];
  };
  readonly cost: PlanCost;
  readonly availability: readonly PlanAvailabilityEntry[];
  readonly availabilityMethod: { readonly years: number; readonly seed: number; readonly failures: number; readonly overlapping: number; readonly casesMeasured: number } | null;
}

export interface PlanReportInput {
  readonly blueprint: Blueprint;
  readonly placement: PlacementResult & { readonly status?: string; readonly optimal?: boolean; readonly gap?: number | null; readonly solverTimeS?: number };
  readonly availability: AvailabilityReport | null;
  readonly availabilitySeed?: number;
  /** Analyse every pair of hosts too (default true; DESIGN.md lists hostPair cases). */
  readonly pairs?: boolean;
  /** Precomputed outcomes (e.g. when the caller already ran the analysis). */
  readonly outcomes?: readonly FailureOutcome[];
}

export function buildPlanReport(input: PlanReportInput): PlanReport {
  const { blueprint, placement } = input;
  const required = blueprint.protection.survive;
  const outcomes = input.outcomes ?? analyseFailures(blueprint, placement.placements, failureCases(blueprint, { pairs: input.pairs ?? true }));
  const admission = admissionOf(required, outcomes);
  const model = new CapacityModel(blueprint);
  const placements: PlanPlacementEntry[] = blueprint.vms.map((vm) => {
    const entry = placement.placements.get(vm.name);
    const service = model.info(vm.name).service;
    return { vm: vm.name, service: service.name, tier: tierOf(blueprint, service).name, host: entry?.primary ?? null, secondary: entry?.secondary ?? null };
  });
  return {
    blueprint: blueprint.name,
    method: placement.method,
    objective: placement.objective,
    exact:
      placement.method === 'exact'
        ? { status: placement.status ?? 'unknown', optimal: placement.optimal ?? false, gap: placement.gap ?? null, solverTimeS: round(placement.solverTimeS ?? 0, 3) }
        : null,
    valid: placement.unplaced.size === 0 && placement.violations.length === 0,
    placements,
    unplaced: [...placement.unplaced].map(([vm, reason]) => ({ vm, reason })),
    violations: [...placement.violations],
    failureAnalysis: outcomes.map((outcome) => ({
      failed: { kind: outcome.failed.kind, ids: [...outcome.failed.ids] },
      survivable: outcome.survivable,
      shed: [...outcome.shed],
      lost: [...outcome.lost],
      late: [...outcome.late],
      coldRestarts: [...outcome.coldRestarts],
      worstRtoEstimateS: round(outcome.worstRtoEstimateS, 1),
      hostsLost: outcome.hostsLost,
      required: required.includes(outcome.failed.kind),
    })),
    admission: { required: [...required], holds: admission.holds, casesChecked: admission.casesChecked, failing: admission.failing.map(describeFailing) },
    cost: planCost(blueprint, model, placement),
    availability: (input.availability?.services ?? []).map(({ service, tier, ...estimate }) => ({ service, tier, estimate })),
    availabilityMethod:
      input.availability === null
        ? null
        : {
            years: input.availability.years,
            seed: input.availabilitySeed ?? 0,
            failures: input.availability.failures,
            overlapping: input.availability.overlapping,
            casesMeasured: input.availability.casesMeasured,
          },
  };
}

function planCost(blueprint: Blueprint, model: CapacityModel, placement: PlacementResult): PlanCost {
  const models = new Map(blueprint.hostModels.map((entry) => [entry.name, entry]));
  let rackUnits = 0;
  let priced = true;
  let hostsYen = 0;
  for (const host of blueprint.hosts) {
    const hostModel = host.model === null ? undefined : models.get(host.model);
    rackUnits += hostModel?.rackUnits ?? 2;
    if (hostModel?.costYen === null || hostModel === undefined) priced = false;
    else hostsYen += hostModel.costYen;
  }
  const watts = blueprint.hosts.reduce((sum, host) => sum + host.watts, 0);
  const cores = blueprint.hosts.reduce((sum, host) => sum + host.cores, 0);
  const memoryGiB = blueprint.hosts.reduce((sum, host) => sum + host.memoryGiB, 0);
  let coresUsed = 0;
  let memoryGiBUsed = 0;
  for (const [vm, entry] of placement.placements) {
    const cost = model.cost(vm);
    const copies = entry.secondary === null ? 1 : 2;
    coresUsed += cost.cores * copies;
    memoryGiBUsed += cost.memoryGiB * copies;
  }
  const kWhPerYear = (watts / 1000) * 8760 * blueprint.economics.pue;
  return {
    hosts: blueprint.hosts.length,
    hostsUsed: placement.hostsUsed,
    cores,
    memoryGiB,
    rackUnits,
    watts,
    hostsYen: priced ? hostsYen : null,
    kWhPerYear: Math.round(kWhPerYear),
    energyYenPerYear: Math.round(kWhPerYear * blueprint.economics.electricityYenPerKWh),
    coresUsed: round(coresUsed, 2),
    memoryGiBUsed: round(memoryGiBUsed, 1),
    coreUtilisation: cores > 0 ? round(coresUsed / cores, 3) : 0,
    memoryUtilisation: memoryGiB > 0 ? round(memoryGiBUsed / memoryGiB, 3) : 0,
  };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
