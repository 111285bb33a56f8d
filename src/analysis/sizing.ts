/**
 * Sizing: the fewest hosts of one model that carry the hospital. For N = a lower bound, N + 1, …
 * hosts per room, it lays out a candidate estate like the blueprint's own (each room's hosts dealt
 * round-robin over that room's racks; the same share of them on generator-backed feeds as the
 * blueprint has, spread so every rack has hosts on both kinds of feed), places every VM with the
 * planner's balanced objective (what the controller runs), and admits the first N whose placement
 * has no violation and whose failure analysis survives every failure the blueprint requires
 * (`protection.survive`, by default any single host). Every room gets the same N, because a room
 * must be able to take over from another.
 *
 * It then prices the result (the host model's cost, rack units and watts) and sets it beside the
 * blueprint's own estate and the one-physical-server-per-system estate the hospital had before
 * (`legacyEstate`), with the energy cost over the comparison horizon at the blueprint's price per
 * kWh and PUE (`economics`).
 */
import type { Blueprint, Host, HostModel, PowerFeed, ProtectionKind } from '../model/index.ts';
import { admissionOf, describeFailing } from './admission.ts';
import { CapacityModel } from '../capacity/capacity.ts';
import { analyseFailures, failureCases } from './failure-analysis.ts';
import { planPlacement } from '../capacity/placement.ts';
import { TomaranaiError } from '../errors/index.ts';

export interface SizingOptions {
  readonly hostModel: string;
  /** Kinds of failure to survive; the blueprint's protection.survive by default. */
  readonly survive?: readonly ProtectionKind[];
  /** Largest N tried; the search gives up above it. */
  readonly maxHostsPerRoom?: number;
}

/** The code `tomaranai size` reports when no number of hosts of the model passes. */
export const SIZE_NO_FIT_CODE = 'TMR_SIZE_NO_FIT';

export interface SizingAttempt {
  readonly hostsPerRoom: number;
  readonly hosts: number;
  /** Every VM and secondary placed without violating a hard rule. */
  readonly placed: boolean;
  readonly unplaced: number;
  readonly violations: number;
  /** Null when placement already failed (no failure analysis then). */
  readonly admissionHolds: boolean | null;
  /** Why it was refused, in a few sentences. */
  readonly reasons: readonly string[];
}

export interface RackLayout {
  readonly room: string;
  readonly rack: string;
  readonly hosts: readonly string[];
  readonly generatorHosts: number;
}

export interface EstateFigures {
  readonly servers: number;
  readonly rackUnits: number;
  readonly watts: number;
  /** Energy per year including cooling (× PUE). */
  readonly kWhPerYear: number;
  readonly energyYenOverHorizon: number;
  /** Purchase price, or null when a price is missing. */
  readonly hardwareYen: number | null;
  readonly lifeYears: number;
  /** Purchase price spread over the hardware's life. */
  readonly hardwareYenPerYear: number | null;
  /** Hardware spend plus energy over the horizon (hardware pro rata to its life). */
  readonly totalYenOverHorizon: number | null;
}

export interface SizingComparison {
  readonly rackUnitsSaved: number;
  readonly rackUnitsSavedShare: number;
  readonly wattsSaved: number;
  readonly wattsSavedShare: number;
  readonly energyYenSavedOverHorizon: number;
  readonly totalYenSavedOverHorizon: number | null;
  readonly lifeYearsGained: number;
}

export interface SizingResult {
  readonly blueprint: string;
  readonly hostModel: HostModel;
  readonly survive: readonly ProtectionKind[];
  readonly found: boolean;
  /** Why no number of hosts can ever satisfy the requirement (e.g. surviving a room with one room), or null. */
  readonly impossible: string | null;
  readonly hostsPerRoom: number | null;
  readonly rooms: readonly string[];
  readonly layout: readonly RackLayout[];
  /** The sized estate (null when nothing fitted). */
  readonly sized: (EstateFigures & { readonly hosts: number; readonly cores: number; readonly memoryGiB: number }) | null;
  /** The estate the blueprint describes now. */
  readonly current: EstateFigures & { readonly hosts: number };
  /** The one-physical-server-per-system estate before virtualisation, when the blueprint describes it. */
  readonly legacy: EstateFigures | null;
  readonly savingsVersusLegacy: SizingComparison | null;
  readonly economics: Blueprint['economics'];
  readonly attempts: readonly SizingAttempt[];
}

const DEFAULT_MAX_HOSTS_PER_ROOM = 64;
const HOURS_PER_YEAR = 8760;

export function sizeCluster(blueprint: Blueprint, options: SizingOptions): SizingResult {
  const model = blueprint.hostModels.find((candidate) => candidate.name === options.hostModel);
  if (model === undefined) {
    const known = blueprint.hostModels.map((candidate) => candidate.name);
    throw new TomaranaiError(
      'TMR_SIZE_UNKNOWN_HOST_MODEL',
      `no host model "${options.hostModel}" in ${blueprint.name}`,
      known.length > 0 ? `use one of ${known.join(', ')}, or add it under hostModels` : 'add the host model under hostModels (cores, ghz, memoryGiB, watts, rackUnits, costYen)',
    );
  }
  const survive = options.survive ?? blueprint.protection.survive;
  const maxPerRoom = options.maxHostsPerRoom ?? DEFAULT_MAX_HOSTS_PER_ROOM;
  const attempts: SizingAttempt[] = [];
  let found: { perRoom: number; hosts: Host[] } | null = null;
  const impossible = structuralImpossibility(blueprint, survive);
  for (let perRoom = lowerBoundPerRoom(blueprint, model); impossible === null && perRoom <= maxPerRoom; perRoom++) {
    const hosts = layoutHosts(blueprint, model, perRoom);
    const candidate = withHosts(blueprint, hosts);
    const attempt = tryCandidate(candidate, perRoom, survive);
    attempts.push(attempt);
    if (attempt.placed && attempt.admissionHolds === true) {
      found = { perRoom, hosts };
      break;
    }
  }
  const economics = blueprint.economics;
  const hostFigures = (hosts: readonly Host[]) => {
    const models = new Map(blueprint.hostModels.map((entry) => [entry.name, entry]));
    const rackUnits = hosts.reduce((sum, host) => sum + (host.model === null ? 2 : (models.get(host.model)?.rackUnits ?? 2)), 0);
    const prices = hosts.map((host) => (host.model === null ? null : (models.get(host.model)?.costYen ?? null)));
    const hardwareYen = prices.every((price) => price !== null) ? prices.reduce<number>((sum, price) => sum + price!, 0) : null;
    return estate(economics, {
      servers: hosts.length,
      rackUnits,
      watts: hosts.reduce((sum, host) => sum + host.watts, 0),
      hardwareYen,
      lifeYears: economics.hostLifeYears,
    });
  };
  const sized =
    found === null
      ? null
      : {
          hosts: found.hosts.length,
          cores: found.hosts.reduce((sum, host) => sum + host.cores, 0),
          memoryGiB: found.hosts.reduce((sum, host) => sum + host.memoryGiB, 0),
          ...estate(economics, {
            servers: found.hosts.length,
            rackUnits: found.hosts.length * model.rackUnits,
            watts: found.hosts.length * model.watts,
            hardwareYen: model.costYen === null ? null : found.hosts.length * model.costYen,
            lifeYears: economics.hostLifeYears,
          }),
        };
  const legacyEstate = blueprint.legacyEstate;
  const legacy =
    legacyEstate === null
      ? null
      : estate(economics, {
          servers: legacyEstate.servers,
          rackUnits: legacyEstate.servers * legacyEstate.rackUnitsPerServer,
          watts: legacyEstate.servers * legacyEstate.wattsPerServer,
          hardwareYen: legacyEstate.costYenPerServer === null ? null : legacyEstate.servers * legacyEstate.costYenPerServer,
          lifeYears: legacyEstate.lifeYears,
        });
  return {
    blueprint: blueprint.name,
    hostModel: model,
    survive: [...survive],
    found: found !== null,
    impossible,
    hostsPerRoom: found?.perRoom ?? null,
    rooms: [...blueprint.rooms],
    layout: found === null ? [] : rackLayout(blueprint, found.hosts),
    sized,
    current: { hosts: blueprint.hosts.length, ...hostFigures(blueprint.hosts) },
    legacy,
    savingsVersusLegacy: sized === null || legacy === null ? null : compare(legacy, sized),
    economics,
    attempts,
  };
}

function tryCandidate(candidate: Blueprint, perRoom: number, survive: readonly ProtectionKind[]): SizingAttempt {
  const placement = planPlacement(candidate, { objective: 'balanced' });
  const hosts = candidate.hosts.length;
  if (placement.unplaced.size > 0 || placement.violations.length > 0) {
    const reasons = [...[...placement.unplaced].slice(0, 3).map(([vm, why]) => `${vm}: ${why}`), ...placement.violations.slice(0, 3)];
    return { hostsPerRoom: perRoom, hosts, placed: false, unplaced: placement.unplaced.size, violations: placement.violations.length, admissionHolds: null, reasons };
  }
  const cases = failureCases(candidate, { pairs: survive.includes('hostPair') }).filter((failure) => survive.includes(failure.kind));
  const admission = admissionOf(survive, analyseFailures(candidate, placement.placements, cases));
  const reasons = admission.failing.slice(0, 3).map(describeFailing);
  if (!admission.holds && reasons.length === 0) reasons.push(`no failure case of a required kind (${survive.join(', ')}) exists in this layout`);
  return { hostsPerRoom: perRoom, hosts, placed: true, unplaced: 0, violations: 0, admissionHolds: admission.holds, reasons };
}

/** A requirement that more hosts of the same layout can never meet. */
function structuralImpossibility(blueprint: Blueprint, survive: readonly ProtectionKind[]): string | null {
  if (survive.includes('room') && blueprint.rooms.length < 2) {
    return `surviving the loss of a room needs a second room, and ${blueprint.name} has one (${blueprint.rooms.join(', ')})`;
  }
  if (survive.includes('rack') && blueprint.racks.length < 2) {
    return `surviving the loss of a rack needs a second rack, and ${blueprint.name} has one`;
  }
  const feeds = new Set(blueprint.hosts.map((host) => host.powerFeed));
  if (survive.includes('powerFeed') && feeds.size < 2) {
    return `surviving the loss of a power feed needs hosts on a second feed, and ${blueprint.name} uses one`;
  }
  return null;
}

/** No fewer hosts per room than the cores and memory of every copy (primaries and secondaries) need. */
function lowerBoundPerRoom(blueprint: Blueprint, model: HostModel): number {
  const capacity = new CapacityModel(blueprint);
  let cores = 0;
  let memoryGiB = 0;
  for (const vm of blueprint.vms) {
    const cost = capacity.cost(vm.name);
    const copies = capacity.info(vm.name).tier.mechanism === 'failover' ? 2 : 1;
    cores += cost.cores * copies;
    memoryGiB += cost.memoryGiB * copies;
  }
  const rooms = Math.max(1, blueprint.rooms.length);
  return Math.max(1, Math.ceil(cores / (model.cores * rooms) - 1e-9), Math.ceil(memoryGiB / (model.memoryGiB * rooms) - 1e-9));
}

/** N hosts in each room, dealt round-robin over the room's racks, with the blueprint's generator share. */
export function layoutHosts(blueprint: Blueprint, model: HostModel, perRoom: number): Host[] {
  const hosts: Host[] = [];
  for (const room of blueprint.rooms) {
    const roomHosts = blueprint.hosts.filter((host) => host.room === room);
    const racks = [...new Set(roomHosts.map((host) => host.rack))];
    const feeds = new Map(blueprint.powerFeeds.map((feed) => [feed.name, feed]));
    const usedFeeds = [...new Set(roomHosts.map((host) => host.powerFeed))].map((name) => feeds.get(name)!);
    const generatorFeeds = usedFeeds.filter((feed) => feed.generator);
    const gridFeeds = usedFeeds.filter((feed) => !feed.generator);
    const generatorShare = roomHosts.filter((host) => feeds.get(host.powerFeed)?.generator === true).length / roomHosts.length;
    let generatorCount = Math.round(generatorShare * perRoom);
    if (generatorShare > 0) generatorCount = Math.max(1, generatorCount);
    if (gridFeeds.length > 0 && generatorShare < 1 && perRoom > 1) generatorCount = Math.min(perRoom - 1, generatorCount);
    if (gridFeeds.length === 0) generatorCount = perRoom;
    if (generatorFeeds.length === 0) generatorCount = 0;
    const perRack = new Map<string, number>();
    for (let index = 0; index < perRoom; index++) {
      const rack = racks[index % racks.length]!;
      const number = (perRack.get(rack) ?? 0) + 1;
      perRack.set(rack, number);
      // Dealing round-robin and taking the first hosts for the generator spreads them over the racks.
      const onGenerator = index < generatorCount;
      const pool: PowerFeed[] = onGenerator ? generatorFeeds : gridFeeds;
      const feed = pool[(onGenerator ? index : index - generatorCount) % pool.length]!;
      hosts.push(
        Object.freeze({
          name: `${rack}-h${number}`,
          model: model.name,
          cores: model.cores,
          ghz: model.ghz,
          memoryGiB: model.memoryGiB,
          watts: model.watts,
          room,
          rack,
          powerFeed: feed.name,
        }),
      );
    }
  }
  return hosts;
}

/** The blueprint with another set of hosts (rooms unchanged: every room keeps at least one host). */
export function withHosts(blueprint: Blueprint, hosts: readonly Host[]): Blueprint {
  return Object.freeze({
    ...blueprint,
    hosts: Object.freeze([...hosts]),
    racks: Object.freeze([...new Set(hosts.map((host) => host.rack))]),
    rooms: Object.freeze([...new Set(hosts.map((host) => host.room))]),
  });
}

function rackLayout(blueprint: Blueprint, hosts: readonly Host[]): RackLayout[] {
  const feeds = new Map(blueprint.powerFeeds.map((feed) => [feed.name, feed]));
  const racks = new Map<string, { room: string; rack: string; hosts: string[]; generatorHosts: number }>();
  for (const host of hosts) {
    const entry = racks.get(host.rack) ?? { room: host.room, rack: host.rack, hosts: [], generatorHosts: 0 };
    entry.hosts.push(host.name);
    if (feeds.get(host.powerFeed)?.generator === true) entry.generatorHosts++;
    racks.set(host.rack, entry);
  }
  return [...racks.values()];
}

function estate(
  economics: Blueprint['economics'],
  input: { servers: number; rackUnits: number; watts: number; hardwareYen: number | null; lifeYears: number },
): EstateFigures {
  const kWhPerYear = (input.watts / 1000) * HOURS_PER_YEAR * economics.pue;
  const energyYenOverHorizon = kWhPerYear * economics.electricityYenPerKWh * economics.horizonYears;
  const hardwareYenPerYear = input.hardwareYen === null ? null : input.hardwareYen / input.lifeYears;
  return {
    servers: input.servers,
    rackUnits: input.rackUnits,
    watts: input.watts,
    kWhPerYear: Math.round(kWhPerYear),
    energyYenOverHorizon: Math.round(energyYenOverHorizon),
    hardwareYen: input.hardwareYen,
    lifeYears: input.lifeYears,
    hardwareYenPerYear: hardwareYenPerYear === null ? null : Math.round(hardwareYenPerYear),
    totalYenOverHorizon: hardwareYenPerYear === null ? null : Math.round(hardwareYenPerYear * economics.horizonYears + energyYenOverHorizon),
  };
}

function compare(legacy: EstateFigures, sized: EstateFigures): SizingComparison {
  const share = (saved: number, of: number) => (of > 0 ? Math.round((saved / of) * 1000) / 1000 : 0);
  return {
    rackUnitsSaved: legacy.rackUnits - sized.rackUnits,
    rackUnitsSavedShare: share(legacy.rackUnits - sized.rackUnits, legacy.rackUnits),
    wattsSaved: legacy.watts - sized.watts,
    wattsSavedShare: share(legacy.watts - sized.watts, legacy.watts),
    energyYenSavedOverHorizon: legacy.energyYenOverHorizon - sized.energyYenOverHorizon,
    totalYenSavedOverHorizon: legacy.totalYenOverHorizon === null || sized.totalYenOverHorizon === null ? null : legacy.totalYenOverHorizon - sized.totalYenOverHorizon,
    lifeYearsGained: sized.lifeYears - legacy.lifeYears,
  };
}
