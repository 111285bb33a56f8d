import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Blueprint, Flow } from '../../src/model/index.ts';
import { reachableFrom } from '../../src/plan/attack-paths.ts';
import { allows, ANY_PORT, compileSegmentation, flatPolicy, policyDiff, quarantine, release, ruleKey, rulesOfVm, type SegmentationPolicy } from '../../src/model/segmentation.ts';
import { shipped } from '../support/blueprints.ts';
import { TomaranaiError } from '../../src/errors/index.ts';

const reference = shipped('university-hospital');
const regional = shipped('regional-hospital');
const policy = compileSegmentation(reference);

function vmsOf(blueprint: Blueprint, name: string): string[] {
  const service = blueprint.services.find((entry) => entry.name === name);
  return service === undefined ? [name] : service.vms.map((vm) => vm.name);
}

function involves(rule: { from: string; to: string }, vm: string): boolean {
  return rule.from === vm || rule.to === vm;
}

describe('compiling the allowed flows into a per-VM policy', () => {
  it('denies by default: a departmental system cannot open a connection to the EHR database', () => {
    expect(policy.defaultAction).toBe('deny');
    for (const port of [1521, 22, 443, 445, 3389]) {
      expect(allows(policy, 'bacteriology-1', 'ehr-db-1', port)).toBe(false);
      expect(allows(policy, 'nursing-1', 'ehr-db-1', port)).toBe(false);
    }
    expect(allows(policy, 'ehr-app-1', 'ehr-db-1', 1521)).toBe(true);
    expect(allows(policy, 'ehr-app-1', 'ehr-db-1', 1522)).toBe(false);
    expect(allows(policy, 'ehr-db-1', 'ehr-app-1', 1521)).toBe(false);
    expect(allows(policy, 'no-such-vm', 'ehr-db-1', 1521)).toBe(false);
  });

  it('allows every blueprint flow from every VM of the source to every VM of the target', () => {
    for (const flow of reference.flows) {
      for (const from of vmsOf(reference, flow.from)) {
        for (const to of vmsOf(reference, flow.to)) {
          expect(allows(policy, from, to, flow.port), `${from} → ${to}:${flow.port}`).toBe(true);
        }
      }
    }
  });

  it('allows nothing a flow does not name', () => {
    const expected = new Set<string>();
    for (const flow of reference.flows) {
      for (const from of vmsOf(reference, flow.from)) for (const to of vmsOf(reference, flow.to)) expected.add(ruleKey({ from, to, port: flow.port }));
    }
    expect(new Set(policy.rules.map(ruleKey))).toEqual(expected);
  });

  it('keeps network endpoints as networks and names VMs as the blueprint does', () => {
    const vmNames = new Set(reference.vms.map((vm) => vm.name));
    const networkNames = new Set(reference.networks.map((network) => network.name));
    expect(policy.vms.map((vm) => vm.vm)).toEqual(reference.vms.map((vm) => vm.name));
    for (const rule of policy.rules) {
      expect(vmNames.has(rule.from) || networkNames.has(rule.from)).toBe(true);
      expect(vmNames.has(rule.to) || networkNames.has(rule.to)).toBe(true);
    }
    expect(allows(policy, 'client', 'ehr-app-3', 443)).toBe(true);
    expect(allows(policy, 'ris-2', 'modality', 104)).toBe(true);
  });

  it('lists each VM its ingress and egress rules, consistent with the rules', () => {
    const ehrDb = policy.vms.find((vm) => vm.vm === 'ehr-db-1')!;
    expect(ehrDb.ingress.map((rule) => rule.from).sort()).toEqual(
      ['dwh-1', 'dwh-2', 'ehr-app-1', 'ehr-app-2', 'ehr-app-3', 'ehr-app-4', 'medical-accounting-1', 'medical-accounting-2', 'vpn-vendor-a'].sort(),
    );
    const sumIngress = policy.vms.reduce((sum, vm) => sum + vm.ingress.length, 0);
    const vmTargets = policy.rules.filter((rule) => policy.vms.some((vm) => vm.vm === rule.to)).length;
    expect(sumIngress).toBe(vmTargets);
    expect(rulesOfVm(policy, 'ehr-db-1').egress.every((rule) => rule.from === 'ehr-db-1')).toBe(true);
  });

  it('reports its size against a flat network', () => {
    const { totals } = policy;
    expect(totals.vms).toBe(74);
    expect(totals.vmPairsFlat).toBe(74 * 73);
    expect(totals.rules).toBe(policy.rules.length);
    expect(totals.vmToVmRules + totals.networkRules).toBe(totals.rules);
    expect(totals.vmPairsAllowed).toBeLessThan(totals.vmPairsFlat / 5);
    expect(totals.reductionPercent).toBeCloseTo(100 * (1 - totals.vmPairsAllowed / totals.vmPairsFlat), 1);
  });

  it('gives the management network no rule: the hosts\' management plane is not VM traffic', () => {
    expect(policy.rules.some((rule) => rule.from === 'management' || rule.to === 'management')).toBe(false);
    expect(allows(policy, 'ehr-db-1', 'management', 22)).toBe(false);
  });

  it('is a plain serialisable object that still answers after a JSON round trip', () => {
    const copy = JSON.parse(JSON.stringify(policy)) as SegmentationPolicy;
    expect(copy).toEqual(policy);
    expect(allows(copy, 'ehr-app-2', 'ehr-db-1', 1521)).toBe(true);
    expect(allows(copy, 'nursing-1', 'ehr-db-1', 1521)).toBe(false);
    expect(Object.isFrozen(policy.rules)).toBe(true);
  });

  it('compiles the same blueprint to the same policy', () => {
    expect(JSON.stringify(compileSegmentation(reference))).toBe(JSON.stringify(policy));
  });
});

describe('quarantine of one VM', () => {
  it('leaves the VM only the forensic network, both ways, on any port', () => {
    const isolated = quarantine(policy, 'ehr-app-2');
    const { ingress, egress } = rulesOfVm(isolated, 'ehr-app-2');
    expect(egress.map((rule) => [rule.to, rule.port])).toEqual([['forensic', ANY_PORT]]);
    expect(ingress.map((rule) => [rule.from, rule.port])).toEqual([['forensic', ANY_PORT]]);
    expect(allows(isolated, 'ehr-app-2', 'ehr-db-1', 1521)).toBe(false);
    expect(allows(isolated, 'client', 'ehr-app-2', 443)).toBe(false);
    expect(allows(isolated, 'ehr-app-2', 'forensic', 443)).toBe(true);
    expect(allows(isolated, 'forensic', 'ehr-app-2', 22)).toBe(true);
    expect(reachableFrom(isolated, 'ehr-app-2')).toEqual(new Set(['ehr-app-2', 'forensic']));
    expect(isolated.quarantined).toEqual(['ehr-app-2']);
    expect(isolated.vms.find((vm) => vm.vm === 'ehr-app-2')!.quarantined).toBe(true);
  });

  it('keeps every other rule of the hospital (invariant 4), for every VM', () => {
    for (const vm of reference.vms) {
      const isolated = quarantine(policy, vm.name);
      const diff = policyDiff(policy, isolated);
      expect(diff.removed.every((rule) => involves(rule, vm.name)), vm.name).toBe(true);
      expect(diff.added.every((rule) => involves(rule, vm.name) && rule.origin === 'quarantine'), vm.name).toBe(true);
      expect(diff.removed.length).toBe(policy.rules.filter((rule) => involves(rule, vm.name)).length);
      const untouched = (candidate: SegmentationPolicy) => candidate.rules.filter((rule) => !involves(rule, vm.name)).map(ruleKey);
      expect(untouched(isolated)).toEqual(untouched(policy));
    }
  });

  it('breaks no flow between continuous services while another VM of each end remains', () => {
    const continuous = new Set(reference.services.filter((service) => service.tier === 'continuous').map((service) => service.name));
    for (const vm of reference.vms) {
      const isolated = quarantine(policy, vm.name);
      for (const flow of reference.flows) {
        if (!continuous.has(flow.from) || !continuous.has(flow.to)) continue;
        const froms = vmsOf(reference, flow.from).filter((name) => name !== vm.name);
        const tos = vmsOf(reference, flow.to).filter((name) => name !== vm.name);
        if (froms.length === 0 || tos.length === 0) continue;
        expect(froms.some((from) => tos.some((to) => allows(isolated, from, to, flow.port))), `${vm.name}: ${flow.from} → ${flow.to}`).toBe(true);
      }
    }
    const withoutApp1 = quarantine(policy, 'ehr-app-1');
    expect(allows(withoutApp1, 'ehr-app-2', 'ehr-db-1', 1521)).toBe(true);
    expect(allows(withoutApp1, 'interface-engine-1', 'ehr-app-4', 2575)).toBe(true);
  });

  it('is idempotent, composes over several VMs, and is undone by release', () => {
    const once = quarantine(policy, 'lis-1');
    expect(quarantine(once, 'lis-1')).toBe(once);
    const twice = quarantine(once, 'pacs-2');
    expect(twice.quarantined).toEqual(['lis-1', 'pacs-2']);
    expect(reachableFrom(twice, 'pacs-2')).toEqual(new Set(['pacs-2', 'forensic']));
    const released = release(twice, policy, 'lis-1');
    expect(released.quarantined).toEqual(['pacs-2']);
    expect(reachableFrom(released, 'pacs-2')).toEqual(new Set(['pacs-2', 'forensic']));
    const restored = release(released, policy, 'pacs-2');
    expect(new Set(restored.rules.map(ruleKey))).toEqual(new Set(policy.rules.map(ruleKey)));
    expect(restored.totals).toEqual(policy.totals);
  });

  it('refuses a VM the policy does not know, with a stable code', () => {
    expect(() => quarantine(policy, 'ehr-db-9')).toThrow(TomaranaiError);
    try {
      quarantine(policy, 'ehr-db-9');
    } catch (error) {
      expect((error as TomaranaiError).code).toBe('TMR_SEGMENTATION_UNKNOWN_VM');
    }
  });
});

/** Random small hospitals: the regional blueprint with a random subset of its flows and a few random new ones. */
const endpointNames = [...regional.services.map((service) => service.name), ...regional.networks.map((network) => network.name)];
const randomFlow = fc.record({
  from: fc.constantFrom(...endpointNames),
  to: fc.constantFrom(...endpointNames),
  port: fc.constantFrom(22, 443, 1521, 2575, 3389),
});
const randomBlueprint = fc
  .record({
    keep: fc.subarray(regional.flows.map((_, index) => index)),
    extra: fc.array(randomFlow, { maxLength: 12 }),
  })
  .map(({ keep, extra }): Blueprint => {
    const flows: Flow[] = [...keep.map((index) => regional.flows[index]!), ...extra.map((flow) => ({ ...flow, protocol: null }))];
    return { ...regional, flows };
  });

describe('properties over random small hospitals', () => {
  it('reach under the policy is a subset of reach on a flat network', () => {
    fc.assert(
      fc.property(randomBlueprint, fc.constantFrom(...endpointNames), (blueprint, start) => {
        const segmented = compileSegmentation(blueprint);
        const flat = flatPolicy(blueprint);
        const starts = vmsOf(blueprint, start);
        const reach = reachableFrom(segmented, starts);
        const flatReach = reachableFrom(flat, starts);
        for (const name of reach) expect(flatReach.has(name)).toBe(true);
        expect(segmented.totals.vmPairsAllowed).toBeLessThanOrEqual(flat.totals.vmPairsAllowed);
      }),
      { numRuns: 60 },
    );
  });

  it('quarantine never changes a rule that does not involve the quarantined VM, and leaves it only forensics', () => {
    fc.assert(
      fc.property(randomBlueprint, fc.constantFrom(...regional.vms.map((vm) => vm.name)), (blueprint, vm) => {
        const before = compileSegmentation(blueprint);
        const after = quarantine(before, vm);
        const diff = policyDiff(before, after);
        expect(diff.removed.every((rule) => involves(rule, vm))).toBe(true);
        expect(diff.added.every((rule) => involves(rule, vm))).toBe(true);
        const others = (candidate: SegmentationPolicy) => candidate.rules.filter((rule) => !involves(rule, vm)).map(ruleKey);
        expect(others(after)).toEqual(others(before));
        // A random flow may start at the forensic network itself, so the check is on the VM's own rules.
        for (const rule of after.rules) if (rule.from === vm) expect(rule.to).toBe('forensic');
        for (const rule of after.rules) if (rule.to === vm) expect(rule.from).toBe('forensic');
      }),
      { numRuns: 60 },
    );
  });
});
