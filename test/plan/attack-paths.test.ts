import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerSecurityCommands } from '../../src/cli/security.ts';
import { analyzeAttackPaths, attackGraph, entryPoints, reachableFrom } from '../../src/plan/attack-paths.ts';
import { allows, compileSegmentation, flatPolicy, quarantine } from '../../src/model/segmentation.ts';
import { shipped } from '../support/blueprints.ts';

const reference = shipped('university-hospital');
const policy = compileSegmentation(reference);
const analysis = analyzeAttackPaths(reference, { policy });

const vmNamesOfVendor = (vendor: string) =>
  reference.services.filter((service) => service.vendor === vendor).flatMap((service) => service.vms.map((vm) => vm.name));

describe('entry points', () => {
  it('are every vendor VPN, the internet-exposed systems, the terminal and the modality networks', () => {
    const ids = entryPoints(reference).map((entry) => entry.id);
    expect(ids.filter((id) => id.startsWith('vendor:'))).toHaveLength(19);
    expect(ids.filter((id) => id.startsWith('dmz:'))).toEqual(['dmz:regional-network', 'dmz:patient-portal']);
    expect(ids).toContain('client:client');
    expect(ids).toContain('modality:modality');
    expect(entryPoints(reference).find((entry) => entry.id === 'dmz:patient-portal')!.sources).toEqual(['patient-portal-1', 'patient-portal-2']);
  });
});

describe('reach through the allowed flows', () => {
  it("lets vendor-a's VPN reach only vendor-a's VMs in one hop", () => {
    const graph = attackGraph(policy);
    const vpn = graph.ids.get('vpn-vendor-a')!;
    const direct = graph.outgoing[vpn]!.map((edgeId) => graph.names[graph.edges[edgeId]!.to]!);
    expect(new Set(direct)).toEqual(new Set(vmNamesOfVendor('vendor-a')));
  });

  it("shows vendor-a's VPN reaching further in several hops, but less than a flat network", () => {
    const reach = reachableFrom(policy, 'vpn-vendor-a');
    const flatReach = reachableFrom(flatPolicy(reference), 'vpn-vendor-a');
    for (const vm of vmNamesOfVendor('vendor-a')) expect(reach.has(vm)).toBe(true);
    expect(reach.has('interface-engine-1')).toBe(true);
    const vms = [...reach].filter((name) => reference.vms.some((vm) => vm.name === name));
    expect(vms.length).toBeLessThan(reference.vms.length);
    expect(reach.size).toBeLessThan(flatReach.size);
    for (const name of reach) expect(flatReach.has(name)).toBe(true);
    const entry = analysis.segmented.entries.find((candidate) => candidate.entry === 'vendor:vpn-vendor-a')!;
    expect(entry.vmsReached).toBe(vms.length);
  });

  it('keeps a groupware vendor away from every continuous service', () => {
    const entry = analysis.segmented.entries.find((candidate) => candidate.entry === 'vendor:vpn-vendor-q')!;
    expect(entry.continuousReached).toBe(0);
    expect(entry.continuousPaths.every((path) => path.hops === null)).toBe(true);
  });

  it('does not let the terminal network reach the EHR database in one hop', () => {
    for (const port of [1521, 22, 443, 3389]) expect(allows(policy, 'client', 'ehr-db-1', port)).toBe(false);
    const client = analysis.segmented.entries.find((entry) => entry.entry === 'client:client')!;
    const toDb = client.continuousPaths.find((path) => path.service === 'ehr-db')!;
    expect(toDb.hops!.length).toBeGreaterThanOrEqual(2);
    expect(toDb.hops!.at(-1)!.to).toBe('ehr-db-1');
    expect(toDb.hops![0]!.from).toBe('client');
  });

  it('gives shortest paths whose every hop is an allowed flow on the ports shown', () => {
    for (const entry of analysis.segmented.entries) {
      for (const path of entry.continuousPaths) {
        if (path.hops === null) continue;
        path.hops.forEach((hop, index) => {
          if (index > 0) expect(hop.from).toBe(path.hops![index - 1]!.to);
          for (const port of hop.ports) expect(allows(policy, hop.from, hop.to, port)).toBe(true);
        });
      }
    }
  });

  it('lets a flat network reach everything from everywhere in one hop', () => {
    const vmCount = reference.vms.length;
    for (const entry of analysis.flat.entries) {
      expect(entry.vmsReached).toBe(vmCount);
      expect(entry.continuousPaths.every((path) => path.hops !== null && path.hops.length <= 1)).toBe(true);
    }
    expect(analysis.flat.blastRadius.every((radius) => radius.vmsReached === vmCount - 1)).toBe(true);
    expect(analysis.flat.continuousPairsReachable).toBe(analysis.flat.continuousPairsTotal);
  });

  it('gives every compromised VM a blast radius no larger than on a flat network', () => {
    expect(analysis.segmented.blastRadius).toHaveLength(reference.vms.length);
    for (const radius of analysis.segmented.blastRadius) {
      expect(radius.vmsReached).toBe(radius.vms.length);
      expect(radius.vms).not.toContain(radius.vm);
      expect(radius.continuousVms).toBeLessThanOrEqual(radius.vmsReached);
    }
    expect(analysis.segmented.blastRadiusMax).toBeLessThan(analysis.flat.blastRadiusMax);
    const sorted = analysis.segmented.blastRadius.map((radius) => radius.vmsReached);
    expect(sorted).toEqual([...sorted].sort((a, b) => b - a));
  });

  it('shrinks a quarantined VM to itself and the forensic network', () => {
    const isolated = quarantine(policy, 'interface-engine-1');
    expect(reachableFrom(isolated, 'interface-engine-1')).toEqual(new Set(['interface-engine-1', 'forensic']));
    expect(reachableFrom(isolated, 'vpn-vendor-b').has('interface-engine-1')).toBe(false);
  });
});

describe('flows whose removal cuts most paths', () => {
  it('ranks flows by entry → continuous pairs cut, ties in blueprint order, deterministically', () => {
    const again = analyzeAttackPaths(reference);
    expect(again.ranking).toEqual(analysis.ranking);
    expect(again.cover).toEqual(analysis.cover);
    expect(analysis.ranking.length).toBeGreaterThan(0);
    for (let index = 1; index < analysis.ranking.length; index++) {
      const before = analysis.ranking[index - 1]!;
      const after = analysis.ranking[index]!;
      expect(before.pairsCut > after.pairsCut || (before.pairsCut === after.pairsCut && before.flow < after.flow)).toBe(true);
    }
  });

  it('counts exactly the pairs that become unreachable when the top flow is removed', () => {
    const top = analysis.ranking[0]!;
    const flow = reference.flows[top.flow]!;
    const without = { ...reference, flows: reference.flows.filter((_, index) => index !== top.flow) };
    const after = analyzeAttackPaths(without, { coverSize: 0 });
    expect(analysis.segmented.continuousPairsReachable - after.segmented.continuousPairsReachable).toBe(top.pairsCut);
    expect(top.from).toBe(flow.from);
    expect(top.pairs).toHaveLength(top.pairsCut);
  });

  it('builds a greedy cover whose flows together cut the pairs they claim', () => {
    for (const cover of [analysis.cover, analysis.coverWithoutDependencies]) {
      const removed = new Set(cover.flows.map((cut) => cut.flow));
      const without = { ...reference, flows: reference.flows.filter((_, index) => !removed.has(index)) };
      const after = analyzeAttackPaths(without, { coverSize: 0 });
      expect(cover.pairsBefore - after.segmented.continuousPairsReachable).toBe(cover.pairsCut);
      expect(cover.pairsCut).toBe(cover.flows.reduce((sum, cut) => sum + cut.pairsCut, 0));
    }
    expect(analysis.coverWithoutDependencies.flows.every((cut) => !cut.carriesDependency)).toBe(true);
  });
});

describe('the security commands', () => {
  function run(args: string[]): { out: string; err: string; code: number } {
    let out = '';
    let err = '';
    let code = -1;
    const program = new Command('tomaranai').exitOverride();
    registerSecurityCommands(
      program,
      { out: (text) => (out += text), err: (text) => (err += text) },
      (file) => (file === 'reference.yaml' ? reference : null),
      (value) => (code = value),
    );
    program.parse(args, { from: 'user' });
    return { out, err, code };
  }

  it('prints exactly one JSON document with --json', () => {
    const segmentation = run(['segmentation', 'reference.yaml', '--json']);
    expect(JSON.parse(segmentation.out).totals.rules).toBe(policy.totals.rules);
    expect(segmentation.code).toBe(0);
    const attack = run(['attack-paths', 'reference.yaml', '--json']);
    expect(JSON.parse(attack.out).ranking[0].flow).toBe(analysis.ranking[0]!.flow);
    const oneVm = run(['segmentation', 'reference.yaml', '--vm', 'ehr-db-1', '--json']);
    expect(JSON.parse(oneVm.out).ingress.every((rule: { to: string }) => rule.to === 'ehr-db-1')).toBe(true);
  });

  it('prints a readable summary and fails cleanly on a bad file or VM', () => {
    expect(run(['segmentation', 'reference.yaml']).out).toContain('default deny');
    expect(run(['attack-paths', 'reference.yaml']).out).toContain('Shortest path to each continuous service');
    expect(run(['segmentation', 'missing.yaml']).code).toBe(1);
    const unknown = run(['segmentation', 'reference.yaml', '--vm', 'ehr-db-7']);
    expect(unknown.code).toBe(1);
    expect(unknown.out).toBe('');
    expect(unknown.err).toContain('TMR_SEGMENTATION_UNKNOWN_VM');
  });
});
