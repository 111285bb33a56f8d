import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadBlueprint, type Blueprint } from '../../src/model/index.ts';
import { checkAdmission } from '../../src/analysis/admission.ts';
import { planPlacement } from '../../src/capacity/placement.ts';
import { layoutHosts, sizeCluster, withHosts } from '../../src/analysis/sizing.ts';
import { ROOT, shipped } from '../support/blueprints.ts';
import { TomaranaiError } from '../../src/errors/index.ts';

function variant(name: string, edit: (text: string) => string): Blueprint {
  const result = loadBlueprint(edit(readFileSync(`${ROOT}blueprints/${name}.yaml`, 'utf8')));
  if (!result.ok) throw new Error(result.problems.map((problem) => problem.message).join('; '));
  return result.blueprint;
}

describe('sizing', () => {
  it('the reference hospital needs 6 unit-2s hosts per room to survive any host, rack, room, power feed and host pair', () => {
    const blueprint = shipped('university-hospital');
    const result = sizeCluster(blueprint, { hostModel: 'unit-2s' });
    expect(result.survive).toEqual(['host', 'rack', 'room', 'powerFeed', 'hostPair']);
    expect(result.found).toBe(true);
    expect(result.hostsPerRoom).toBe(6);
    expect(result.sized).toMatchObject({ hosts: 12, rackUnits: 24, watts: 9000, hardwareYen: 54_000_000 });
    // One host fewer per room was tried and refused, with the reason.
    const previous = result.attempts.find((attempt) => attempt.hostsPerRoom === 5)!;
    expect(previous.admissionHolds).toBe(false);
    expect(previous.reasons.length).toBeGreaterThan(0);
  });

  it('the sized estate really passes: placed without violations and every required failure survivable', () => {
    const blueprint = shipped('university-hospital');
    const model = blueprint.hostModels.find((entry) => entry.name === 'unit-2s')!;
    const sized = withHosts(blueprint, layoutHosts(blueprint, model, 6));
    const placement = planPlacement(sized, { objective: 'balanced' });
    expect(placement.violations).toEqual([]);
    expect(placement.unplaced.size).toBe(0);
    expect(checkAdmission(sized, placement.placements).holds).toBe(true);
  });

  it('asking less needs no more hosts: surviving one host is cheaper than surviving rooms and pairs', () => {
    const blueprint = shipped('university-hospital');
    const hostOnly = sizeCluster(blueprint, { hostModel: 'unit-2s', survive: ['host'] });
    const everything = sizeCluster(blueprint, { hostModel: 'unit-2s' });
    expect(hostOnly.hostsPerRoom!).toBeLessThanOrEqual(everything.hostsPerRoom!);
  });

  it('lays hosts out like the blueprint: round-robin over each room\'s racks, its generator share, both feeds in every rack', () => {
    const blueprint = shipped('university-hospital');
    const model = blueprint.hostModels[0]!;
    const hosts = layoutHosts(blueprint, model, 6);
    expect(hosts).toHaveLength(12);
    const feeds = new Map(blueprint.powerFeeds.map((feed) => [feed.name, feed]));
    for (const room of blueprint.rooms) {
      const inRoom = hosts.filter((host) => host.room === room);
      expect(inRoom).toHaveLength(6);
      expect(inRoom.filter((host) => feeds.get(host.powerFeed)!.generator)).toHaveLength(3);
      for (const rack of new Set(inRoom.map((host) => host.rack))) {
        const inRack = inRoom.filter((host) => host.rack === rack);
        expect(inRack).toHaveLength(3);
        expect(new Set(inRack.map((host) => feeds.get(host.powerFeed)!.generator)).size).toBe(2);
      }
    }
    expect(new Set(hosts.map((host) => host.name)).size).toBe(12);
  });

  it('compares the sized cluster with the physical estate before virtualisation: space, power, energy and life', () => {
    const result = sizeCluster(shipped('university-hospital'), { hostModel: 'unit-2s' });
    expect(result.legacy).toMatchObject({ servers: 114, rackUnits: 228, watts: 45_600, lifeYears: 5 });
    const savings = result.savingsVersusLegacy!;
    expect(savings.rackUnitsSaved).toBe(228 - 24);
    expect(savings.wattsSaved).toBe(45_600 - 9000);
    // 36.6 kW less × 8,760 h × PUE 1.7 × 31 yen × 5 years.
    expect(savings.energyYenSavedOverHorizon).toBeCloseTo(36.6 * 8760 * 1.7 * 31 * 5, -2);
    expect(savings.lifeYearsGained).toBe(2);
    expect(savings.totalYenSavedOverHorizon!).toBeGreaterThan(0);
  });

  it('a blueprint without a legacy estate is sized without the comparison', () => {
    const blueprint = variant('regional-hospital', (text) => text.slice(0, text.indexOf('# CAPACITY PLANNING')));
    const result = sizeCluster(blueprint, { hostModel: 'unit-r32' });
    expect(result.found).toBe(true);
    expect(result.survive).toEqual(['host']);
    expect(result.legacy).toBeNull();
    expect(result.savingsVersusLegacy).toBeNull();
  });

  it('refuses a host model the blueprint does not have, naming the ones it has', () => {
    try {
      sizeCluster(shipped('regional-hospital'), { hostModel: 'unit-2s' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TomaranaiError);
      expect((error as TomaranaiError).code).toBe('TMR_SIZE_UNKNOWN_HOST_MODEL');
      expect((error as TomaranaiError).hint).toContain('unit-r32');
    }
  });

  it('says at once when no number of hosts can meet the requirement (a room loss in a one-room hospital)', () => {
    const result = sizeCluster(shipped('regional-hospital'), { hostModel: 'unit-r32', survive: ['host', 'room'] });
    expect(result.found).toBe(false);
    expect(result.impossible).toContain('second room');
    expect(result.attempts).toEqual([]);
  });
});
