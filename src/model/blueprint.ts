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
      raw.networks.map((network) => freeze({ name: network.name, kind: network.kind, vendor: network.vendor ?? null })),
    ),
    services: Object.freeze(services),
    flows: Object.freeze(
      raw.flows.map((flow) => freeze({ from: flow.from, to: flow.to, port: flow.port, protocol: flow.protocol ?? null })),
    ),
    vms: Object.freeze(vms),
    rooms: Object.freeze(unique(hosts.map((host) => host.room))),
    racks: Object.freeze(unique(hosts.map((host) => host.rack))),
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
