/**
 * The storm oracle and the controller's recovery against exhaustive enumeration, on small
 * generated hospitals (2-3 hosts of 8 cores, 3-7 VMs of the critical, standard and deferred tiers):
 *
 *   1. The oracle's HiGHS model finds the optimum: on random problems its kept count per tier equals
 *      that of a brute force over every assignment of VMs to hosts.
 *   2. The recovery the controller follows after a host loss (simulateRecovery: decide() with its
 *      shedding and reservations, to its fixpoint) keeps what the brute-force optimum keeps, within
 *      the oracle's stated tolerance (ORACLE_TOLERANCE), with no needless victim.
 *   3. The same check finds the reservation defect that 390b602 fixed, put back in a test-only
 *      variant of decide(): brute force is an independent reference, not a copy of the rule.
 *
 * Every run prints its seed; a failure prints fast-check's seed and path. Replay with
 * TOMARANAI_PROPERTY_SEED=<seed> npx vitest run test/drill/oracle.property.test.ts
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulateRecovery } from '../../src/control/recovery.ts';
import { bruteForceOptimum, settledProblem, shortfall, solveOptimum, type OracleProblem, type VmFacts } from '../../src/drill/sim/oracle.ts';
import { loseHost, tinyHospital, worldOf, type TinyService } from '../control/world.ts';
import { decideWithDoubleCountedReservations } from './defective-decide.ts';

const SEED = Number(process.env.TOMARANAI_PROPERTY_SEED ?? 20_260_413);
const HOST_CORES = 8;
const TIERS = ['critical', 'standard', 'deferred'] as const;
type TierName = (typeof TIERS)[number];
const VCPU: Record<TierName, readonly number[]> = { critical: [1, 2, 4, 6, 8], standard: [2, 4, 6, 8, 12], deferred: [2, 4, 8, 12, 16, 24] };
const OVERCOMMIT: Record<TierName, number> = { critical: 1, standard: 2, deferred: 4 };

interface Case {
  readonly hosts: number;
  readonly vms: readonly { readonly tier: TierName; readonly vcpu: number; readonly host: number }[];
  readonly lost: number;
}

const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    hosts: fc.constantFrom(2, 3, 3),
    vms: fc.array(
      fc.constantFrom(...TIERS).chain((tier) => fc.record({ tier: fc.constant(tier), vcpu: fc.constantFrom(...VCPU[tier]), host: fc.nat(2) })),
      { minLength: 3, maxLength: 7 },
    ),
    lost: fc.nat(2),
  })
  .map(({ hosts, vms, lost }) => ({ hosts, lost: lost % hosts, vms: vms.map((vm) => ({ ...vm, host: vm.host % hosts })) }))
  .filter((candidate) => Array.from({ length: candidate.hosts }, (_, host) => host).every((host) => candidate.vms.filter((vm) => vm.host === host).reduce((sum, vm) => sum + vm.vcpu / OVERCOMMIT[vm.tier], 0) <= HOST_CORES));

/** The controller's recovery for a case, judged by the brute-force optimum: null, or what fell short. */
function judgeRecovery(candidate: Case, decide?: Parameters<typeof simulateRecovery>[0]['decide']): string | null {
  const services: TinyService[] = candidate.vms.map((vm, index) => ({ name: `s${index + 1}`, tier: vm.tier, vcpu: vm.vcpu }));
  const blueprint = tinyHospital({ hosts: candidate.hosts, cores: HOST_CORES, services });
  const world = worldOf(blueprint, new Map(candidate.vms.map((vm, index) => [`s${index + 1}-1`, `h${vm.host + 1}`])), 1_000_000);
  loseHost(world.state, `h${candidate.lost + 1}`, 1_000_000);
  const recovery = simulateRecovery({ blueprint, model: world.model, order: world.order, plan: new Map(), state: world.state, ...(decide === undefined ? {} : { decide }) });
  const hosts = blueprint.hosts.filter((host) => host.name !== `h${candidate.lost + 1}`).map((host) => ({ name: host.name, cores: host.cores, memoryGiB: host.memoryGiB }));
  const vms: VmFacts[] = blueprint.vms.map((vm) => {
    const { tier } = world.model.info(vm.name);
    const cost = world.model.cost(vm.name);
    return { name: vm.name, priority: tier.priority, sheddable: tier.sheddable, cores: cost.cores, memoryGiB: cost.memoryGiB };
  });
  const copies = [...recovery.primary].map(([vm, host]) => ({ vm, host, role: 'primary' as const }));
  const { problem, kept } = settledProblem({ hosts, copies, healthy: new Set(recovery.primary.keys()), vms });
  return shortfall(problem, kept, bruteForceOptimum(problem));
}

const problemArbitrary: fc.Arbitrary<OracleProblem> = fc
  .record({
    hosts: fc.array(fc.record({ cores: fc.integer({ min: 0, max: 16 }), memoryGiB: fc.integer({ min: 0, max: 64 }) }), { minLength: 1, maxLength: 3 }),
    vms: fc.array(fc.record({ priority: fc.integer({ min: 0, max: 3 }), cores: fc.constantFrom(0.25, 0.5, 1, 2, 4, 6, 8), memoryGiB: fc.constantFrom(1, 4, 8, 16, 32), runningOn: fc.option(fc.nat(2)) }), { minLength: 1, maxLength: 7 }),
  })
  .map(({ hosts, vms }) => ({
    hosts: hosts.map((host, index) => ({ name: `h${index}`, ...host })),
    vms: vms.map((vm, index) => ({ ...vm, name: `v${index}`, runningOn: vm.runningOn === null ? null : `h${vm.runningOn % hosts.length}` })),
  }));

describe('the storm oracle against brute force', () => {
  it(`HiGHS keeps as many VMs per tier as exhaustive enumeration (seed ${SEED})`, () => {
    console.log(`oracle property seed ${SEED}`);
    fc.assert(
      fc.property(problemArbitrary, (problem) => {
        const exact = solveOptimum(problem);
        expect(exact.optimal).toBe(true);
        expect([...exact.keptByPriority]).toEqual([...bruteForceOptimum(problem).keptByPriority]);
      }),
      { numRuns: 400, seed: SEED },
    );
  });

  it(`after a host loss, the recovery the controller follows keeps what the optimum keeps, within the tolerance (seed ${SEED})`, () => {
    fc.assert(
      fc.property(caseArbitrary, (candidate) => {
        const verdict = judgeRecovery(candidate);
        expect(verdict, `hospital ${JSON.stringify(candidate)}`).toBeNull();
      }),
      { numRuns: 3000, seed: SEED },
    );
  });

  it(`finds the double-counted reservation when it is put back (seed ${SEED})`, () => {
    const outcome = fc.check(
      fc.property(caseArbitrary, (candidate) => judgeRecovery(candidate, decideWithDoubleCountedReservations) === null),
      { numRuns: 3000, seed: SEED },
    );
    expect(outcome.failed).toBe(true);
    const counterexample = outcome.counterexample![0];
    console.log(`the defect, found by brute force: ${JSON.stringify(counterexample)}: ${judgeRecovery(counterexample, decideWithDoubleCountedReservations)}`);
    expect(judgeRecovery(counterexample)).toBeNull();
  });
});
