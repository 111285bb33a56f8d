import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildBlueprint, type Blueprint, type RawBlueprint } from '../../src/model/index.ts';
import { planPlacementExact } from '../../src/plan/exact.ts';
import { generateCluster } from '../../src/plan/generate.ts';
import { planPlacement, type PlacementObjective } from '../../src/capacity/placement.ts';
import { checkPlacement } from '../../src/capacity/placement-rules.ts';
import { shipped } from '../support/blueprints.ts';
import { TomaranaiError } from '../../src/errors/index.ts';

const OBJECTIVES: readonly PlacementObjective[] = ['balanced', 'fewest-hosts'];

function expectValid(blueprint: Blueprint, objective: PlacementObjective) {
  const result = planPlacement(blueprint, { objective });
  expect(result.unplaced).toEqual(new Map());
  expect(result.violations).toEqual([]);
  expect(checkPlacement(blueprint, result.placements)).toEqual([]);
  expect(result.placements.size).toBe(blueprint.vms.length);
  return result;
}

/** A one-room hospital small enough to read: two racks, generator hosts r1-h1 and r2-h1. */
function tinyHospital(services: RawBlueprint['services'], cores = 16): Blueprint {
  return buildBlueprint({
    apiVersion: 'tomaranai/v1',
    kind: 'Hospital',
    name: 'tiny',
    tiers: { continuous: { antiAffinity: 'rack' } },
    hostModels: [{ name: 'unit', cores, ghz: 2.5, memoryGiB: 256, watts: 500, rackUnits: 2 }],
    powerFeeds: [
      { name: 'grid', room: 'room-1', generator: false },
      { name: 'gen', room: 'room-1', generator: true },
    ],
    hosts: [
      { name: 'r1-h1', model: 'unit', room: 'room-1', rack: 'r1', powerFeed: 'gen' },
      { name: 'r1-h2', model: 'unit', room: 'room-1', rack: 'r1', powerFeed: 'grid' },
      { name: 'r2-h1', model: 'unit', room: 'room-1', rack: 'r2', powerFeed: 'gen' },
      { name: 'r2-h2', model: 'unit', room: 'room-1', rack: 'r2', powerFeed: 'grid' },
    ],
    datastores: [{ name: 'ds-1', room: 'room-1', immutableSnapshots: true }],
    networks: [],
    services,
    flows: [],
  });
}

function service(name: string, tier: string, count: number, vcpu: number, memoryGiB = 8): RawBlueprint['services'][number] {
  return { name, tier, vendor: 'vendor-a', dependsOn: [], vms: [{ count, vcpu, memoryGiB, diskGiB: 10, bootTimeS: 60 }] };
}

describe('the capacity planner places every VM within the hard constraints', () => {
  for (const name of ['university-hospital', 'regional-hospital']) {
    for (const objective of OBJECTIVES) {
      it(`places all of ${name} (${objective}) with no violation`, () => {
        expectValid(shipped(name), objective);
      });
    }
  }

  it('puts the reference hospital on 8 hosts when asked for the fewest, and spreads it over all 14 when balanced', () => {
    const reference = shipped('university-hospital');
    expect(planPlacement(reference, { objective: 'fewest-hosts' }).hostsUsed).toBe(8);
    expect(planPlacement(reference, { objective: 'balanced' }).hostsUsed).toBe(14);
  });

  it('keeps every continuous secondary in the other room and every continuous primary on generator power', () => {
    const reference = shipped('university-hospital');
    const result = expectValid(reference, 'balanced');
    const hosts = new Map(reference.hosts.map((host) => [host.name, host]));
    const generator = new Set(reference.powerFeeds.filter((feed) => feed.generator).map((feed) => feed.name));
    for (const serviceOf of reference.services) {
      for (const vm of serviceOf.vms) {
        const placement = result.placements.get(vm.name)!;
        if (serviceOf.tier === 'continuous') {
          expect(hosts.get(placement.secondary!)!.room).not.toBe(hosts.get(placement.primary)!.room);
        }
        if (serviceOf.tier === 'continuous') expect(generator.has(hosts.get(placement.primary)!.powerFeed)).toBe(true);
      }
    }
  });

  for (const [vms, hosts] of [
    [2000, 100],
    [500, 30],
  ] as const) {
    for (const objective of OBJECTIVES) {
      it(`places a generated cluster of ${vms} VMs on ${hosts} hosts (${objective}) with no violation`, () => {
        expectValid(generateCluster({ vms, hosts, seed: 7 }), objective);
      });
    }
  }

  it('uses only the eligible hosts it is given', () => {
    const reference = shipped('university-hospital');
    const eligibleHosts = reference.hosts.map((host) => host.name).filter((name) => name !== 'a1-h3' && name !== 'b2-h3');
    const result = planPlacement(reference, { objective: 'balanced', eligibleHosts });
    expect(result.violations).toEqual([]);
    expect(checkPlacement(reference, result.placements, { eligibleHosts })).toEqual([]);
    const used = new Set([...result.placements.values()].flatMap((placement) => [placement.primary, placement.secondary]));
    expect(used.has('a1-h3') || used.has('b2-h3')).toBe(false);
  });

  it('plans the same placement twice from the same input', () => {
    const cluster = generateCluster({ vms: 300, hosts: 20, seed: 3 });
    for (const objective of OBJECTIVES) {
      const first = planPlacement(cluster, { objective });
      const second = planPlacement(cluster, { objective });
      expect([...second.placements]).toEqual([...first.placements]);
    }
  });

  it('says which continuous primaries did not fit on generator power instead of dropping them', () => {
    // Two generator hosts of 16 cores cannot hold 3 continuous primaries of 9 vCPU at 1:1.
    const blueprint = tinyHospital([service('ehr', 'continuous', 3, 9)]);
    const result = planPlacement(blueprint, { objective: 'balanced' });
    expect(result.placements.size + result.unplaced.size).toBe(3);
    expect(result.violations.some((violation) => /^ehr-\d \(continuous\): r\d-h\d is not on a generator-backed power feed$/.test(violation))).toBe(true);
    expect(checkPlacement(blueprint, result.placements)).toEqual(result.violations);
  });

  it('leaves a VM larger than any host unplaced, with the reason', () => {
    const blueprint = tinyHospital([service('dwh', 'standard', 1, 40)]);
    const result = planPlacement(blueprint, { objective: 'fewest-hosts' });
    expect(result.unplaced.get('dwh-1')).toMatch(/no eligible host has room \(20 cores/);
    expect(result.violations).toEqual(['dwh-1: not placed']);
  });

  it('counts a standard VM at half its vCPU: four 8-vCPU VMs share one 16-core host', () => {
    const blueprint = tinyHospital([service('reports', 'standard', 4, 8)]);
    const result = planPlacement(blueprint, { objective: 'fewest-hosts' });
    expect(result.violations).toEqual([]);
    // Not all four in one rack: two hosts, one per rack.
    expect(result.hostsUsed).toBe(2);
  });
});

describe('checkPlacement lists every hard-constraint violation', () => {
  it('finds a shared failure domain, an overloaded host, siblings together and a missing VM', () => {
    const blueprint = tinyHospital([service('ehr', 'continuous', 2, 10), service('pacs', 'critical', 2, 4)]);
    const violations = checkPlacement(
      blueprint,
      new Map([
        ['ehr-1', { primary: 'r1-h1', secondary: 'r1-h2' }],
        ['ehr-2', { primary: 'r1-h1', secondary: 'r2-h1' }],
        ['pacs-1', { primary: 'r2-h1', secondary: null }],
      ]),
    );
    expect(violations).toEqual([
      'ehr-1 (continuous): primary on r1-h1 and secondary on r1-h2 share a rack',
      'pacs-2: not placed',
      'r1-h1: 20 cores placed, capacity 16',
      'ehr: two primaries on r1-h1',
      'ehr: all 2 VMs in rack r1',
    ]);
  });
});

describe('the exact planner (HiGHS)', () => {
  const seeds = [2, 5, 11, 16];
  for (const seed of seeds) {
    it(`finds a feasible optimum no worse than the heuristic (generated cluster, seed ${seed})`, async () => {
      const blueprint = generateCluster({ vms: 20 + ((seed * 13) % 41), hosts: 4 + (seed % 7), seed });
      const heuristic = planPlacement(blueprint, { objective: 'fewest-hosts' });
      const exact = await planPlacementExact(blueprint, { objective: 'fewest-hosts', timeLimitS: 30 });
      expect(exact.method).toBe('exact');
      expect(exact.optimal).toBe(true);
      expect(exact.gap).toBe(0);
      expect(exact.hostsUsed).toBeLessThanOrEqual(heuristic.hostsUsed);
      expect(exact.hostsUsed).toBeGreaterThanOrEqual(exact.stats.lowerBoundHosts);
      expect(exact.unplaced.size).toBe(0);
      expect(checkPlacement(blueprint, exact.placements)).toEqual([]);
    });
  }

  it('balances the regional hospital no worse than the heuristic', async () => {
    const regional = shipped('regional-hospital');
    const heuristic = planPlacement(regional, { objective: 'balanced' });
    const exact = await planPlacementExact(regional, { objective: 'balanced', timeLimitS: 30 });
    expect(checkPlacement(regional, exact.placements)).toEqual([]);
    const peak = (result: typeof heuristic) => Math.max(result.stats.maxCoreUtilisation, result.stats.maxMemoryUtilisation);
    expect(peak(exact)).toBeLessThanOrEqual(peak(heuristic) + 1e-9);
  });

  it('refuses a cluster above its size limit with a coded error', async () => {
    const large = generateCluster({ vms: 2000, hosts: 100, seed: 1 });
    await expect(planPlacementExact(large)).rejects.toThrow(TomaranaiError);
    await expect(planPlacementExact(large)).rejects.toMatchObject({ code: 'TMR_PLAN_EXACT_TOO_LARGE' });
  });
});

describe('property: the heuristic never breaks a hard constraint that can be kept', () => {
  it('on generated small clusters, every violation is one the MILP cannot avoid either', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 5, max: 60 }), fc.integer({ min: 3, max: 10 }), async (seed, vms, hosts) => {
        const blueprint = generateCluster({ vms, hosts, seed });
        for (const objective of OBJECTIVES) {
          const result = planPlacement(blueprint, { objective });
          const checked = checkPlacement(blueprint, result.placements);
          expect(checked, `generateCluster({ vms: ${vms}, hosts: ${hosts}, seed: ${seed} }), ${objective}`).toEqual(result.violations);
          if (checked.length === 0) continue;
          const exact = await planPlacementExact(blueprint, { objective: 'fewest-hosts', timeLimitS: 30 });
          const reproduce = `generateCluster({ vms: ${vms}, hosts: ${hosts}, seed: ${seed} }), ${objective}: ${checked.join('; ')}`;
          expect(exact.optimal && exact.violations.length === 0, reproduce).toBe(false);
        }
      }),
      { numRuns: 150, seed: 20_240_601 },
    );
  });
});
