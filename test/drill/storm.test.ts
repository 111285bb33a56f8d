import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runStorm } from '../../src/drill/sim/storm.ts';
import { shipped } from '../support/blueprints.ts';

/**
 * Random fault storms (crashes, hangs, isolations, storage and power losses, racks, rooms,
 * overlapping and repaired) with the five invariants checked after every simulated instant,
 * then repair of everything and a demand that the hospital converge. A failure prints the storm
 * seed and the command that replays it.
 */
function stormProperty(name: 'regional-hospital' | 'university-hospital', runs: number) {
  const blueprint = shipped(name);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (seed) => {
      const result = runStorm({ blueprint, seed });
      if (!result.ok) {
        throw new Error(
          `storm seed ${seed} broke an invariant or did not converge: ${JSON.stringify(result.violations.slice(0, 3))} unconverged=${result.unconverged.slice(0, 5).join(',')}\n` +
            `replay: npx tomaranai storm blueprints/${name}.yaml --seed ${seed}`,
        );
      }
      return true;
    }),
    { numRuns: runs },
  );
}

describe('fault storms', () => {
  it('regional hospital: no split brain, no lost VM, and convergence after repair, for many seeds', () => {
    stormProperty('regional-hospital', 150);
  });

  it('reference hospital: no split brain, no lost VM, and convergence after repair, for many seeds', () => {
    stormProperty('university-hospital', 60);
  });

  // Seeds CI's 10,000 once found over-shedding with (each a different stale-room defect): a boot cut
  // by a power loss held its restart until the action's deadline (4259596594); a VM sent off the
  // recovery target by its crash loop left the target's sheds standing beside free room (4259596594
  // after that fix); a secondary booted into a live migration's destination overcommitted it, and
  // the VM the target kept there waited for room that never came (1854894327, 349946357).
  it.each([4259596594, 1854894327, 349946357])('reference hospital, seed %i: nothing shed that an optimum keeps', (seed) => {
    const result = runStorm({ blueprint: shipped('university-hospital'), seed });
    expect(result.violations).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('a storm is a pure function of its seed', () => {
    const blueprint = shipped('regional-hospital');
    const first = runStorm({ blueprint, seed: 42, hashJournal: true });
    const second = runStorm({ blueprint, seed: 42, hashJournal: true });
    const other = runStorm({ blueprint, seed: 43, hashJournal: true });
    expect(second.journal.entries().at(-1)!.hash).toBe(first.journal.entries().at(-1)!.hash);
    expect(other.journal.entries().at(-1)!.hash).not.toBe(first.journal.entries().at(-1)!.hash);
  });
});

describe('immutable snapshots under storms', () => {
  it('every deletion attempt within retention is refused, and the auditor sees no snapshot vanish', () => {
    const blueprint = shipped('regional-hospital');
    let refused = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const result = runStorm({ blueprint, seed });
      expect(result.violations.filter((violation) => violation.invariant === 'immutable-snapshot')).toEqual([]);
      refused += result.refusedDeletions;
      for (const entry of result.journal.entries().filter((candidate) => candidate.type === 'snapshot.delete')) {
        expect(entry.data.ok, `seed ${seed}`).toBe(false);
        expect(String(entry.data.refused)).toMatch(/immutable until/);
      }
    }
    expect(refused).toBeGreaterThan(10);
  });
});
