/**
 * The storm's optimum oracle (src/drill/sim/oracle.ts) runs in every storm, and catches the
 * reservation defect of 390b602 when it is put back through a test-only variant of decide()
 * (test/drill/defective-decide.ts, given to the controller through its `decide` option, which no
 * flag, blueprint or API reaches).
 */
import { describe, expect, it } from 'vitest';
import { runStorm } from '../../src/drill/sim/storm.ts';
import { shipped } from '../support/blueprints.ts';
import { decideWithDoubleCountedReservations } from './defective-decide.ts';

const SEEDS = Array.from({ length: 40 }, (_, index) => index + 1);

describe('the storm oracle', () => {
  it('judges every storm at least once (after the repairs), and settled points during it', () => {
    const blueprint = shipped('regional-hospital');
    let judged = 0;
    let solved = 0;
    for (const seed of SEEDS.slice(0, 20)) {
      const result = runStorm({ blueprint, seed });
      expect(result.oracle.judged, `seed ${seed}`).toBeGreaterThanOrEqual(1);
      expect(result.violations, `seed ${seed}`).toEqual([]);
      judged += result.oracle.judged;
      solved += result.oracle.solved;
    }
    expect(judged).toBeGreaterThan(20);
    expect(solved).toBeGreaterThan(0);
  });

  it('reports the double-counted reservation as over-shedding when it is put back, and nothing on the same seeds without it', () => {
    const blueprint = shipped('regional-hospital');
    const caught: number[] = [];
    for (const seed of SEEDS) {
      const fixed = runStorm({ blueprint, seed });
      expect(fixed.violations.filter((violation) => violation.invariant === 'over-shedding'), `seed ${seed}`).toEqual([]);
      const defective = runStorm({ blueprint, seed, decide: decideWithDoubleCountedReservations });
      const overShedding = defective.violations.filter((violation) => violation.invariant === 'over-shedding');
      // The defect breaks no other invariant: only the oracle can see it.
      expect(defective.violations.filter((violation) => violation.invariant !== 'over-shedding'), `seed ${seed}`).toEqual([]);
      if (overShedding.length > 0) caught.push(seed);
    }
    console.log(`the oracle caught the defect in ${caught.length} of ${SEEDS.length} regional-hospital storms (seeds ${caught.join(', ')})`);
    expect(caught.length).toBeGreaterThanOrEqual(3);
    // Seeds 7, 14, 19, 29 and 39 with the storm's present fault mix (1, 11, 24, 26, 33 and 37 before
    // the nine new fault kinds joined it): a storm is a pure function of its seed.
    expect(caught).toContain(14);
  });

  it('names what the optimum keeps that the defective controller shed', () => {
    const result = runStorm({ blueprint: shipped('regional-hospital'), seed: 14, decide: decideWithDoubleCountedReservations });
    expect(result.ok).toBe(false);
    expect(result.violations).toEqual([
      expect.objectContaining({ invariant: 'over-shedding', detail: expect.stringMatching(/keeps 0 VM\(s\) of priority 0, an optimum keeps 1 .*ehr-app-2 would fit/) }),
    ]);
  });
});
