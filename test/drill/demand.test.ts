import { describe, expect, it } from 'vitest';
import { runDemandScenario } from '../../src/drill/sim/demand.ts';
import { cpuDemand, DAY_MS, demandFactor, HOUR_MS, shareCpu } from '../../src/model/demand.ts';
import { shipped } from '../support/blueprints.ts';

const outpatient = { profile: 'outpatient', peakFactor: 3, surgeFactor: 1 };

describe('clinical demand', () => {
  it('follows the outpatient day: quiet at night, peaks near 10:00 and 14:00 on weekdays, a Saturday morning, quiet on Sunday', () => {
    const monday = (hour: number) => demandFactor(outpatient, hour * HOUR_MS);
    expect(monday(3)).toBeLessThan(1.1);
    expect(monday(10)).toBeCloseTo(3, 5);
    expect(monday(14)).toBeGreaterThan(monday(12.5));
    expect(monday(12.5)).toBeLessThan(monday(10));
    expect(demandFactor(outpatient, 5 * DAY_MS + 10 * HOUR_MS)).toBeGreaterThan(1);
    expect(demandFactor(outpatient, 6 * DAY_MS + 10 * HOUR_MS)).toBe(1);
  });

  it('runs the claims batch at night, harder in the first ten days of the month, and surges only when asked', () => {
    const batch = { profile: 'batch', peakFactor: 4, surgeFactor: 1 };
    expect(demandFactor(batch, 2 * HOUR_MS)).toBe(4);
    expect(demandFactor(batch, 12 * HOUR_MS)).toBe(1);
    expect(demandFactor(batch, 20 * DAY_MS + 2 * HOUR_MS)).toBeLessThan(4);
    const emergency = { profile: 'emergency', peakFactor: 2, surgeFactor: 3 };
    expect(demandFactor(emergency, 10 * HOUR_MS, true)).toBeCloseTo(3 * demandFactor(emergency, 10 * HOUR_MS, false), 9);
    expect(cpuDemand(4, { profile: 'flat', peakFactor: 100, surgeFactor: 1 }, 0)).toBe(4);
  });

  it('shares CPU by shares, never gives a VM more than it asks, and makes the bigger share wait less', () => {
    const grants = shareCpu(10, [
      { demandCores: 8, shares: 4000 },
      { demandCores: 8, shares: 1000 },
      { demandCores: 1, shares: 1000 },
    ]);
    expect(grants.reduce((sum, grant) => sum + grant.allocatedCores, 0)).toBeCloseTo(10, 9);
    expect(grants[2]!.allocatedCores).toBeCloseTo(1, 9);
    expect(grants[0]!.allocatedCores).toBeGreaterThan(grants[1]!.allocatedCores);
    expect(grants[0]!.readyFraction).toBeLessThan(grants[1]!.readyFraction);
    const idle = shareCpu(10, [{ demandCores: 1, shares: 1000 }]);
    expect(idle[0]!.readyFraction).toBeLessThan(0.01);
  });
});

describe('demand scenarios on the reference hospital', () => {
  const blueprint = shipped('university-hospital');
  for (const scenario of ['outpatient-peak', 'mass-casualty'] as const) {
    for (const rebalance of [false, true]) {
      it(`${scenario}, rebalancer ${rebalance ? 'on' : 'off'}: every continuous and critical VM stays under 2 % CPU ready`, () => {
        const run = runDemandScenario({ blueprint, scenario, seed: 1, rebalance });
        expect(run.samples).toBeGreaterThan(300);
        const top = run.vms.filter((vm) => vm.tier === 'continuous' || vm.tier === 'critical');
        expect(top.length).toBeGreaterThanOrEqual(blueprint.vms.filter((vm) => ['continuous', 'critical'].includes(blueprint.services.find((service) => service.name === vm.service)!.tier)).length);
        for (const vm of top) expect(vm.maxReadyPercent, `${vm.vm} (${vm.role})`).toBeLessThan(2);
        expect(run.invariantViolations).toBe(0);
      });
    }
  }

  it('on a consolidated hospital the rebalancer migrates live and cools the busiest host, without breaking an invariant', () => {
    const off = runDemandScenario({ blueprint, scenario: 'outpatient-peak', seed: 1, rebalance: false, placement: 'fewest-hosts' });
    const on = runDemandScenario({ blueprint, scenario: 'outpatient-peak', seed: 1, rebalance: true, placement: 'fewest-hosts' });
    const busiest = (run: typeof off) => Math.max(...run.hosts.map((host) => host.maxUtilisationPercent));
    expect(on.migrations).toBeGreaterThan(0);
    expect(busiest(on)).toBeLessThan(busiest(off));
    const minutesAbove = (run: typeof off) => run.vms.reduce((sum, vm) => sum + vm.minutesAbove2Percent, 0);
    expect(minutesAbove(on)).toBeLessThan(minutesAbove(off));
    expect(on.invariantViolations).toBe(0);
  });
});
