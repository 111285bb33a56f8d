/**
 * The typed, frozen blueprint the rest of Tomaranai works with, built from a validated raw document.
 */
import type { RawBlueprint } from './schema.ts';
import { DEFAULT_TIERS, type Tier } from './tiers.ts';

export interface Host {
  readonly name: string;
  readonly model: string | null;
  readonly cores: number;
  readonly ghz: number;
  readonly memoryGiB: number;
  readonly watts: number;
  readonly room: string;
  readonly rack: string;
  readonly powerFeed: string;
}

export interface PowerFeed {
  readonly name: string;
  readonly room: string | null;
  readonly generator: boolean;
}

export interface Datastore {
  readonly name: string;
  readonly room: string;
  readonly replicatedTo: string | null;
  readonly immutableSnapshots: boolean;
}

export interface Network {
  readonly name: string;
  readonly kind: string;
  readonly vendor: string | null;
  /** Its address range, when the blueprint gives one (the real-VM lab enforces policy by address). */
  readonly cidr: string | null;
}

export interface Vm {
  readonly name: string;
  readonly service: string;
  readonly vcpu: number;
  readonly memoryGiB: number;
  readonly diskGiB: number;
  readonly bootTimeS: number;
}

export interface DemandProfile {
  readonly profile: string;
  readonly peakFactor: number;
  readonly surgeFactor: number;
}

export interface Service {
  readonly name: string;
  readonly title: string;
  readonly tier: string;
  readonly vendor: string;
  readonly dependsOn: readonly string[];
  readonly datastore: string;
  readonly network: string | null;
  readonly vms: readonly Vm[];
  readonly healthCheckIntervalS: number;
  readonly demand: DemandProfile;
  /** Position in the blueprint, the last key of the restart order. */
  readonly order: number;
}

export interface Flow {
  readonly from: string;
  readonly to: string;
  readonly port: number;
  readonly protocol: string | null;
}

export interface HostModel {
  readonly name: string;
  readonly cores: number;
  readonly ghz: number;
  readonly memoryGiB: number;
  readonly watts: number;
  readonly rackUnits: number;
  readonly costYen: number | null;
}

export interface FailureRate {
  readonly mtbfHours: number;
  readonly mttrHours: number;
}

export interface RedundantFailureRate extends FailureRate {
  /** 1 = a single unit, 2 = a redundant pair that fails only when both units do. */
  readonly units: 1 | 2;
  /** Share of failures that take both units of a pair at once (the beta factor of IEC 61508-6). */
  readonly commonCauseFraction: number;
}

export interface Reliability {
  readonly host: FailureRate;
  readonly disk: RedundantFailureRate;
  readonly powerSupply: RedundantFailureRate;
  readonly switch: RedundantFailureRate;
  readonly powerFeed: FailureRate;
  readonly room: FailureRate;
  readonly datastore: FailureRate;
  /** Promised availability per tier (0.99999 = five nines). */
  readonly targets: ReadonlyMap<string, number>;
}

export type ProtectionKind = 'host' | 'rack' | 'room' | 'powerFeed' | 'hostPair';

export interface Protection {
  /** Failures after which every continuous and critical service must still run within its RTO. */
  readonly survive: readonly ProtectionKind[];
}

export interface LegacyEstate {
  readonly description: string;
  readonly servers: number;
  readonly wattsPerServer: number;
  readonly rackUnitsPerServer: number;
  readonly costYenPerServer: number | null;
  readonly lifeYears: number;
}

export interface Economics {
  readonly electricityYenPerKWh: number;
  readonly pue: number;
  readonly horizonYears: number;
  readonly hostLifeYears: number;
}

const HOURS_PER_YEAR = 8760;

/**
 * Failure rates when a blueprint gives none. Orders of magnitude from public field studies, to be
 * replaced by the hospital's own maintenance records:
 * - host: one crash every 5 years (mainboard, memory, CPU, firmware and hypervisor crashes together;
 *   Vishwanath & Nagappan, "Characterizing cloud computing hardware reliability", SoCC 2010, found
 *   about 8% of servers repaired per year, most of it disks; hypervisor crashes come on top),
 *   repaired in 8 h (a 4-hour on-site support contract plus the repair).
 * - disk: a field annual replacement rate of about 3% (Schroeder & Gibson, "Disk failures in the real
 *   world", FAST 2007: 2-4%, well above datasheets), boot disks as a RAID-1 pair, swapped in 24 h.
 * - power supply: 100,000 h per unit (typical vendor datasheets), a redundant pair, swapped in 24 h.
 * - switch: a top-of-rack switch of 150,000 h (datasheets quote 150,000-300,000 h), a redundant
 *   pair; Gill, Jain & Nagappan ("Understanding network failures in data centers", SIGCOMM 2011)
 *   found redundancy less effective than it looks, hence a 10% common-cause share; 4 h to replace.
 * - power feed: a UPS-fed distribution path failing once in 10 years, restored in 4 h (the order of
 *   magnitude of IEEE Std 493 "Gold Book" figures for UPS and switchgear paths).
 * - room: fire, flood, water leak or a cooling failure that forces a shutdown, once in 50 years per
 *   room, 24 h to bring it back (cooling failures dominate; a fire would take far longer).
 * - datastore: a dual-controller storage array failing as a whole once in 20 years, 12 h to restore.
 * The common-cause share of every pair is 5% unless stated (IEC 61508-6 beta factors are 1-10%).
 */
export const DEFAULT_RELIABILITY: Omit<Reliability, 'targets'> = Object.freeze({
  host: Object.freeze({ mtbfHours: 5 * HOURS_PER_YEAR, mttrHours: 8 }),
  disk: Object.freeze({ mtbfHours: Math.round(HOURS_PER_YEAR / 0.03), mttrHours: 24, units: 2 as const, commonCauseFraction: 0.05 }),
  powerSupply: Object.freeze({ mtbfHours: 100_000, mttrHours: 24, units: 2 as const, commonCauseFraction: 0.05 }),
  switch: Object.freeze({ mtbfHours: 150_000, mttrHours: 4, units: 2 as const, commonCauseFraction: 0.1 }),
  powerFeed: Object.freeze({ mtbfHours: 10 * HOURS_PER_YEAR, mttrHours: 4 }),
  room: Object.freeze({ mtbfHours: 50 * HOURS_PER_YEAR, mttrHours: 24 }),
  datastore: Object.freeze({ mtbfHours: 20 * HOURS_PER_YEAR, mttrHours: 12 }),
});

/**
 * What each default tier promises over a year: continuous five nines (5.3 min of downtime a year),
 * critical four (53 min), standard three (8.8 h), deferred two (3.7 days). A tier the blueprint adds
 * gets the promise of the default tier with the same mechanism (failover, restart, restore).
 */
export const DEFAULT_AVAILABILITY_TARGETS: Readonly<Record<string, number>> = Object.freeze({
  continuous: 0.99999,
  critical: 0.9999,
  standard: 0.999,
  deferred: 0.99,
});

export const DEFAULT_ECONOMICS: Economics = Object.freeze({
  // Japanese business electricity in 2024 was about 25-35 yen/kWh including the renewable surcharge.
  electricityYenPerKWh: 31,
  // A small on-premises server room: typically 1.5-2.0 (Uptime Institute surveys report ~1.6 on average).
  pue: 1.7,
  horizonYears: 5,
  hostLifeYears: 7,
});

export interface Blueprint {
  readonly name: string;
  readonly description: string;
  readonly tiers: ReadonlyMap<string, Tier>;
  readonly hosts: readonly Host[];
  readonly powerFeeds: readonly PowerFeed[];
  readonly datastores: readonly Datastore[];
  readonly networks: readonly Network[];
  readonly services: readonly Service[];
  readonly flows: readonly Flow[];
  readonly vms: readonly Vm[];
  readonly rooms: readonly string[];
  readonly racks: readonly string[];
  readonly hostModels: readonly HostModel[];
  readonly protection: Protection;
  readonly reliability: Reliability;
  readonly legacyEstate: LegacyEstate | null;
  readonly economics: Economics;
}

export function resolveTiers(raw: RawBlueprint): Map<string, Tier> {
  const tiers = new Map<string, Tier>();
  for (const [name, tier] of Object.entries(DEFAULT_TIERS)) tiers.set(name, tier);
  for (const [name, override] of Object.entries(raw.tiers)) {
    const base: Tier = tiers.get(name) ?? { ...DEFAULT_TIERS.standard!, name, priority: 50 };
    tiers.set(name, {
      ...base,
      ...Object.fromEntries(Object.entries(override).filter(([, value]) => value !== undefined)),
      name,
      replication: override.replication ?? base.replication,
      snapshot: override.snapshot ?? base.snapshot,
    });
  }
  return tiers;
}

export function vmNames(service: string, groups: RawBlueprint['services'][number]['vms']): string[] {
  const names: string[] = [];
  const named = groups.length > 1;
  groups.forEach((group, groupIndex) => {
    const prefix = named ? `${service}-${group.name ?? `g${groupIndex + 1}`}` : service;
    for (let index = 1; index <= group.count; index++) names.push(`${prefix}-${index}`);
  });
  return names;
}

/** Builds the typed blueprint. Call only on a document that passed validation. */
export function buildBlueprint(raw: RawBlueprint): Blueprint {
  const models = new Map(raw.hostModels.map((model) => [model.name, model]));
  const hosts: Host[] = raw.hosts.map((host) => {
    const model = host.model === undefined ? undefined : models.get(host.model);
    return freeze({
      name: host.name,
      model: host.model ?? null,
      cores: host.cores ?? model?.cores ?? 0,
      ghz: host.ghz ?? model?.ghz ?? 0,
      memoryGiB: host.memoryGiB ?? model?.memoryGiB ?? 0,
      watts: host.watts ?? model?.watts ?? 0,
      room: host.room,
      rack: host.rack,
      powerFeed: host.powerFeed,
    });
  });
  const defaultDatastore = raw.datastores[0]!.name;
  const vms: Vm[] = [];
  const services: Service[] = raw.services.map((service, order) => {
    const names = vmNames(service.name, service.vms);
    const serviceVms: Vm[] = [];
    let nameIndex = 0;
    for (const group of service.vms) {
      for (let index = 0; index < group.count; index++) {
        serviceVms.push(
          freeze({
            name: names[nameIndex++]!,
            service: service.name,
            vcpu: group.vcpu,
            memoryGiB: group.memoryGiB,
            diskGiB: group.diskGiB,
            bootTimeS: group.bootTimeS,
          }),
        );
      }
    }
    vms.push(...serviceVms);
    return freeze({
      name: service.name,
      title: service.title ?? service.name,
      tier: service.tier,
      vendor: service.vendor,
      dependsOn: Object.freeze([...service.dependsOn]),
      datastore: service.datastore ?? defaultDatastore,
      network: service.network ?? null,
      vms: Object.freeze(serviceVms),
      healthCheckIntervalS: service.healthCheck?.intervalS ?? 0.5,
      demand: freeze({
        profile: service.demand?.profile ?? 'flat',
        peakFactor: service.demand?.peakFactor ?? 1,
        surgeFactor: service.demand?.surgeFactor ?? 1,
      }),
      order,
    });
  });
  return freeze({
    name: raw.name,
    description: raw.description ?? '',
    tiers: resolveTiers(raw),
    hosts: Object.freeze(hosts),
    powerFeeds: Object.freeze(
      raw.powerFeeds.map((feed) => freeze({ name: feed.name, room: feed.room ?? null, generator: feed.generator })),
    ),
    datastores: Object.freeze(
      raw.datastores.map((store) =>
        freeze({
          name: store.name,
          room: store.room,
          replicatedTo: store.replicatedTo ?? null,
          immutableSnapshots: store.immutableSnapshots,
        }),
      ),
    ),
    networks: Object.freeze(
      raw.networks.map((network) => freeze({ name: network.name, kind: network.kind, vendor: network.vendor ?? null, cidr: network.cidr ?? null })),
    ),
    services: Object.freeze(services),
    flows: Object.freeze(
      raw.flows.map((flow) => freeze({ from: flow.from, to: flow.to, port: flow.port, protocol: flow.protocol ?? null })),
    ),
    vms: Object.freeze(vms),
    rooms: Object.freeze(unique(hosts.map((host) => host.room))),
    racks: Object.freeze(unique(hosts.map((host) => host.rack))),
    hostModels: Object.freeze(
      raw.hostModels.map((model) =>
        freeze({
          name: model.name,
          cores: model.cores,
          ghz: model.ghz,
          memoryGiB: model.memoryGiB,
          watts: model.watts,
          rackUnits: model.rackUnits,
          costYen: model.costYen ?? null,
        }),
      ),
    ),
    protection: freeze({ survive: Object.freeze([...(raw.protection?.survive ?? ['host'])]) }),
    reliability: resolveReliability(raw),
    legacyEstate:
      raw.legacyEstate === undefined
        ? null
        : freeze({
            description: raw.legacyEstate.description ?? '',
            servers: raw.legacyEstate.servers,
            wattsPerServer: raw.legacyEstate.wattsPerServer,
            rackUnitsPerServer: raw.legacyEstate.rackUnitsPerServer,
            costYenPerServer: raw.legacyEstate.costYenPerServer ?? null,
            lifeYears: raw.legacyEstate.lifeYears,
          }),
    economics: freeze({
      electricityYenPerKWh: raw.economics?.electricityYenPerKWh ?? DEFAULT_ECONOMICS.electricityYenPerKWh,
      pue: raw.economics?.pue ?? DEFAULT_ECONOMICS.pue,
      horizonYears: raw.economics?.horizonYears ?? DEFAULT_ECONOMICS.horizonYears,
      hostLifeYears: raw.economics?.hostLifeYears ?? DEFAULT_ECONOMICS.hostLifeYears,
    }),
  });
}

function resolveReliability(raw: RawBlueprint): Reliability {
  const given = raw.reliability ?? {};
  const tiers = resolveTiers(raw);
  const byMechanism: Record<string, string> = { failover: 'continuous', restart: 'critical', restore: 'deferred' };
  const targets = new Map<string, number>();
  for (const tier of tiers.values()) {
    const fallback = DEFAULT_AVAILABILITY_TARGETS[tier.name] ?? DEFAULT_AVAILABILITY_TARGETS[tier.sheddable && tier.mechanism === 'restart' ? 'standard' : byMechanism[tier.mechanism]!]!;
    targets.set(tier.name, given.targets?.[tier.name] ?? fallback);
  }
  const pair = (value: NonNullable<typeof given.disk> | undefined, base: RedundantFailureRate): RedundantFailureRate =>
    freeze({
      mtbfHours: value?.mtbfHours ?? base.mtbfHours,
      mttrHours: value?.mttrHours ?? base.mttrHours,
      units: (value?.units ?? base.units) as 1 | 2,
      commonCauseFraction: value?.commonCauseFraction ?? base.commonCauseFraction,
    });
  const single = (value: FailureRate | undefined, base: FailureRate): FailureRate => freeze({ ...(value ?? base) });
  return freeze({
    host: single(given.host, DEFAULT_RELIABILITY.host),
    disk: pair(given.disk, DEFAULT_RELIABILITY.disk),
    powerSupply: pair(given.powerSupply, DEFAULT_RELIABILITY.powerSupply),
    switch: pair(given.switch, DEFAULT_RELIABILITY.switch),
    powerFeed: single(given.powerFeed, DEFAULT_RELIABILITY.powerFeed),
    room: single(given.room, DEFAULT_RELIABILITY.room),
    datastore: single(given.datastore, DEFAULT_RELIABILITY.datastore),
    targets,
  });
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function freeze<T extends object>(value: T): T {
  return Object.freeze(value);
}

export interface BlueprintIndex {
  readonly service: ReadonlyMap<string, Service>;
  readonly host: ReadonlyMap<string, Host>;
  readonly vm: ReadonlyMap<string, Vm>;
  readonly datastore: ReadonlyMap<string, Datastore>;
  readonly feed: ReadonlyMap<string, PowerFeed>;
}

export function indexBlueprint(blueprint: Blueprint): BlueprintIndex {
  return {
    service: new Map(blueprint.services.map((service) => [service.name, service])),
    host: new Map(blueprint.hosts.map((host) => [host.name, host])),
    vm: new Map(blueprint.vms.map((vm) => [vm.name, vm])),
    datastore: new Map(blueprint.datastores.map((store) => [store.name, store])),
    feed: new Map(blueprint.powerFeeds.map((feed) => [feed.name, feed])),
  };
}

export function tierOf(blueprint: Blueprint, service: Service): Tier {
  const tier = blueprint.tiers.get(service.tier);
  if (tier === undefined) throw new Error(`service ${service.name} has unknown tier ${service.tier}`);
  return tier;
}
