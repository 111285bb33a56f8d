import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runDrill } from '../../src/drill/sim/run.ts';
import { compileSegmentation } from '../../src/model/segmentation.ts';
import { reachableFrom } from '../../src/plan/attack-paths.ts';
import { shipped } from '../support/blueprints.ts';

const blueprint = shipped('university-hospital');
const FILE = 'blueprints/university-hospital.yaml';
const nonContinuous = blueprint.services.filter((service) => blueprint.tiers.get(service.tier)?.mechanism !== 'failover').map((service) => service.name);
const replay = (scenario: string, seed: number, target?: string) =>
  `npx tomaranai drill ${FILE} --scenario ${scenario} --seed ${seed}${target === undefined ? '' : ` --target ${target}`}`;

describe('ransomware on the reference hospital (property over systems and seeds)', () => {
  it('detects within 2 min of Te, quarantines with every other system up, restores a pre-Te snapshot within the snapshot interval, and estimates Ti within 15 min in ≥ 80 % of runs', () => {
    const errors: { seed: number; system: string; errorS: number | null }[] = [];
    fc.assert(
      fc.property(fc.constantFrom(...nonContinuous), fc.integer({ min: 1, max: 1_000_000 }), (system, seed) => {
        const run = runDrill({ blueprint, scenario: 'ransomware', seed, target: system });
        const context = `seed ${seed}, system ${system}; replay: ${replay('ransomware', seed, system)}`;
        const incidents = run.report.incidents;
        expect(incidents.length, context).toBe(1);
        const security = incidents[0]!.security!;
        expect(security.detectionDelayS, context).not.toBeNull();
        expect(security.detectionDelayS!, context).toBeLessThanOrEqual(120);
        expect(security.quarantinedAtS, context).not.toBeNull();
        // Only the attacked system stopped answering: every other one stayed up.
        expect(security.systemsStayedUp, context).toBe(security.systemsTotal - 1);
        expect(security.restorePoint?.beforeEncryption, context).toBe(true);
        expect(security.rpoS!, context).toBeLessThanOrEqual(security.snapshotIntervalS);
        expect(security.snapshotDeletionsRefused, context).toBe(security.snapshotDeletionsAttempted);
        expect(run.report.invariants, context).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
        expect(run.report.quarantineViolations, context).toBe(0);
        expect(run.unconverged, context).toEqual([]);
        errors.push({ seed, system, errorS: security.intrusionEstimateErrorS });
      }),
      { numRuns: 30, seed: 20_240_601, endOnFailure: true },
    );
    const hits = errors.filter((entry) => entry.errorS !== null && Math.abs(entry.errorS) <= 900).length;
    const misses = errors.filter((entry) => !(entry.errorS !== null && Math.abs(entry.errorS) <= 900));
    expect(hits / errors.length, `intrusion-time estimate within 15 min in ${hits} of ${errors.length}; misses: ${misses.map((miss) => `${replay('ransomware', miss.seed, miss.system)} (error ${miss.errorS} s)`).join('; ')}`).toBeGreaterThanOrEqual(0.8);
  }, 300_000);

  it('journals the attacker’s snapshot deletions as refused by immutability, and the drill replays byte for byte', () => {
    const first = runDrill({ blueprint, scenario: 'ransomware', seed: 11, target: 'pharmacy' });
    const second = runDrill({ blueprint, scenario: 'ransomware', seed: 11, target: 'pharmacy' });
    expect(second.journal.entries().map((entry) => entry.hash)).toEqual(first.journal.entries().map((entry) => entry.hash));
    const refused = first.journal.entries().filter((entry) => entry.type === 'security.snapshot-deletion-refused');
    expect(refused.length).toBeGreaterThan(0);
    expect(first.report.invariants.immutableViolations).toBe(0);
  });
});

describe('ransomware-lateral', () => {
  it('spreads only inside what the attack-path analysis says the entry reaches, and every encrypted VM is restored', () => {
    const policy = compileSegmentation(blueprint);
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const run = runDrill({ blueprint, scenario: 'ransomware-lateral', seed });
      const entries = run.journal.entries();
      const entry = String(entries.find((candidate) => candidate.type === 'attack.intrusion')!.data.entry);
      const reachable = reachableFrom(policy, entry);
      const footholds = entries.filter((candidate) => candidate.type === 'attack.intrusion' || candidate.type === 'attack.foothold').map((candidate) => candidate.subject);
      const context = `seed ${seed}; replay: ${replay('ransomware-lateral', seed)}`;
      for (const vm of footholds) expect(reachable.has(vm), `${vm} outside reach of ${entry}; ${context}`).toBe(true);
      for (const incident of run.report.incidents) expect(incident.security?.restorePoint?.beforeEncryption, `${incident.vm}; ${context}`).toBe(true);
      expect(run.report.invariants, context).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
        expect(run.report.quarantineViolations, context).toBe(0);
      expect(run.unconverged, context).toEqual([]);
    }
  }, 180_000);
});

describe('vendor-vpn-compromise', () => {
  it("reaches only that vendor's VMs from its VPN, and the denied attempts are counted per pair", () => {
    const run = runDrill({ blueprint, scenario: 'vendor-vpn-compromise', seed: 4 });
    const entries = run.journal.entries();
    const scan = entries.find((entry) => entry.type === 'attack.scan')!;
    const network = blueprint.networks.find((candidate) => candidate.name === scan.subject)!;
    const vendorVms = new Set(blueprint.services.filter((service) => service.vendor === network.vendor).flatMap((service) => service.vms.map((vm) => vm.name)));
    const reached = scan.data.reached as string[];
    expect(reached.length).toBeGreaterThan(0);
    for (const vm of reached) expect(vendorVms.has(vm), vm).toBe(true);
    expect(Number(scan.data.denied)).toBeGreaterThan(0);
    const denied = entries.find((entry) => entry.type === 'security.denied-flows')!;
    expect(Number(denied.data.attempts)).toBeGreaterThan(0);
    expect(run.report.quarantineViolations).toBe(0);
  });
});
