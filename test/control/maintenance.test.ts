import { describe, expect, it } from 'vitest';
import { planEvacuation } from '../../src/control/maintenance.ts';
import { tinyHospital, worldOf } from './world.ts';

/**
 * Three 16-core hosts, one per rack. h1 holds EHR (continuous, 4 cores; its secondary on h3),
 * PACS (critical, 8 cores) and DWH (deferred, 4 vCPU = 1 core).
 */
function world() {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 16,
    services: [
      { name: 'ehr', tier: 'continuous', vcpu: 4 },
      { name: 'pacs', tier: 'critical', vcpu: 8 },
      { name: 'dwh', tier: 'deferred', vcpu: 4 },
    ],
  });
  return worldOf(
    blueprint,
    new Map([
      ['ehr-1', 'h1'],
      ['pacs-1', 'h1'],
      ['dwh-1', 'h1'],
    ]),
    0,
    new Map([['ehr-1', 'h3']]),
  );
}

describe('planning an evacuation', () => {
  it('moves every running copy off the held host, most important first, each to the emptiest host that keeps the rules', () => {
    const { model, state } = world();
    const evacuation = planEvacuation({ model, state, host: 'h1', held: new Set(['h1']) });
    expect(evacuation.stuck).toEqual([]);
    expect(evacuation.migrations.map((migration) => [migration.vm, migration.fromHost, migration.toHost])).toEqual([
      // Not h3: it holds EHR's secondary.
      ['ehr-1', 'h1', 'h2'],
      // h2 and h3 have 12 cores free each: the first in blueprint order.
      ['pacs-1', 'h1', 'h2'],
      ['dwh-1', 'h1', 'h3'],
    ]);
    expect(evacuation.migrations[0]).toMatchObject({ type: 'migrateVm', instanceId: 'ehr-1#p', reason: 'evacuating h1 for maintenance' });
  });

  it('leaves what no other host has room for, and moves nothing onto another held host', () => {
    const { model, state } = world();
    const evacuation = planEvacuation({ model, state, host: 'h1', held: new Set(['h1', 'h2']) });
    // Only h3 is left, and it holds EHR's secondary: EHR cannot go there; PACS and DWH can.
    expect(evacuation.migrations.map((migration) => [migration.vm, migration.toHost])).toEqual([
      ['pacs-1', 'h3'],
      ['dwh-1', 'h3'],
    ]);
    expect(evacuation.stuck).toEqual(['ehr-1']);
  });
});
