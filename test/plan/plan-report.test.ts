import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { registerPlanCommands } from '../../src/cli/plan.ts';
import { loadBlueprint, type Blueprint } from '../../src/model/index.ts';
import { generateCluster } from '../../src/plan/generate.ts';
import { planPlacement } from '../../src/capacity/placement.ts';
import { buildPlanReport } from '../../src/analysis/plan-report.ts';
import { ROOT, shipped } from '../support/blueprints.ts';

async function cli(argv: string[], blueprint: Blueprint | null): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  let code = -1;
  const program = new Command('tomaranai').exitOverride().configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (err += text) });
  registerPlanCommands(program, { out: (text) => (out += text), err: (text) => (err += text) }, () => blueprint, (value) => (code = value));
  await program.parseAsync(argv, { from: 'user' });
  return { out, err, code };
}

function variant(name: string, edit: (text: string) => string): Blueprint {
  const result = loadBlueprint(edit(readFileSync(`${ROOT}blueprints/${name}.yaml`, 'utf8')));
  if (!result.ok) throw new Error(result.problems.map((problem) => problem.message).join('; '));
  return result.blueprint;
}

describe('the plan report', () => {
  it('follows DESIGN.md: placements per VM, every failure case with survivable and shed, cost, and availability per service', () => {
    const blueprint = shipped('university-hospital');
    const report = buildPlanReport({ blueprint, placement: planPlacement(blueprint, { objective: 'balanced' }), availability: null });
    expect(report.placements).toHaveLength(blueprint.vms.length);
    for (const entry of report.placements) {
      expect(blueprint.hosts.some((host) => host.name === entry.host)).toBe(true);
      expect(entry.secondary === null).toBe(entry.tier !== 'continuous');
    }
    const kinds = new Set(report.failureAnalysis.map((entry) => entry.failed.kind));
    expect([...kinds].sort()).toEqual(['host', 'hostPair', 'powerFeed', 'rack', 'room']);
    expect(report.failureAnalysis).toHaveLength(14 + 4 + 2 + 4 + 91);
    for (const entry of report.failureAnalysis) {
      expect(typeof entry.survivable).toBe('boolean');
      expect(Array.isArray(entry.shed)).toBe(true);
    }
    expect(report.admission).toMatchObject({ holds: true, casesChecked: 115, failing: [] });
    expect(report.cost).toMatchObject({ hosts: 14, hostsYen: 63_000_000, rackUnits: 28, watts: 10_500, cores: 560 });
    expect(report.cost.coresUsed).toBeCloseTo(289, 6);
    expect(report.availability).toEqual([]);
  });

  it('admission control fails, and says which case, when a required failure is not survivable', () => {
    const blueprint = variant('regional-hospital', (text) => text.replace('survive: [host, rack, powerFeed]', 'survive: [host, room]'));
    const report = buildPlanReport({ blueprint, placement: planPlacement(blueprint), availability: null, pairs: false });
    expect(report.admission.holds).toBe(false);
    expect(report.admission.failing.join('\n')).toContain('room room-1');
    expect(report.failureAnalysis.find((entry) => entry.failed.kind === 'room')!.required).toBe(true);
  });
});

describe('the plan, availability and size commands', () => {
  it('plan --json prints exactly one JSON document with placements, failureAnalysis, cost and availability', async () => {
    const { out, code } = await cli(['plan', 'x.yaml', '--json', '--years', '100'], shipped('regional-hospital'));
    const document = JSON.parse(out);
    expect(Object.keys(document)).toEqual(expect.arrayContaining(['placements', 'failureAnalysis', 'cost', 'availability']));
    expect(document.availability).toHaveLength(shipped('regional-hospital').services.length);
    expect(document.availability[0]).toMatchObject({ service: expect.any(String), tier: expect.any(String), estimate: { nines: expect.any(Number) } });
    expect(document.placements[0]).toMatchObject({ vm: expect.any(String), host: expect.any(String) });
    expect(code).toBe(0);
  }, 60_000);

  it('plan without --json is a readable summary, and exits 1 when admission control fails', async () => {
    const blueprint = variant('regional-hospital', (text) => text.replace('survive: [host, rack, powerFeed]', 'survive: [host, room]'));
    const { out, code } = await cli(['plan', 'x.yaml', '--years', '20'], blueprint);
    expect(out).toContain('Admission control (survive host, room): FAILS');
    expect(out).toContain('Failure analysis');
    expect(code).toBe(1);
  }, 60_000);

  it('plan --exact refuses a large cluster with a coded error and prints no document', async () => {
    const { out, err, code } = await cli(['plan', 'x.yaml', '--exact', '--json'], generateCluster({ vms: 400, hosts: 40, seed: 1 }));
    expect(out).toBe('');
    expect(err).toMatch(/^TMR_PLAN_EXACT_TOO_LARGE: /);
    expect(code).toBe(1);
  });

  it('availability --json prints one document with every service and tier', async () => {
    const { out, code } = await cli(['availability', 'x.yaml', '--json', '--years', '200', '--seed', '4'], shipped('regional-hospital'));
    const document = JSON.parse(out);
    expect(document.seed).toBe(4);
    expect(document.years).toBe(200);
    expect(document.tiers.map((tier: { tier: string }) => tier.tier)).toEqual(['continuous', 'critical', 'standard', 'deferred']);
    expect(code).toBe(0);
  }, 60_000);

  it('size --json finds the hosts and size with an unknown model fails with its code', async () => {
    const found = await cli(['size', 'x.yaml', '--host-model', 'unit-r32', '--json'], shipped('regional-hospital'));
    expect(JSON.parse(found.out)).toMatchObject({ found: true, hostModel: { name: 'unit-r32' } });
    expect(found.code).toBe(0);
    const unknown = await cli(['size', 'x.yaml', '--host-model', 'unit-9'], shipped('regional-hospital'));
    expect(unknown.err).toMatch(/^TMR_SIZE_UNKNOWN_HOST_MODEL: /);
    expect(unknown.code).toBe(1);
  });
});
