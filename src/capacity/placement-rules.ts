/**
 * The hard constraints of a placement, stated once: `placementRules` compiles them from a
 * blueprint into index arrays that the heuristic (placement.ts) and the MILP (exact.ts) share, and
 * `checkPlacement` lists every violation of a finished placement. The rules:
 *
 * - Capacity. CPU is counted in reference cores: a VM costs vCPU / its tier's CPU overcommit
 *   ceiling ("1.5 vCPU" of a standard VM is 0.75 of a core), and a host offers cores × GHz /
 *   the fastest host's GHz of the blueprint. On a cluster of one host model this is exactly
 *   CapacityModel's core count; on a mixed one a slower host holds proportionally less, so a plan
 *   that fits here also fits CapacityModel (which ignores GHz). Memory is counted in full for a
 *   tier that does not allow memory overcommit (continuous and critical by default) and at
 *   1 / MEMORY_OVERCOMMIT_RATIO for one that does (standard and deferred by default).
 * - A `failover` VM (continuous) has a secondary copy whose host is in another room when the
 *   eligible hosts span two rooms and the tier asks for room anti-affinity; else in another
 *   rack; else (one rack, or anti-affinity host/none) on another host.
 * - The VMs of one service run on distinct hosts: hard for tiers that reserve failover capacity
 *   (continuous and critical) when the service has no more VMs than there are hosts it may use,
 *   soft (a preference the heuristic counts in its stats) otherwise; with two failure domains a
 *   continuous service of k VMs also needs k ≤ 2 × the usable hosts of the smaller domain.
 *   Primaries and secondaries are two separate groups: a host may carry one VM's primary and a
 *   sibling's secondary.
 * - A service with two or more VMs does not run all its primaries in one rack when the hosts it may
 *   use span two racks (every tier: a rack loses power as one).
 * - When any eligible host is on a generator-backed feed, the primary of every continuous VM runs on
 *   such a host, so that losing the grid never takes both copies of one. Critical VMs restart on
 *   the generator-backed hosts when the grid goes (lower tiers are shed for them): the failure
 *   analysis of each power feed and the generator-power drill check that they fit. Keeping every
 *   copy on the generator feed instead would fill those hosts to ~90 % in normal operation (no
 *   headroom for clinical peaks) and put both copies of each pair behind one feed.
 * - Every VM is placed, and every failover VM has its secondary.
 */
import type { Blueprint, Host } from '../model/index.ts';
import { MEMORY_OVERCOMMIT_RATIO, tierOf, vmCost } from '../model/index.ts';
import type { Placement } from './capacity.ts';

export { MEMORY_OVERCOMMIT_RATIO } from '../model/index.ts';
/** Keeps fractional vCPU sums (0.5 + 1.5 + ...) from failing on rounding. */
export const CAPACITY_EPSILON = 1e-9;

export type DomainLevel = 'room' | 'rack' | 'host';

export interface RuleOptions {
  /** Only these hosts may carry VMs (for sizing: try a subset of the blueprint's hosts). */
  readonly eligibleHosts?: readonly string[];
  readonly memoryOvercommitRatio?: number;
}

export interface VmRule {
  readonly name: string;
  readonly service: number;
  readonly tier: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly failover: boolean;
  readonly needsGenerator: boolean;
  /** For a failover VM: the failure domain its secondary must avoid. */
  readonly secondaryDomain: DomainLevel;
}

export interface ServiceRule {
  readonly name: string;
  readonly vms: readonly number[];
  /** Distinct hosts are required (else preferred) for primaries and, separately, secondaries. */
  readonly distinctHard: boolean;
  /** Not every primary in one rack. */
  readonly rackSpread: boolean;
}

/** The compiled problem: hosts and VMs by index, in blueprint order. */
export interface PlacementRules {
  readonly hosts: readonly Host[];
  readonly hostIndex: ReadonlyMap<string, number>;
  readonly capacityCores: Float64Array;
  readonly capacityMemoryGiB: Float64Array;
  readonly hostRoom: Int32Array;
  readonly hostRack: Int32Array;
  readonly hostGenerator: Uint8Array;
  readonly referenceGhz: number;
  readonly roomCount: number;
  readonly rackCount: number;
  /** Some eligible host is generator-backed, so continuous and critical VMs must use those. */
  readonly generatorRule: boolean;
  readonly vms: readonly VmRule[];
  readonly vmIndex: ReadonlyMap<string, number>;
  readonly services: readonly ServiceRule[];
}

export function placementRules(blueprint: Blueprint, options: RuleOptions = {}): PlacementRules {
  const ratio = options.memoryOvercommitRatio ?? MEMORY_OVERCOMMIT_RATIO;
  if (!(ratio >= 1)) throw new Error(`placement: memory overcommit ratio ${ratio} must be at least 1`);
  const eligible = options.eligibleHosts === undefined ? null : new Set(options.eligibleHosts);
  if (eligible !== null) {
    const known = new Set(blueprint.hosts.map((host) => host.name));
    for (const name of eligible) if (!known.has(name)) throw new Error(`placement: unknown eligible host ${name}`);
  }
  const hosts = blueprint.hosts.filter((host) => eligible === null || eligible.has(host.name));
  const referenceGhz = Math.max(...blueprint.hosts.map((host) => host.ghz));
  const generatorFeeds = new Set(blueprint.powerFeeds.filter((feed) => feed.generator).map((feed) => feed.name));
  const rooms = new Map<string, number>();
  const racks = new Map<string, number>();
  const count = hosts.length;
  const capacityCores = new Float64Array(count);
  const capacityMemoryGiB = new Float64Array(count);
  const hostRoom = new Int32Array(count);
  const hostRack = new Int32Array(count);
  const hostGenerator = new Uint8Array(count);
  hosts.forEach((host, index) => {
    capacityCores[index] = (host.cores * host.ghz) / referenceGhz;
    capacityMemoryGiB[index] = host.memoryGiB;
    if (!rooms.has(host.room)) rooms.set(host.room, rooms.size);
    // Rack names are scoped by room: two rooms may each have a rack "r1".
    const rackKey = `${host.room}/${host.rack}`;
    if (!racks.has(rackKey)) racks.set(rackKey, racks.size);
    hostRoom[index] = rooms.get(host.room)!;
    hostRack[index] = racks.get(rackKey)!;
    hostGenerator[index] = generatorFeeds.has(host.powerFeed) ? 1 : 0;
  });
  const generatorRule = hostGenerator.some((flag) => flag === 1);
  const generatorHosts = hostGenerator.reduce((sum, flag) => sum + flag, 0);
  const racksOf = (indices: number[]) => new Set(indices.map((index) => hostRack[index])).size;
  const allIndices = hosts.map((_, index) => index);
  const generatorIndices = allIndices.filter((index) => hostGenerator[index] === 1);

  const vms: VmRule[] = [];
  const services: ServiceRule[] = [];
  for (const service of blueprint.services) {
    const tier = tierOf(blueprint, service);
    const needsGenerator = generatorRule && tier.mechanism === 'failover';
    const usable = needsGenerator ? generatorIndices : allIndices;
    const usableHosts = needsGenerator ? generatorHosts : count;
    let secondaryDomain: DomainLevel = 'host';
    if (tier.antiAffinity === 'room' && rooms.size >= 2) secondaryDomain = 'room';
    else if ((tier.antiAffinity === 'room' || tier.antiAffinity === 'rack') && racks.size >= 2) secondaryDomain = 'rack';
    const serviceIndex = services.length;
    const indices: number[] = [];
    for (const vm of service.vms) {
      indices.push(vms.length);
      vms.push({
        name: vm.name,
        service: serviceIndex,
        tier: tier.name,
        ...vmCost(vm, tier, ratio),
        failover: tier.mechanism === 'failover',
        needsGenerator,
        secondaryDomain,
      });
    }
    // With two failure domains every failover VM keeps one copy in each, so a domain of n hosts
    // holds at most 2n copies of the service on distinct hosts (n primaries, n secondaries).
    let failoverFits = true;
    if (tier.mechanism === 'failover' && secondaryDomain !== 'host') {
      const perDomain = new Map<number, number>();
      for (const host of usable) {
        const domain = secondaryDomain === 'room' ? hostRoom[host]! : hostRack[host]!;
        perDomain.set(domain, (perDomain.get(domain) ?? 0) + 1);
      }
      if (perDomain.size === 2) failoverFits = service.vms.length <= 2 * Math.min(...perDomain.values());
    }
    services.push({
      name: service.name,
      vms: indices,
      distinctHard: tier.reserveFailoverCapacity && service.vms.length <= usableHosts && failoverFits,
      rackSpread: service.vms.length >= 2 && racksOf(usable) >= 2,
    });
  }
  return {
    hosts,
    hostIndex: new Map(hosts.map((host, index) => [host.name, index])),
    capacityCores,
    capacityMemoryGiB,
    hostRoom,
    hostRack,
    hostGenerator,
    referenceGhz,
    roomCount: rooms.size,
    rackCount: racks.size,
    generatorRule,
    vms,
    vmIndex: new Map(vms.map((vm, index) => [vm.name, index])),
    services,
  };
}

/** Whether hosts `a` and `b` are apart at `level` (another room, another rack, another host). */
export function apart(rules: PlacementRules, level: DomainLevel, a: number, b: number): boolean {
  if (level === 'room') return rules.hostRoom[a] !== rules.hostRoom[b];
  if (level === 'rack') return rules.hostRack[a] !== rules.hostRack[b];
  return a !== b;
}

/**
 * Every hard-constraint violation of `placements`, one sentence each; empty when the placement is
 * valid. Pass the same options the planner had (eligible hosts, memory ratio).
 */
export function checkPlacement(
  blueprint: Blueprint,
  placements: ReadonlyMap<string, Placement>,
  options: RuleOptions = {},
): string[] {
  const rules = placementRules(blueprint, options);
  const violations: string[] = [];
  const primaryHost = new Int32Array(rules.vms.length).fill(-1);
  const secondaryHost = new Int32Array(rules.vms.length).fill(-1);
  const resolve = (vm: string, host: string, role: string): number => {
    const index = rules.hostIndex.get(host);
    if (index === undefined) violations.push(`${vm}: its ${role} is on "${host}", which is not an eligible host`);
    return index ?? -1;
  };
  for (const vmName of placements.keys()) {
    if (!rules.vmIndex.has(vmName)) violations.push(`${vmName}: placed but not a VM of the blueprint`);
  }
  rules.vms.forEach((vm, index) => {
    const placement = placements.get(vm.name);
    if (placement === undefined) return;
    primaryHost[index] = resolve(vm.name, placement.primary, 'primary');
    if (placement.secondary !== null) {
      secondaryHost[index] = resolve(vm.name, placement.secondary, 'secondary');
      if (!vm.failover) violations.push(`${vm.name} (${vm.tier}): has a secondary but its tier does not fail over`);
    }
  });
  violations.push(...listViolations(rules, primaryHost, secondaryHost));
  return violations;
}

/**
 * The violations of a placement given as host indices per VM (-1: none). A VM without a primary
 * is "not placed"; a failover VM without a secondary is reported too.
 */
export function listViolations(rules: PlacementRules, primaryHost: Int32Array, secondaryHost: Int32Array): string[] {
  const violations: string[] = [];
  const usedCores = new Float64Array(rules.hosts.length);
  const usedMemory = new Float64Array(rules.hosts.length);
  const hostName = (index: number) => rules.hosts[index]!.name;
  rules.vms.forEach((vm, index) => {
    const primary = primaryHost[index]!;
    const secondary = secondaryHost[index]!;
    if (primary < 0) {
      violations.push(`${vm.name}: not placed`);
      return;
    }
    if (vm.failover && secondary < 0) violations.push(`${vm.name} (${vm.tier}): has no secondary`);
    for (const host of [primary, secondary]) {
      if (host < 0) continue;
      usedCores[host]! += vm.cores;
      usedMemory[host]! += vm.memoryGiB;
      if (vm.needsGenerator && host === primary && rules.hostGenerator[host] === 0) {
        violations.push(`${vm.name} (${vm.tier}): ${hostName(host)} is not on a generator-backed power feed`);
      }
    }
    if (secondary >= 0 && !apart(rules, vm.secondaryDomain, primary, secondary)) {
      violations.push(
        `${vm.name} (${vm.tier}): primary on ${hostName(primary)} and secondary on ${hostName(secondary)} share a ${vm.secondaryDomain}`,
      );
    }
  });
  rules.hosts.forEach((host, index) => {
    if (usedCores[index]! > rules.capacityCores[index]! + CAPACITY_EPSILON) {
      violations.push(`${host.name}: ${round(usedCores[index]!)} cores placed, capacity ${round(rules.capacityCores[index]!)}`);
    }
    if (usedMemory[index]! > rules.capacityMemoryGiB[index]! + CAPACITY_EPSILON) {
      violations.push(`${host.name}: ${round(usedMemory[index]!)} GiB placed, capacity ${round(rules.capacityMemoryGiB[index]!)}`);
    }
  });
  for (const service of rules.services) {
    if (service.distinctHard) {
      for (const [role, hostsOf] of [['primaries', primaryHost], ['secondaries', secondaryHost]] as const) {
        const seen = new Set<number>();
        for (const vm of service.vms) {
          const host = hostsOf[vm]!;
          if (host < 0) continue;
          if (seen.has(host)) violations.push(`${service.name}: two ${role} on ${hostName(host)}`);
          seen.add(host);
        }
      }
    }
    if (service.rackSpread) {
      const racks = new Set<number>();
      let placed = 0;
      for (const vm of service.vms) {
        const host = primaryHost[vm]!;
        if (host < 0) continue;
        placed++;
        racks.add(rules.hostRack[host]!);
      }
      if (placed === service.vms.length && racks.size === 1) {
        const host = rules.hosts[primaryHost[service.vms[0]!]!]!;
        violations.push(`${service.name}: all ${placed} VMs in rack ${host.rack}`);
      }
    }
  }
  return violations;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
