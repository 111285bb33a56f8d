/**
 * The 10,000-VM estate: a generated hospital at vSphere's cluster maximum (500 hosts, 10,000 VMs)
 * for the scale benchmark (bench/estate.ts). It is written as blueprint YAML and read back through
 * loadBlueprint, so the normal validation (schema and semantic checks) vets it like any hospital's.
 * The same options give the same text, byte for byte.
 *
 * Its shape: `rooms` server rooms of 10-host racks, each room with a grid and a generator feed
 * (half of every rack's hosts on the generator) and a datastore replicated to the next room; 96-core
 * hosts; services of 1-4 VMs with a tier mix by VM of about 5 % continuous, 35 % critical, 40 %
 * standard and 20 % deferred; a fifth of the critical and standard services depend on a continuous
 * one. All copies fill about 35 % of the CPU, so a room's loss (a fifth of the hosts) is survivable.
 */
import { stringify } from 'yaml';
import { loadBlueprint, type Blueprint, type RawBlueprint } from '../../model/index.ts';
import { seededRandom } from '../../plan/generate.ts';

export interface EstateOptions {
  readonly hosts?: number;
  readonly vms?: number;
  readonly rooms?: number;
  readonly seed?: number;
}

const HOSTS_PER_RACK = 10;
const TIER_MIX = [
  { tier: 'continuous', share: 0.05, vcpu: [2, 4] },
  { tier: 'critical', share: 0.35, vcpu: [1, 2, 4] },
  { tier: 'standard', share: 0.4, vcpu: [1, 2, 4] },
  { tier: 'deferred', share: 0.2, vcpu: [1, 2, 4] },
] as const;

/** The estate's blueprint as YAML text. */
export function generateEstateYaml(options: EstateOptions = {}): string {
  const hostCount = options.hosts ?? 500;
  const vmCount = options.vms ?? 10_000;
  const roomCount = options.rooms ?? 5;
  const random = seededRandom(options.seed ?? 1);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const rooms = Array.from({ length: roomCount }, (_, index) => `room-${index + 1}`);
  const hosts: RawBlueprint['hosts'] = [];
  for (let index = 0; index < hostCount; index++) {
    const room = rooms[index % roomCount]!;
    const inRoom = Math.floor(index / roomCount);
    const rack = `${room}-r${Math.floor(inRoom / HOSTS_PER_RACK) + 1}`;
    const feed = inRoom % 2 === 0 ? 'gen' : 'grid';
    hosts.push({ name: `${rack}-h${(inRoom % HOSTS_PER_RACK) + 1}`, model: 'estate-96c', room, rack, powerFeed: `${room}-${feed}` });
  }
  const services: RawBlueprint['services'] = [];
  const continuous: string[] = [];
  let placed = 0;
  for (const mix of TIER_MIX) {
    const wanted = mix.tier === 'deferred' ? vmCount - placed : Math.round(vmCount * mix.share);
    for (let taken = 0; taken < wanted; ) {
      const count = Math.min(wanted - taken, 1 + Math.floor(random() * 4));
      const vcpu = pick(mix.vcpu);
      const name = `${mix.tier}-${services.length + 1}`;
      const index = services.length;
      const dependsOn = (mix.tier === 'critical' || mix.tier === 'standard') && continuous.length > 0 && random() < 0.2 ? [pick(continuous)] : [];
      services.push({
        name,
        tier: mix.tier,
        vendor: `vendor-${(index % 40) + 1}`,
        dependsOn,
        datastore: `ds-${rooms[index % roomCount]}`,
        vms: [{ count, vcpu, memoryGiB: 4 * vcpu, diskGiB: 100, bootTimeS: 30 + Math.floor(random() * 90) }],
      });
      if (mix.tier === 'continuous') continuous.push(name);
      taken += count;
    }
    placed += wanted;
  }
  const raw: RawBlueprint = {
    apiVersion: 'tomaranai/v1',
    kind: 'Hospital',
    name: `estate-${vmCount}`,
    description: `Generated estate: ${vmCount} VMs on ${hostCount} hosts in ${roomCount} rooms (src/drill/sim/estate.ts, seed ${options.seed ?? 1})`,
    tiers: {},
    hostModels: [{ name: 'estate-96c', cores: 96, ghz: 2.6, memoryGiB: 1536, watts: 900, rackUnits: 2 }],
    powerFeeds: rooms.flatMap((room) => [
      { name: `${room}-grid`, room, generator: false },
      { name: `${room}-gen`, room, generator: true },
    ]),
    hosts,
    datastores: rooms.map((room, index) => ({ name: `ds-${room}`, room, replicatedTo: `ds-${rooms[(index + 1) % roomCount]}`, immutableSnapshots: true })),
    networks: [{ name: 'server', kind: 'server' }],
    services,
    flows: [],
  };
  return stringify(raw, { lineWidth: 0 });
}

/** The estate, read and validated as any blueprint is; throws with the problems if it is not valid. */
export function generateEstate(options: EstateOptions = {}): Blueprint {
  const result = loadBlueprint(generateEstateYaml(options));
  if (!result.ok) throw new Error(`the generated estate is not a valid blueprint: ${result.problems.slice(0, 5).map((problem) => `${problem.code} ${problem.message}`).join('; ')}`);
  return result.blueprint;
}
