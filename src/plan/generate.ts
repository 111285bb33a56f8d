/**
 * Synthetic hospitals for benchmarks and property tests: `generateCluster({ vms, hosts, seed })`
 * builds a Blueprint directly (no YAML) with two server rooms, racks of a few hosts, a grid and a
 * generator-backed feed per room, and a tier mix like the reference hospital's (by VM: about 10 %
 * continuous, 40 % critical, 35 % standard, 15 % deferred). VM sizes are drawn, then scaled so
 * that all copies fill `utilisation` of the cluster's CPU (default drawn from 0.45–0.65), and
 * enough hosts in every rack go on the generator feed for the continuous and critical tiers to
 * fill about 70 % of them. The same options give the same blueprint.
 */
import { buildBlueprint, DEFAULT_TIERS, type Blueprint, type RawBlueprint } from '../model/index.ts';

export interface ClusterOptions {
  readonly vms: number;
  readonly hosts: number;
  readonly seed: number;
  /** Share of the cluster's CPU that all copies of all VMs fill; drawn from the seed when absent. */
  readonly utilisation?: number;
  /** Every host of one model (40 cores, 2.8 GHz); else a seeded mix of two models. */
  readonly uniformHosts?: boolean;
}

/** A small, fast, seedable generator (mulberry32); returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

const HOST_MODELS = [
  { name: 'model-40c', cores: 40, ghz: 2.8, memoryGiB: 768, watts: 750, rackUnits: 2 },
  { name: 'model-32c', cores: 32, ghz: 2.4, memoryGiB: 512, watts: 600, rackUnits: 2 },
] as const;

interface TierMix {
  readonly tier: 'continuous' | 'critical' | 'standard' | 'deferred';
  /** Share of services. */
  readonly weight: number;
  readonly maxVms: number;
  readonly vcpu: readonly number[];
}

const TIER_MIX: readonly TierMix[] = [
  { tier: 'continuous', weight: 0.07, maxVms: 4, vcpu: [2, 4, 8, 8, 16] },
  { tier: 'critical', weight: 0.35, maxVms: 3, vcpu: [1, 2, 2, 4, 4, 8] },
  { tier: 'standard', weight: 0.41, maxVms: 2, vcpu: [0.5, 1, 1.5, 2, 2, 4] },
  { tier: 'deferred', weight: 0.17, maxVms: 2, vcpu: [1, 2, 4, 4, 8] },
];
const MEMORY_PER_VCPU_GIB = [2, 4, 4, 8, 8, 16] as const;
const GENERATOR_FILL = 0.7;

export function generateCluster(options: ClusterOptions): Blueprint {
  if (!(options.hosts >= 2 && options.vms >= 1)) throw new Error('generateCluster: needs at least 2 hosts and 1 VM');
  const random = seededRandom(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const utilisation = options.utilisation ?? 0.45 + 0.2 * random();
  const mixed = options.uniformHosts === true ? false : random() < 0.5;

  // Hosts: two rooms, racks of about sqrt(hosts per room), at least two hosts a rack.
  const hosts: Array<{ name: string; model: string; room: string; rack: string; cores: number; ghz: number; memoryGiB: number }> = [];
  const roomSizes = [Math.ceil(options.hosts / 2), Math.floor(options.hosts / 2)];
  const racksOfRoom: number[][] = [];
  roomSizes.forEach((size, roomIndex) => {
    const room = roomIndex === 0 ? 'room-a' : 'room-b';
    const perRack = Math.min(16, Math.max(2, Math.ceil(Math.sqrt(size))));
    const rackHosts: number[][] = [];
    for (let index = 0; index < size; index++) {
      const rack = Math.floor(index / perRack);
      const model = mixed ? pick(HOST_MODELS) : HOST_MODELS[0];
      (rackHosts[rack] ??= []).push(hosts.length);
      hosts.push({ name: `${room.slice(-1)}${rack + 1}-h${(index % perRack) + 1}`, model: model.name, room, rack: `${room.slice(-1)}${rack + 1}`, cores: model.cores, ghz: model.ghz, memoryGiB: model.memoryGiB });
    }
    racksOfRoom.push(...rackHosts);
  });
  const maxGhz = Math.max(...hosts.map((host) => host.ghz));
  const referenceCores = (host: (typeof hosts)[number]) => (host.cores * host.ghz) / maxGhz;
  const totalCapacity = hosts.reduce((sum, host) => sum + referenceCores(host), 0);
  const smallestCores = Math.min(...hosts.map((host) => host.cores));

  // Services until the VM count is reached; sizes drawn now, scaled below.
  const drawn: Array<{ tier: TierMix['tier']; vcpu: number[]; memoryPerVcpu: number[] }> = [];
  let vmCount = 0;
  while (vmCount < options.vms) {
    let roll = random();
    let mix = TIER_MIX[TIER_MIX.length - 1]!;
    for (const candidate of TIER_MIX) {
      if (roll < candidate.weight) {
        mix = candidate;
        break;
      }
      roll -= candidate.weight;
    }
    const count = Math.min(options.vms - vmCount, 1 + Math.floor(random() * mix.maxVms));
    const vcpu = pick(mix.vcpu);
    const memoryPerVcpu = pick(MEMORY_PER_VCPU_GIB);
    drawn.push({ tier: mix.tier, vcpu: Array.from({ length: count }, () => vcpu), memoryPerVcpu: Array.from({ length: count }, () => memoryPerVcpu) });
    vmCount += count;
  }
  const coresOf = (tier: TierMix['tier'], vcpu: number) => ((tier === 'continuous' ? 2 : 1) * vcpu) / DEFAULT_TIERS[tier]!.cpuOvercommit;
  const demand = drawn.reduce((sum, service) => sum + service.vcpu.reduce((total, vcpu) => total + coresOf(service.tier, vcpu), 0), 0);
  const scale = (utilisation * totalCapacity) / demand;
  // No VM larger than a third of the smallest host at its tier's ceiling, so every instance packs.
  const services: RawBlueprint['services'] = drawn.map((service, index) => {
    const ceiling = DEFAULT_TIERS[service.tier]!.cpuOvercommit;
    const maxVcpu = Math.max(0.5, Math.floor((smallestCores * ceiling * 2) / 3) / 2);
    const vcpu = Math.min(maxVcpu, Math.max(0.5, Math.round(service.vcpu[0]! * scale * 2) / 2));
    const memoryGiB = Math.max(1, Math.round(vcpu * service.memoryPerVcpu[0]!));
    return {
      name: `svc-${index + 1}`,
      tier: service.tier,
      vendor: `vendor-${(index % 17) + 1}`,
      dependsOn: [],
      vms: [{ count: service.vcpu.length, vcpu, memoryGiB, diskGiB: 100, bootTimeS: 60 }],
    };
  });

  // Generator-backed hosts: enough for continuous (both copies) and critical at GENERATOR_FILL,
  // taken rack by rack in turn so that every rack has some.
  const generatorDemand = services.reduce((sum, service) => {
    if (service.tier !== 'continuous' && service.tier !== 'critical') return sum;
    const group = service.vms[0]!;
    return sum + group.count * coresOf(service.tier, group.vcpu);
  }, 0);
  const averageCapacity = totalCapacity / hosts.length;
  const generatorCount = Math.min(hosts.length, Math.max(2, Math.ceil(generatorDemand / (GENERATOR_FILL * averageCapacity))));
  // Half of them in each room (a continuous VM keeps one copy in each), rack by rack in turn.
  const onGenerator = new Set<number>();
  const roomRacks = [racksOfRoom.filter((rack) => hosts[rack[0]!]!.room === 'room-a'), racksOfRoom.filter((rack) => hosts[rack[0]!]!.room === 'room-b')];
  roomRacks.forEach((racks, roomIndex) => {
    const wanted = Math.min(roomSizes[roomIndex]!, Math.ceil(generatorCount / 2));
    let taken = 0;
    for (let turn = 0; taken < wanted; turn++) {
      for (const rack of racks) {
        const host = rack[turn];
        if (host !== undefined && taken < wanted) {
          onGenerator.add(host);
          taken++;
        }
      }
    }
  });

  const raw: RawBlueprint = {
    apiVersion: 'tomaranai/v1',
    kind: 'Hospital',
    name: `generated-${options.vms}-${options.hosts}-${options.seed}`,
    description: `Synthetic hospital: ${options.vms} VMs on ${options.hosts} hosts, seed ${options.seed}, CPU utilisation ${utilisation.toFixed(2)}`,
    tiers: {},
    hostModels: HOST_MODELS.map((model) => ({ ...model })),
    powerFeeds: ['room-a', 'room-b'].flatMap((room) => [
      { name: `${room}-grid`, room, generator: false },
      { name: `${room}-gen`, room, generator: true },
    ]),
    hosts: hosts.map((host, index) => ({
      name: host.name,
      model: host.model,
      room: host.room,
      rack: host.rack,
      powerFeed: `${host.room}-${onGenerator.has(index) ? 'gen' : 'grid'}`,
    })),
    datastores: [
      { name: 'ds-a', room: 'room-a', replicatedTo: 'ds-b', immutableSnapshots: true },
      { name: 'ds-b', room: 'room-b', replicatedTo: 'ds-a', immutableSnapshots: true },
    ],
    networks: [{ name: 'server', kind: 'server' }],
    services,
    flows: [],
  };
  return buildBlueprint(raw);
}
