/**
 * A pass visits only the VMs that are not settled (src/control/reconcile/visits.ts). It must give
 * exactly the decision a walk of every VM gives: here every pass of whole storms (every fault kind,
 * cold boots and adopted hospitals, recovery targets followed and recomputed) is decided twice —
 * as the controller does it, and on the same state with its instances in a plain Map, which has no
 * change log and so has every VM visited — and the two decisions must be equal.
 */
import { describe, expect, it } from 'vitest';
import { decide, type DecideInput, type Decision } from '../../src/control/decide.ts';
import { InstanceTable } from '../../src/control/instance-table.ts';
import { generateEstate } from '../../src/drill/sim/estate.ts';
import { runStorm } from '../../src/drill/sim/storm.ts';
import type { InstanceObservation } from '../../src/ports/index.ts';
import { shipped } from '../support/blueprints.ts';

interface Compared {
  passes: number;
  /** Passes in which the controller skipped at least one VM (so the comparison tested something). */
  skipping: number;
  firstDifference: string | null;
}

/** decide(), checked against the walk of every VM on each call. */
function checkedDecide(compared: Compared): (input: DecideInput) => Decision {
  return (input) => {
    const skipping = input.state.instances instanceof InstanceTable;
    const fast = decide(input);
    const everyVm = decide({ ...input, state: { ...input.state, instances: new Map<string, InstanceObservation>(input.state.instances) } });
    compared.passes++;
    if (skipping && settledCount(input) > 0) compared.skipping++;
    if (compared.firstDifference === null && JSON.stringify(fast) !== JSON.stringify(everyVm)) {
      compared.firstDifference = `at ${input.nowMs} ms: visiting only unsettled VMs decided ${JSON.stringify(fast)}, walking every VM ${JSON.stringify(everyVm)}`;
    }
    return fast;
  };
}

/** VMs with exactly one copy that is a running primary: a lower bound of what a pass may skip. */
function settledCount(input: DecideInput): number {
  const perVm = new Map<string, number>();
  for (const instance of input.state.instances.values()) perVm.set(instance.vm, (perVm.get(instance.vm) ?? 0) + 1);
  return [...perVm.values()].filter((count) => count === 1).length;
}

describe('visiting only the VMs that are not settled', () => {
  const cases: readonly [string, () => Parameters<typeof runStorm>[0]['blueprint'], readonly number[]][] = [
    ['regional-hospital', () => shipped('regional-hospital'), Array.from({ length: 40 }, (_, index) => index + 1)],
    ['university-hospital', () => shipped('university-hospital'), Array.from({ length: 20 }, (_, index) => index + 101)],
    ['a generated estate of 40 hosts and 600 VMs', () => generateEstate({ seed: 3, hosts: 40, vms: 600 }), [7, 8, 9, 10, 11, 12]],
  ];
  for (const [name, blueprint, seeds] of cases) {
    it(`decides as a walk of every VM does, in every pass of ${seeds.length} storms on the ${name}`, () => {
      for (const seed of seeds) {
        const compared: Compared = { passes: 0, skipping: 0, firstDifference: null };
        const result = runStorm({ blueprint: blueprint(), seed, decide: checkedDecide(compared) });
        expect(compared.firstDifference, `${name}, storm seed ${seed}`).toBeNull();
        expect(result.violations, `seed ${seed}`).toEqual([]);
        expect(compared.skipping, `seed ${seed}: passes that skipped settled VMs`).toBeGreaterThan(0);
      }
    });
  }
});
