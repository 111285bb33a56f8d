/**
 * The 10,000-VM estate of the scale benchmark (bench/estate.ts): generated in code, the same text
 * for the same options, and a valid blueprint by the normal validation that the planner can place.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { planPlacement } from '../../src/capacity/placement.ts';
import { generateEstate, generateEstateYaml } from '../../src/drill/sim/estate.ts';
import { loadBlueprint } from '../../src/model/index.ts';

describe('the 10,000-VM estate', () => {
  it('is the same YAML for the same options, and another for another seed', () => {
    const digest = (text: string) => createHash('sha256').update(text).digest('hex');
    expect(digest(generateEstateYaml())).toBe(digest(generateEstateYaml()));
    expect(digest(generateEstateYaml({ seed: 2, hosts: 50, vms: 1000 }))).not.toBe(digest(generateEstateYaml({ seed: 1, hosts: 50, vms: 1000 })));
  });

  it('is a valid blueprint without warnings: 500 hosts in 5 rooms, 10,000 VMs of every tier, and the planner places them all', () => {
    const result = loadBlueprint(generateEstateYaml());
    expect(result.ok && result.warnings).toEqual([]);
    const blueprint = generateEstate();
    expect(blueprint.hosts).toHaveLength(500);
    expect(blueprint.vms).toHaveLength(10_000);
    expect(blueprint.rooms).toHaveLength(5);
    expect(new Set(blueprint.services.map((service) => service.tier))).toEqual(new Set(['continuous', 'critical', 'standard', 'deferred']));
    const plan = planPlacement(blueprint);
    expect(plan.unplaced.size).toBe(0);
    expect(plan.placements.size).toBe(10_000);
  });
});
