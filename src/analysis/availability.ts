/**
 * The availability estimate: how many minutes a year each service is expected to be down, with a
 * 95% confidence interval and its number of nines, beside what its tier promises.
 *
 * Two parts, kept apart so that the core stays pure:
 * 1. What one failure does to each service is *measured* by an injected OutageMeasurer: the CLI
 *    passes one that runs the failure on the twin (a drill with those faults and no repair) and
 *    reads each service's measured RTO from the journal; a service shed or lost in that drill is
 *    down until the repair. Measurements are cached per set of failed components, so a host's
 *    crash is drilled once however often the simulation draws it.
 * 2. A seeded Monte Carlo over simulated years draws component failures (exponential times between
 *    failures from each component's MTBF, exponential repair times around its MTTR) and adds up,
 *    per service and per year, the measured outages.
 *
 * Conservative choices, stated once:
 * - A failure that strikes while another is under repair is measured as if both had struck at
 *   that moment (a compound drill), and every service that compound drill affects is counted as
 *   down again from then, even if it had already recovered from the first failure.
 * - A service that is shed or not back in a drill stays down until the *last* of the overlapping
 *   repairs ends, plus its own boot time.
 * - Downtime is attributed to the year in which its failure struck.
 * - Redundant pairs (boot disks, power supplies, top-of-rack switches) fail as a group at the
 *   rate of a duplex with repair, 2(λ(1−β))²·MTTR, plus a common-cause share β·λ that takes both
 *   units at once (the beta-factor model of IEC 61508-6); the group is back after one unit's MTTR.
 * Planned maintenance is not an outage here: hosts are evacuated by live migration first.
 */
import type { Random } from '../ports/random.ts';
import type { Blueprint, FailureRate, RedundantFailureRate } from '../model/index.ts';
import { tierOf } from '../model/index.ts';

export type OutageKind = 'host' | 'rack' | 'room' | 'powerFeed' | 'datastore';

export interface OutageCase {
  readonly kind: OutageKind;
  readonly id: string;
}

/**
 * What failures striking together do, per service: the seconds from the failure until the service
 * answers again, null when it does not come back before the failed hardware is repaired (shed or
 * lost), absent or 0 when it is unaffected.
 */
export type OutageMeasurer = (cases: readonly OutageCase[]) => ReadonlyMap<string, number | null>;

export interface FailureSource {
  /** What fails: "host", "host disks", "host power supplies", "rack switches", "power feed", "room", "datastore". */
  readonly component: string;
  readonly case: OutageCase;
  readonly ratePerHour: number;
  readonly mttrHours: number;
}

export interface AvailabilityOptions {
  readonly measure: OutageMeasurer;
  readonly random: Random;
  /** Simulated years (each a sample of annual downtime). */
  readonly years: number;
  /** Bound on drawn failures, a guard against absurd rates. */
  readonly maxEvents?: number;
}

export interface ServiceAvailability {
  readonly service: string;
  readonly tier: string;
  readonly downtimeMinPerYear: number;
  /** 95% confidence interval of the mean annual downtime, in minutes (normal approximation over the simulated years). */
  readonly downtimeCi95MinPerYear: readonly [number, number];
  readonly availability: number;
  /** −log10(unavailability); null when no downtime was seen in all the simulated years. */
  readonly nines: number | null;
  /** Share of simulated years with any downtime. */
  readonly yearsWithDowntime: number;
  readonly target: number;
  readonly targetNines: number;
  readonly targetDowntimeMinPerYear: number;
  /** The mean meets the target. */
  readonly meetsTarget: boolean;
  /** Even the upper end of the confidence interval meets the target. */
  readonly meetsTargetWithConfidence: boolean;
}

export interface TierAvailability {
  readonly tier: string;
  readonly services: number;
  readonly target: number;
  readonly targetNines: number;
  /** The worst service of the tier. */
  readonly worstService: string;
  readonly worstDowntimeMinPerYear: number;
  readonly worstNines: number | null;
  readonly meanDowntimeMinPerYear: number;
  readonly servicesMeetingTarget: number;
}

export interface SourceSummary {
  readonly component: string;
  readonly kind: OutageKind;
  readonly count: number;
  /** Failures per year of one such component (group). */
  readonly failuresPerYear: number;
  readonly mttrHours: number;
  /** Failures drawn over all simulated years, all components of this row. */
  readonly drawn: number;
}

export interface AvailabilityReport {
  readonly blueprint: string;
  readonly years: number;
  readonly failures: number;
  /** Failures that struck while another was under repair (measured as a compound case). */
  readonly overlapping: number;
  /** Distinct failure sets measured (drills run). */
  readonly casesMeasured: number;
  readonly sources: readonly SourceSummary[];
  readonly services: readonly ServiceAvailability[];
  readonly tiers: readonly TierAvailability[];
}

export const HOURS_PER_YEAR = 8760;
const MINUTES_PER_YEAR = HOURS_PER_YEAR * 60;
const DEFAULT_MAX_EVENTS = 5_000_000;

/** Failures per hour of a group of one or two units (see the header for the pair model). */
export function groupFailureRatePerHour(rate: RedundantFailureRate): number {
  const lambda = 1 / rate.mtbfHours;
  if (rate.units === 1) return lambda;
  const independent = lambda * (1 - rate.commonCauseFraction);
  return rate.commonCauseFraction * lambda + 2 * independent * independent * rate.mttrHours;
}

function singleRate(rate: FailureRate): number {
  return 1 / rate.mtbfHours;
}

/** Every component that can fail, with its rate and repair time, from the blueprint's reliability section. */
export function failureSources(blueprint: Blueprint): FailureSource[] {
  const reliability = blueprint.reliability;
  const sources: FailureSource[] = [];
  for (const host of blueprint.hosts) {
    const target: OutageCase = { kind: 'host', id: host.name };
    sources.push({ component: 'host', case: target, ratePerHour: singleRate(reliability.host), mttrHours: reliability.host.mttrHours });
    sources.push({ component: 'host disks', case: target, ratePerHour: groupFailureRatePerHour(reliability.disk), mttrHours: reliability.disk.mttrHours });
    sources.push({
      component: 'host power supplies',
      case: target,
      ratePerHour: groupFailureRatePerHour(reliability.powerSupply),
      mttrHours: reliability.powerSupply.mttrHours,
    });
  }
  for (const rack of blueprint.racks) {
    sources.push({
      component: 'rack switches',
      case: { kind: 'rack', id: rack },
      ratePerHour: groupFailureRatePerHour(reliability.switch),
      mttrHours: reliability.switch.mttrHours,
    });
  }
  const usedFeeds = new Set(blueprint.hosts.map((host) => host.powerFeed));
  for (const feed of blueprint.powerFeeds) {
    if (!usedFeeds.has(feed.name)) continue;
    sources.push({ component: 'power feed', case: { kind: 'powerFeed', id: feed.name }, ratePerHour: singleRate(reliability.powerFeed), mttrHours: reliability.powerFeed.mttrHours });
  }
  for (const room of blueprint.rooms) {
    sources.push({ component: 'room', case: { kind: 'room', id: room }, ratePerHour: singleRate(reliability.room), mttrHours: reliability.room.mttrHours });
  }
  for (const store of blueprint.datastores) {
    sources.push({ component: 'datastore', case: { kind: 'datastore', id: store.name }, ratePerHour: singleRate(reliability.datastore), mttrHours: reliability.datastore.mttrHours });
  }
  return sources.filter((source) => source.ratePerHour > 0);
}

export function caseKey(failure: OutageCase): string {
  return `${failure.kind}:${failure.id}`;
}

/** Wraps a measurer so that each distinct set of failures is measured once. */
export function cachedMeasurer(measure: OutageMeasurer): OutageMeasurer & { readonly measured: () => number } {
  const cache = new Map<string, ReadonlyMap<string, number | null>>();
  const wrapped = (cases: readonly OutageCase[]) => {
    const sorted = [...cases].sort((a, b) => caseKey(a).localeCompare(caseKey(b)));
    const key = sorted.map(caseKey).join('|');
    let result = cache.get(key);
    if (result === undefined) {
      result = measure(sorted);
      cache.set(key, result);
    }
    return result;
  };
  return Object.assign(wrapped, { measured: () => cache.size });
}

interface ActiveRepair {
  readonly key: string;
  readonly case: OutageCase;
  readonly endH: number;
}

export function estimateAvailability(blueprint: Blueprint, options: AvailabilityOptions): AvailabilityReport {
  const years = Math.floor(options.years);
  if (!(years >= 1)) throw new Error(`availability: years must be at least 1, not ${options.years}`);
  const maxEvents = options.maxEvents ?? DEFAULT_MAX_EVENTS;
  const measure = cachedMeasurer(options.measure);
  const sources = failureSources(blueprint);
  const cumulative = new Float64Array(sources.length);
  let totalRate = 0;
  sources.forEach((source, index) => {
    totalRate += source.ratePerHour;
    cumulative[index] = totalRate;
  });
  const services = blueprint.services;
  const serviceIndex = new Map(services.map((service, index) => [service.name, index]));
  const restartH = services.map((service) => Math.max(...service.vms.map((vm) => vm.bootTimeS)) / 3600);
  const downtimeS = services.map(() => new Float64Array(years));
  const downUntilH = new Float64Array(services.length);
  const drawn = new Float64Array(sources.length);
  const horizonH = years * HOURS_PER_YEAR;
  const arrivals = options.random.fork('arrivals');
  const picks = options.random.fork('components');
  const repairs = options.random.fork('repairs');

  let active: ActiveRepair[] = [];
  let failures = 0;
  let overlapping = 0;
  let timeH = 0;
  for (let event = 0; totalRate > 0 && event < maxEvents; event++) {
    timeH += arrivals.exponential(1 / totalRate);
    if (timeH >= horizonH) break;
    const sourceIndex = pickSource(cumulative, picks.next() * totalRate);
    const source = sources[sourceIndex]!;
    active = active.filter((repair) => repair.endH > timeH);
    const key = caseKey(source.case);
    // A component already down cannot fail again until it is repaired.
    if (active.some((repair) => repair.key === key)) continue;
    failures++;
    drawn[sourceIndex] = drawn[sourceIndex]! + 1;
    active.push({ key, case: source.case, endH: timeH + repairs.exponential(source.mttrHours) });
    if (active.length > 1) overlapping++;
    const repairEndH = Math.max(...active.map((repair) => repair.endH));
    const outcome = measure(active.map((repair) => repair.case));
    const year = Math.min(years - 1, Math.floor(timeH / HOURS_PER_YEAR));
    for (const [name, seconds] of outcome) {
      const index = serviceIndex.get(name);
      if (index === undefined || seconds === 0) continue;
      const untilRepairH = repairEndH - timeH + restartH[index]!;
      const durationH = seconds === null ? untilRepairH : Math.min(seconds / 3600, untilRepairH);
      // Downtime is a union of intervals: an outage that overlaps one already counted adds only its new part.
      const startH = Math.max(timeH, downUntilH[index]!);
      const endH = timeH + durationH;
      if (endH > startH) {
        const perYear = downtimeS[index]!;
        perYear[year] = perYear[year]! + (endH - startH) * 3600;
        downUntilH[index] = endH;
      }
    }
  }

  const serviceResults = services.map((service, index) => summarise(blueprint, service.name, tierOf(blueprint, service).name, downtimeS[index]!));
  return {
    blueprint: blueprint.name,
    years,
    failures,
    overlapping,
    casesMeasured: measure.measured(),
    sources: summariseSources(sources, drawn),
    services: serviceResults,
    tiers: summariseTiers(blueprint, serviceResults),
  };
}

function pickSource(cumulative: Float64Array, value: number): number {
  let low = 0;
  let high = cumulative.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (cumulative[middle]! > value) high = middle;
    else low = middle + 1;
  }
  return low;
}

function nines(unavailability: number): number | null {
  return unavailability <= 0 ? null : round(-Math.log10(unavailability), 2);
}

function summarise(blueprint: Blueprint, service: string, tier: string, perYearS: Float64Array): ServiceAvailability {
  const years = perYearS.length;
  let sum = 0;
  let withDowntime = 0;
  for (const value of perYearS) {
    sum += value;
    if (value > 0) withDowntime++;
  }
  const meanS = sum / years;
  let squares = 0;
  for (const value of perYearS) squares += (value - meanS) ** 2;
  const standardErrorS = years > 1 ? Math.sqrt(squares / (years - 1) / years) : 0;
  const meanMin = meanS / 60;
  const lowMin = Math.max(0, meanS - 1.96 * standardErrorS) / 60;
  const highMin = (meanS + 1.96 * standardErrorS) / 60;
  const unavailability = meanMin / MINUTES_PER_YEAR;
  const target = blueprint.reliability.targets.get(tier) ?? 0.999;
  const targetDowntimeMin = (1 - target) * MINUTES_PER_YEAR;
  return {
    service,
    tier,
    downtimeMinPerYear: round(meanMin, 4),
    downtimeCi95MinPerYear: [round(lowMin, 4), round(highMin, 4)],
    availability: round(1 - unavailability, 10),
    nines: nines(unavailability),
    yearsWithDowntime: round(withDowntime / years, 4),
    target,
    targetNines: round(-Math.log10(1 - target), 2),
    targetDowntimeMinPerYear: round(targetDowntimeMin, 2),
    meetsTarget: meanMin <= targetDowntimeMin,
    meetsTargetWithConfidence: highMin <= targetDowntimeMin,
  };
}

function summariseSources(sources: readonly FailureSource[], drawn: Float64Array): SourceSummary[] {
  const rows = new Map<string, { component: string; kind: OutageKind; count: number; rate: number; mttrHours: number; drawn: number }>();
  sources.forEach((source, index) => {
    const row = rows.get(source.component) ?? { component: source.component, kind: source.case.kind, count: 0, rate: source.ratePerHour, mttrHours: source.mttrHours, drawn: 0 };
    row.count++;
    row.drawn += drawn[index]!;
    rows.set(source.component, row);
  });
  return [...rows.values()].map((row) => ({
    component: row.component,
    kind: row.kind,
    count: row.count,
    failuresPerYear: round(row.rate * HOURS_PER_YEAR, 8),
    mttrHours: row.mttrHours,
    drawn: row.drawn,
  }));
}

function summariseTiers(blueprint: Blueprint, services: readonly ServiceAvailability[]): TierAvailability[] {
  const tiers: TierAvailability[] = [];
  const ordered = [...blueprint.tiers.values()].sort((a, b) => a.priority - b.priority);
  for (const tier of ordered) {
    const members = services.filter((service) => service.tier === tier.name);
    if (members.length === 0) continue;
    const worst = members.reduce((a, b) => (b.downtimeMinPerYear > a.downtimeMinPerYear ? b : a));
    tiers.push({
      tier: tier.name,
      services: members.length,
      target: worst.target,
      targetNines: worst.targetNines,
      worstService: worst.service,
      worstDowntimeMinPerYear: worst.downtimeMinPerYear,
      worstNines: worst.nines,
      meanDowntimeMinPerYear: round(members.reduce((sum, service) => sum + service.downtimeMinPerYear, 0) / members.length, 4),
      servicesMeetingTarget: members.filter((service) => service.meetsTarget).length,
    });
  }
  return tiers;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
