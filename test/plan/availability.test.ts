import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { measureAvailability } from '../../src/cli/plan.ts';
import { createRandom } from '../../src/ports/random.ts';
import { DEFAULT_RELIABILITY, loadBlueprint, type Blueprint } from '../../src/model/index.ts';
import {
  estimateAvailability,
  failureSources,
  groupFailureRatePerHour,
  HOURS_PER_YEAR,
  type OutageMeasurer,
} from '../../src/analysis/availability.ts';
import { ROOT, shipped } from '../support/blueprints.ts';

function variant(name: string, edit: (text: string) => string): Blueprint {
  const result = loadBlueprint(edit(readFileSync(`${ROOT}blueprints/${name}.yaml`, 'utf8')));
  if (!result.ok) throw new Error(result.problems.map((problem) => problem.message).join('; '));
  return result.blueprint;
}

/** Every failure takes `service` down for `seconds` (null: until the repair). */
function constantMeasurer(service: string, seconds: number | null, only?: string): OutageMeasurer {
  return (cases) => new Map(only === undefined || cases.some((failure) => failure.kind === only) ? [[service, seconds]] : []);
}

describe('availability estimate', () => {
  it('a single unit fails at 1/MTBF; a redundant pair at the duplex rate plus its common-cause share', () => {
    expect(groupFailureRatePerHour({ mtbfHours: 1000, mttrHours: 10, units: 1, commonCauseFraction: 0.05 })).toBeCloseTo(1 / 1000, 12);
    const lambda = 1 / 100_000;
    const pair = groupFailureRatePerHour({ mtbfHours: 100_000, mttrHours: 24, units: 2, commonCauseFraction: 0.05 });
    expect(pair).toBeCloseTo(0.05 * lambda + 2 * (0.95 * lambda) ** 2 * 24, 15);
    // Redundancy helps by orders of magnitude, but the common cause bounds it.
    expect(pair).toBeLessThan(lambda / 10);
    expect(pair).toBeGreaterThanOrEqual(0.05 * lambda);
  });

  it('lists every host, rack, used power feed, room and datastore as a source, with the default rates when the blueprint gives none', () => {
    const blueprint = shipped('university-hospital');
    const sources = failureSources(blueprint);
    expect(sources.filter((source) => source.component === 'host')).toHaveLength(blueprint.hosts.length);
    expect(sources.filter((source) => source.component === 'rack switches')).toHaveLength(blueprint.racks.length);
    expect(sources.filter((source) => source.component === 'power feed')).toHaveLength(4);
    expect(sources.filter((source) => source.component === 'room')).toHaveLength(2);
    expect(sources.filter((source) => source.component === 'datastore')).toHaveLength(2);
    expect(blueprint.reliability.host).toEqual(DEFAULT_RELIABILITY.host);
    expect(blueprint.reliability.targets.get('continuous')).toBe(0.99999);
  });

  it('the blueprint may set its own failure rates and tier promises', () => {
    const blueprint = variant('regional-hospital', (text) => `${text}\nreliability:\n  host: {mtbfHours: 1000, mttrHours: 2}\n  targets: {critical: 0.999}\n`);
    expect(blueprint.reliability.host).toEqual({ mtbfHours: 1000, mttrHours: 2 });
    expect(blueprint.reliability.room).toEqual(DEFAULT_RELIABILITY.room);
    expect(blueprint.reliability.targets.get('critical')).toBe(0.999);
    expect(blueprint.reliability.targets.get('continuous')).toBe(0.99999);
  });

  it('adds up measured outages at the rate components fail: a 10-minute outage per failure gives rate × 10 minutes a year', () => {
    const blueprint = shipped('regional-hospital');
    const ratePerYear = failureSources(blueprint).reduce((sum, source) => sum + source.ratePerHour, 0) * HOURS_PER_YEAR;
    const report = estimateAvailability(blueprint, { measure: constantMeasurer('pacs', 600), random: createRandom(3, 'test'), years: 20_000 });
    const pacs = report.services.find((service) => service.service === 'pacs')!;
    expect(pacs.downtimeMinPerYear).toBeGreaterThan(ratePerYear * 10 * 0.95);
    expect(pacs.downtimeMinPerYear).toBeLessThan(ratePerYear * 10 * 1.05);
    expect(pacs.downtimeCi95MinPerYear[0]).toBeLessThan(pacs.downtimeMinPerYear);
    expect(pacs.downtimeCi95MinPerYear[1]).toBeGreaterThan(pacs.downtimeMinPerYear);
    const untouched = report.services.find((service) => service.service === 'ehr-db')!;
    expect(untouched.downtimeMinPerYear).toBe(0);
    expect(untouched.nines).toBeNull();
  });

  it('a service shed or lost in a failure is down until the repair ends (plus its boot)', () => {
    const blueprint = shipped('regional-hospital');
    const room = blueprint.reliability.room;
    const report = estimateAvailability(blueprint, { measure: constantMeasurer('dwh', null, 'room'), random: createRandom(5, 'test'), years: 50_000 });
    const dwh = report.services.find((service) => service.service === 'dwh')!;
    const expectedMin = (HOURS_PER_YEAR / room.mtbfHours) * room.mttrHours * 60;
    expect(dwh.downtimeMinPerYear).toBeGreaterThan(expectedMin * 0.85);
    expect(dwh.downtimeMinPerYear).toBeLessThan(expectedMin * 1.2);
  });

  it('the same seed gives the same estimate, and measures each failure set once', () => {
    const blueprint = shipped('regional-hospital');
    let calls = 0;
    const measure: OutageMeasurer = (cases) => {
      calls++;
      return new Map([['pacs', 60 * cases.length]]);
    };
    const first = estimateAvailability(blueprint, { measure, random: createRandom(9, 'a'), years: 2000 });
    const measured = calls;
    const second = estimateAvailability(blueprint, { measure, random: createRandom(9, 'a'), years: 2000 });
    expect(second).toEqual(first);
    expect(first.casesMeasured).toBe(measured);
    expect(measured).toBeLessThan(first.failures);
  });

  it('on the twin, the reference hospital keeps every continuous and critical service within its tier promise', () => {
    const blueprint = shipped('university-hospital');
    const report = measureAvailability(blueprint, { years: 300, seed: 1 });
    for (const service of report.services.filter((entry) => entry.tier === 'continuous' || entry.tier === 'critical')) {
      expect(service.meetsTarget, `${service.service}: ${service.downtimeMinPerYear} min/yr`).toBe(true);
    }
    const continuous = report.tiers.find((tier) => tier.tier === 'continuous')!;
    const critical = report.tiers.find((tier) => tier.tier === 'critical')!;
    // A failover takes seconds, a restart minutes: the continuous tier loses far less time.
    expect(continuous.worstDowntimeMinPerYear).toBeLessThan(critical.worstDowntimeMinPerYear);
  }, 60_000);

  it('on the twin, a one-room hospital with a single datastore cannot promise five nines: the room and the array take everything down', () => {
    const blueprint = shipped('regional-hospital');
    const report = measureAvailability(blueprint, { years: 2000, seed: 1 });
    const continuous = report.tiers.find((tier) => tier.tier === 'continuous')!;
    expect(continuous.servicesMeetingTarget).toBe(0);
    const floorMin = (HOURS_PER_YEAR / blueprint.reliability.datastore.mtbfHours) * blueprint.reliability.datastore.mttrHours * 60;
    for (const service of report.services) expect(service.downtimeMinPerYear, service.service).toBeGreaterThan(floorMin * 0.7);
  }, 60_000);
});
