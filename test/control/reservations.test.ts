/**
 * Room held for a waiting VM (a reservation) counts once on its host, and is handed to that VM
 * when its turn comes. It used to be counted twice, so the VM found its own room taken and shed a
 * second, needless victim instead of starting.
 */
import { describe, expect, it } from 'vitest';
import { decide, type Action } from '../../src/control/decide.ts';
import { simulateRecovery } from '../../src/control/recovery.ts';
import { applyMark, type ControllerState } from '../../src/control/state.ts';
import { loseHost, tinyHospital, worldOf } from './world.ts';

/** Two 16-core hosts; PACS (critical, 8 cores) and four data-warehouse VMs (deferred, 16 vCPU = 4 cores each). */
function twoHostHospital() {
  const blueprint = tinyHospital({
    hosts: 2,
    cores: 16,
    services: [
      { name: 'pacs', tier: 'critical', vcpu: 8 },
      { name: 'dwh', tier: 'deferred', count: 4, vcpu: 16 },
    ],
  });
  // h1: PACS and one DWH VM (12 of 16 cores); h2: three DWH VMs (12 of 16 cores, 4 free).
  const primaries = new Map([
    ['pacs-1', 'h1'],
    ['dwh-4', 'h1'],
    ['dwh-1', 'h2'],
    ['dwh-2', 'h2'],
    ['dwh-3', 'h2'],
  ]);
  return worldOf(blueprint, primaries, 1_000_000);
}

/** What an instantaneous substrate does with a pass's actions: stops end at once, starts run at once. */
function execute(state: ControllerState, actions: readonly Action[]): void {
  for (const action of actions) {
    if (action.type === 'stopVm') state.instances.delete(action.instanceId);
    if (action.type === 'startVm') {
      const id = `${action.vm}#started`;
      state.instances.set(id, { id, vm: action.vm, host: action.host, role: action.role, state: 'running', healthy: true, synced: false, datastore: action.datastore });
    }
  }
}

const shedStops = (actions: readonly Action[]) => actions.flatMap((action) => (action.type === 'stopVm' && action.shed ? [action.vm] : []));

describe('a reservation', () => {
  it('sheds one lower-tier VM for a critical VM that lost its host, and starts the critical VM in the room that freed', () => {
    const world = twoHostHospital();
    loseHost(world.state, 'h1', 1_000_000);

    const first = decide(world.input(1_001_000));
    // 4 cores free on h2, PACS needs 8: one 4-core DWH VM makes room, and the room is held for PACS.
    expect(shedStops(first.actions)).toEqual(['dwh-3']);
    expect(first.marks).toContainEqual({ type: 'vm.reserve', vm: 'pacs-1', host: 'h2', untilMs: 1_001_000 + 600_000 });
    expect(first.actions.some((action) => action.type === 'startVm')).toBe(false);
    for (const mark of first.marks) applyMark(world.state, mark);
    execute(world.state, first.actions);

    const second = decide(world.input(1_002_000));
    expect(shedStops(second.actions)).toEqual([]);
    expect(second.actions).toContainEqual(expect.objectContaining({ type: 'startVm', vm: 'pacs-1', host: 'h2', role: 'primary' }));
    expect(second.marks).toContainEqual({ type: 'vm.reserve', vm: 'pacs-1', host: null, untilMs: 0 });
  });

  it('leaves the recovery with one victim: the two other DWH VMs on h2 keep running, never stopped and restarted', () => {
    const world = twoHostHospital();
    loseHost(world.state, 'h1', 1_000_000);
    const recovery = simulateRecovery({ blueprint: world.blueprint, model: world.model, order: world.order, plan: new Map(), state: world.state });
    expect(Object.fromEntries(recovery.primary)).toEqual({ 'pacs-1': 'h2', 'dwh-1': 'h2', 'dwh-2': 'h2' });
    expect([...recovery.shedReasons.keys()].sort()).toEqual(['dwh-3', 'dwh-4']);
    expect(recovery.shedReasons.get('dwh-3')).toBe('shed to make room on h2 for critical pacs-1');
    expect([...recovery.restarted]).toEqual(['pacs-1']);
  });

  it('still counts once while its VM waits for a dependency: the VM keeps its claim and nothing else is shed', () => {
    const blueprint = tinyHospital({
      hosts: 2,
      cores: 16,
      services: [
        { name: 'ehr', tier: 'critical', vcpu: 4 },
        { name: 'pacs', tier: 'critical', vcpu: 8, dependsOn: ['ehr'] },
        { name: 'dwh', tier: 'deferred', count: 3, vcpu: 16 },
      ],
    });
    const world = worldOf(
      blueprint,
      new Map([
        ['ehr-1', 'h1'],
        ['pacs-1', 'h1'],
        ['dwh-1', 'h2'],
        ['dwh-2', 'h2'],
        ['dwh-3', 'h2'],
      ]),
      1_000_000,
    );
    loseHost(world.state, 'h1', 1_000_000);
    // A long dependency wait: PACS keeps its claim while EHR boots.
    const timings = { ...world.input(0).timings, dependencyWaitMaxMs: 3_600_000 };
    const first = decide(world.input(1_001_000, { timings }));
    for (const mark of first.marks) applyMark(world.state, mark);
    execute(world.state, first.actions);
    // EHR (4) takes h2's 4 free cores; PACS (8) sheds two 4-core DWH VMs and holds their room.
    expect(shedStops(first.actions)).toEqual(['dwh-3', 'dwh-2']);
    expect(world.state.reservations.get('pacs-1')?.host).toBe('h2');
    // EHR is started but not yet healthy: PACS still waits, its claim held, nobody else shed.
    const ehr = [...world.state.instances.values()].find((instance) => instance.vm === 'ehr-1')!;
    world.state.instances.set(ehr.id, { ...ehr, healthy: false });
    const second = decide(world.input(1_002_000, { timings }));
    expect(shedStops(second.actions)).toEqual([]);
    expect(second.marks).toContainEqual({ type: 'vm.waiting', vm: 'pacs-1', reason: 'waiting for ehr to pass its health check' });
    for (const mark of second.marks) applyMark(world.state, mark);
    expect(world.state.reservations.get('pacs-1')?.host).toBe('h2');
  });
});
