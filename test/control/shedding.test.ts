/**
 * Shedding stops lower tiers first, and no more of them than the room needs: once a VM of a
 * higher tier had to go, the smaller lower-tier VMs taken before it stay when it alone makes room.
 */
import { describe, expect, it } from 'vitest';
import { decide, type Action } from '../../src/control/decide.ts';
import { simulateRecovery } from '../../src/control/recovery.ts';
import { loseHost, tinyHospital, worldOf } from './world.ts';

const shedStops = (actions: readonly Action[]) => actions.flatMap((action) => (action.type === 'stopVm' && action.shed ? [action.vm] : []));

/**
 * Three 8-core hosts. h1: a critical 6-core VM (lost with h1). h2: a deferred VM (2 vCPU = 0.5 core)
 * and a standard one (12 vCPU = 6 cores), 1.5 cores free. h3: a critical 4-core VM, 4 free.
 */
function threeHostHospital() {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 8,
    services: [
      { name: 'pacs', tier: 'critical', vcpu: 6 },
      { name: 'lis', tier: 'critical', vcpu: 4 },
      { name: 'pharmacy', tier: 'standard', vcpu: 12 },
      { name: 'dwh', tier: 'deferred', vcpu: 2 },
    ],
  });
  const world = worldOf(
    blueprint,
    new Map([
      ['pacs-1', 'h1'],
      ['dwh-1', 'h2'],
      ['pharmacy-1', 'h2'],
      ['lis-1', 'h3'],
    ]),
    1_000_000,
  );
  loseHost(world.state, 'h1', 1_000_000);
  return world;
}

describe('shedding', () => {
  it('stops only the standard VM when it alone makes room, not the deferred VM taken before it', () => {
    const world = threeHostHospital();
    const decision = decide(world.input(1_001_000));
    expect(shedStops(decision.actions)).toEqual(['pharmacy-1']);
    expect(decision.marks).toContainEqual({ type: 'vm.reserve', vm: 'pacs-1', host: 'h2', untilMs: 1_001_000 + 600_000 });
  });

  it('leaves the deferred VM where it runs in the recovery the controller follows', () => {
    const world = threeHostHospital();
    const recovery = simulateRecovery({ blueprint: world.blueprint, model: world.model, order: world.order, plan: new Map(), state: world.state });
    expect(Object.fromEntries(recovery.primary)).toEqual({ 'pacs-1': 'h2', 'lis-1': 'h3', 'dwh-1': 'h2' });
    expect([...recovery.shedReasons.keys()]).toEqual(['pharmacy-1']);
  });
});
