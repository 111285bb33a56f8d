import { describe, expect, it } from 'vitest';
import { runDrill } from '../../src/drill/sim/run.ts';
import { SCENARIOS } from '../../src/drill/sim/scenarios.ts';
import { shipped } from '../support/blueprints.ts';

const SEEDS = [1, 2, 3];

describe('drills on the reference hospital', () => {
  const blueprint = shipped('university-hospital');
  for (const scenario of SCENARIOS) {
    for (const seed of SEEDS) {
      it(`${scenario.name} (seed ${seed}): continuous ≤ 5 s, critical ≤ 300 s, lower tiers met or shed with a reason, invariants hold`, () => {
        const { report, unconverged } = runDrill({ blueprint, scenario: scenario.name, seed });
        expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
        expect(unconverged).toEqual([]);
        for (const service of report.services) {
          const context = `${service.name} (${service.tier}) rto=${service.rtoMeasuredS} rpo=${service.rpoMeasuredS}`;
          if (service.tier === 'continuous') {
            expect(service.rtoMeasuredS, context).not.toBeNull();
            // A continuous VM that lost both copies at once is restarted like a critical one, and says so.
            expect(service.rtoMeasuredS!, context).toBeLessThanOrEqual(service.effectiveTier === 'critical' ? 300 : 5);
            expect(service.rpoMeasuredS, context).toBe(0);
          } else if (service.tier === 'critical') {
            expect(service.rtoMeasuredS, context).not.toBeNull();
            expect(service.rtoMeasuredS!, context).toBeLessThanOrEqual(300);
            expect(service.rpoMeasuredS, context).toBe(0);
          } else if (!service.met) {
            expect(service.shed, context).toBe(true);
            expect(service.reason, context).toMatch(/shed|capacity/);
          }
          if (service.rpoMeasuredS !== null) expect(service.rpoMeasuredS, context).toBeLessThanOrEqual(service.rpoTargetS);
        }
        expect(report.summary.met + report.summary.missed).toBe(blueprint.services.length);
      });
    }
  }

  it('host-isolation restarts nothing: the isolated host keeps running its VMs, so no copy is started twice', () => {
    const { report, journal } = runDrill({ blueprint, scenario: 'host-isolation', seed: 4 });
    const faultAtMs = report.faultAtS * 1000;
    const starts = journal.entries().filter((entry) => entry.type === 'startVm' && entry.data.role === 'primary' && entry.atMs >= faultAtMs);
    expect(starts).toEqual([]);
    expect(report.services.every((service) => service.rtoMeasuredS === 0)).toBe(true);
    expect(journal.entries().some((entry) => entry.type === 'host.status' && entry.data.to === 'isolated')).toBe(true);
  });

  it('every restart after a host failure happens after that host was fenced', () => {
    const { journal } = runDrill({ blueprint, scenario: 'host-failure', seed: 5 });
    const entries = journal.entries();
    const fault = entries.find((entry) => entry.type === 'fault.injected')!;
    const fenced = entries.find((entry) => entry.type === 'fence.completed' && entry.subject === fault.subject && entry.data.ok === true)!;
    expect(fenced).toBeDefined();
    const recoveries = entries.filter(
      (entry) => entry.atMs >= fault.atMs && ((entry.type === 'startVm' && entry.data.reason !== 'initial placement' && entry.data.role === 'primary') || entry.type === 'promoteSecondary'),
    );
    expect(recoveries.length).toBeGreaterThan(0);
    for (const recovery of recoveries) expect(recovery.seq).toBeGreaterThan(fenced.seq);
  });

  it('double-host-failure takes the two busiest hosts of different rooms, and a continuous VM that loses both copies is reported as restarted like a critical one', () => {
    let coldRestarts = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const { report } = runDrill({ blueprint, scenario: 'double-host-failure', seed });
      const [first, second] = report.incidents.map((incident) => blueprint.hosts.find((host) => host.name === incident.target)!);
      expect(first!.room).not.toBe(second!.room);
      for (const service of report.services.filter((candidate) => candidate.effectiveTier === 'critical')) {
        coldRestarts++;
        expect(service.note).toMatch(/both copies/);
        expect(service.rtoMeasuredS!).toBeGreaterThan(5);
        expect(service.rtoMeasuredS!).toBeLessThanOrEqual(300);
      }
    }
    // Not asserted > 0: whether both copies sit on the chosen pair depends on the placement.
    expect(coldRestarts).toBeGreaterThanOrEqual(0);
  });

  it('room-failure: RPO follows each tier\'s replication (sync ⇒ 0, async ⇒ at most its interval)', () => {
    const { report } = runDrill({ blueprint, scenario: 'room-failure', seed: 11 });
    const byTier = (tier: string) => report.services.filter((service) => service.tier === tier && service.affected);
    for (const service of [...byTier('continuous'), ...byTier('critical')]) expect(service.rpoMeasuredS).toBe(0);
    const asyncLosses = [...byTier('standard'), ...byTier('deferred')].map((service) => service.rpoMeasuredS ?? 0);
    expect(Math.max(...asyncLosses)).toBeGreaterThan(0);
    for (const service of byTier('standard')) expect(service.rpoMeasuredS!).toBeLessThanOrEqual(300);
  });
});

describe('drills on the regional hospital (one room, two racks)', () => {
  const blueprint = shipped('regional-hospital');
  for (const scenario of SCENARIOS.filter((candidate) => candidate.name !== 'room-failure')) {
    it(`${scenario.name}: every continuous and critical service meets its target`, () => {
      const { report, unconverged } = runDrill({ blueprint, scenario: scenario.name, seed: 1 });
      expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
      expect(unconverged).toEqual([]);
      for (const service of report.services) {
        if (service.tier === 'continuous' || service.tier === 'critical') expect(service.met, service.name).toBe(true);
        else if (!service.met) expect(service.shed).toBe(true);
      }
    });
  }

  it('room-failure in a one-room hospital is an outage until the repair, reported as missed, with no split brain or lost VM', () => {
    const { report, unconverged } = runDrill({ blueprint, scenario: 'room-failure', seed: 1 });
    expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
    expect(unconverged).toEqual([]);
    const continuous = report.services.filter((service) => service.tier === 'continuous');
    expect(continuous.every((service) => !service.met && service.rtoMeasuredS! >= 4 * 3600)).toBe(true);
  });
});
