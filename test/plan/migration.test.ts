import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadBlueprint, tierOf } from '../../src/model/index.ts';
import { planMigration } from '../../src/plan/migration.ts';

const loaded = loadBlueprint(readFileSync(new URL('../../blueprints/university-hospital.yaml', import.meta.url), 'utf8'));
if (!loaded.ok) throw new Error('the reference blueprint does not load');
const blueprint = loaded.blueprint;

describe('migrate-plan: leaving a hypervisor wave by wave', () => {
  const plan = planMigration(blueprint, 'qemu');
  const waveOf = new Map(plan.waves.flatMap((wave) => wave.moves.map((move) => [move.service, wave.wave] as const)));

  it('moves every service exactly once', () => {
    expect([...waveOf.keys()].sort()).toEqual(blueprint.services.map((service) => service.name).sort());
    expect(plan.waves.reduce((sum, wave) => sum + wave.moves.length, 0)).toBe(blueprint.services.length);
  });

  it('never moves a service in the same wave as one it depends on, and moves dependants of the same tier first', () => {
    for (const service of blueprint.services) {
      for (const dependency of service.dependsOn) {
        expect(waveOf.get(service.name), `${service.name} and ${dependency}`).not.toBe(waveOf.get(dependency));
        if (tierOf(blueprint, service).name === tierOf(blueprint, blueprint.services.find((other) => other.name === dependency)!).name) {
          expect(waveOf.get(service.name)!, `${service.name} before ${dependency}`).toBeLessThan(waveOf.get(dependency)!);
        }
      }
    }
  });

  it('moves the lowest tiers first and the continuous ones last, each wave one tier', () => {
    const order = plan.waves.map((wave) => wave.tier).filter((tier, index, all) => all.indexOf(tier) === index);
    expect(order).toEqual(['deferred', 'standard', 'critical', 'continuous']);
    for (const wave of plan.waves) expect(new Set(wave.moves.map((move) => move.tier)).size).toBe(1);
  });

  it('estimates downtime by mechanism: a failover for continuous, a final sync and boot for restart tiers, a cold copy for deferred', () => {
    const move = (name: string) => plan.waves.flatMap((wave) => wave.moves).find((entry) => entry.service === name)!;
    expect(move('ehr-db')).toMatchObject({ method: 'secondary-then-failover', downtimeEstimateS: 5, withinRto: true });
    // pacs: the largest disk's 2 % at 10 Gbit/s, 30 s conversion, its boot time.
    const pacs = blueprint.services.find((service) => service.name === 'pacs')!;
    const largest = Math.max(...pacs.vms.map((vm) => vm.diskGiB));
    const boot = Math.max(...pacs.vms.map((vm) => vm.bootTimeS));
    expect(move('pacs')).toMatchObject({ method: 'pre-copy-then-cutover', downtimeEstimateS: Math.round((largest * 0.02 * 8) / 10 + 30 + boot) });
    expect(move('dwh').method).toBe('cold-copy');
    expect(planMigration(blueprint, 'qemu', { bandwidthGbps: 1, changedShare: 0.02, conversionS: 30 }).totalDowntimeEstimateS).toBeGreaterThan(plan.totalDowntimeEstimateS);
  });
});
