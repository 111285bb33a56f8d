import { describe, expect, it } from 'vitest';
import { runDrill } from '../../src/drill/sim/run.ts';
import { faultsScenario } from '../../src/drill/sim/scenarios.ts';
import { planPlacement } from '../../src/capacity/placement.ts';
import { analyseFailures, failureCases, type FailureCase } from '../../src/analysis/failure-analysis.ts';
import type { Fault } from '../../src/substrate/twin/twin.ts';
import type { Blueprint } from '../../src/model/index.ts';
import { readFileSync } from 'node:fs';
import { loadBlueprint } from '../../src/model/index.ts';
import { ROOT, shipped } from '../support/blueprints.ts';

/** The regional hospital on smaller hosts: it still runs, but failures force shedding. */
function tightRegional(cores: number): Blueprint {
  const result = loadBlueprint(readFileSync(`${ROOT}blueprints/regional-hospital.yaml`, 'utf8').replace(/cores: 32/g, `cores: ${cores}`));
  if (!result.ok) throw new Error('variant is invalid');
  return result.blueprint;
}

function faultsOf(blueprint: Blueprint, failure: FailureCase): Fault[] {
  switch (failure.kind) {
    case 'host':
    case 'hostPair':
      return failure.ids.map((host) => ({ kind: 'host-crash', host }));
    case 'rack':
      return [{ kind: 'rack-failure', rack: failure.ids[0]! }];
    case 'room':
      return [{ kind: 'room-failure', room: failure.ids[0]! }];
    case 'powerFeed':
      return [{ kind: 'power-feed-failure', feed: failure.ids[0]! }];
  }
}

describe('failure analysis', () => {
  it('on the reference hospital, every single host, rack, room and power feed failure is survivable for continuous and critical services', () => {
    const blueprint = shipped('university-hospital');
    const placements = planPlacement(blueprint, { objective: 'balanced' }).placements;
    const outcomes = analyseFailures(blueprint, placements, failureCases(blueprint, { pairs: false }));
    expect(outcomes.length).toBe(blueprint.hosts.length + blueprint.racks.length + blueprint.rooms.length + blueprint.powerFeeds.length);
    for (const outcome of outcomes) expect(outcome.survivable, `${outcome.failed.kind} ${outcome.failed.ids.join('+')}: ${outcome.late.join('; ')}`).toBe(true);
  });

  // The tight variants force shedding and relocation; the controller follows the recovery it
  // computes with the analysis' own simulation, so even there the drill sheds what was predicted.
  const variants: [string, () => Blueprint, (failure: FailureCase) => boolean][] = [
    ['university-hospital', () => shipped('university-hospital'), () => true],
    ['regional-hospital', () => shipped('regional-hospital'), () => true],
    ['regional hospital on 17-core hosts', () => tightRegional(17), () => true],
    ['regional hospital on 22-core hosts', () => tightRegional(22), () => true],
  ];
  for (const [name, load, include] of variants) {
    it(`${name}: every analysed case replays on the twin with exactly the predicted shed services and survivability`, () => {
      const blueprint = load();
      const placements = planPlacement(blueprint, { objective: 'balanced' }).placements;
      const cases = failureCases(blueprint).filter(include);
      // Every single-domain case, and a deterministic sample of host pairs to bound the run time.
      const sample = cases.filter((failure, index) => failure.kind !== 'hostPair' || blueprint.hosts.length <= 6 || index % 7 === 0);
      const outcomes = analyseFailures(blueprint, placements, sample);
      for (const outcome of outcomes) {
        const label = `${outcome.failed.kind} ${outcome.failed.ids.join('+')}`;
        const { report } = runDrill({ blueprint, scenario: faultsScenario('plan-case', label, faultsOf(blueprint, outcome.failed)), seed: 1, horizonAfterFaultS: 3 * 3600 });
        const shedInDrill = report.services.filter((service) => service.shed === true || (service.rtoMeasuredS === null && !['continuous', 'critical'].includes(service.tier))).map((service) => service.name).sort();
        const lostInDrill = report.services.filter((service) => service.rtoMeasuredS === null && ['continuous', 'critical'].includes(service.tier)).map((service) => service.name).sort();
        expect(shedInDrill, label).toEqual(outcome.shed);
        expect(lostInDrill, label).toEqual(outcome.lost);
        const drillSurvivable = report.services
          .filter((service) => service.tier === 'continuous' || service.tier === 'critical')
          .every((service) => service.met);
        expect(drillSurvivable, label).toBe(outcome.survivable);
        expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
      }
    });
  }
});
