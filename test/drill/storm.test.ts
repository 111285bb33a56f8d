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

  // Seeds the storms once found over-shedding with, each a room the controller believed would free
  // and never did (docs/drills.md lists them): a boot cut by a power loss held its restart until the
  // action's deadline; a VM sent off the recovery target by its crash loop left the target's sheds
  // standing; a secondary booted into a live migration's destination overcommitted it; a target
  // planned the same room twice once an evacuation's migrations landed; a target followed a migration
  // onto a host degraded in the same instant.
  it.each([
    ['university-hospital', 4259596594],
    ['university-hospital', 1854894327],
    ['university-hospital', 349946357],
    ['regional-hospital', 3414518020],
    ['university-hospital', 1059638946],
  ] as const)('%s, seed %i: nothing shed that an optimum keeps', (name, seed) => {
    const result = runStorm({ blueprint: shipped(name), seed });
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
