import { describe, expect, it } from 'vitest';
import { reconcileHosts } from '../../../src/control/reconcile/hosts.ts';
import { copiesOf, reconcileInstances } from '../../../src/control/reconcile/instances.ts';
import { Pass, type DecideInput } from '../../../src/control/reconcile/pass.ts';
import { reconcileReservations } from '../../../src/control/reconcile/reservations.ts';
import { restartVm } from '../../../src/control/reconcile/restarts.ts';
import { DEFAULT_TIMINGS } from '../../../src/control/timings.ts';
import { loseHost, tinyHospital, worldOf, type World } from '../world.ts';

const NOW = 1_000_000;
const AT = NOW + 3_000;

/**
 * Three 16-core hosts. h1 (lost in most tests): EHR (continuous, 4 cores, its secondary on h3)
 * and PACS (critical, 8 cores, needs EHR). h2: pharmacy (standard, 16 vCPU = 8 cores). h3: DWH
 * (deferred, 32 vCPU = 8 cores) and EHR's secondary.
 */
function world(): World {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 16,
    services: [
      { name: 'ehr', tier: 'continuous', vcpu: 4 },
      { name: 'pacs', tier: 'critical', vcpu: 8, dependsOn: ['ehr'] },
      { name: 'pharmacy', tier: 'standard', vcpu: 16 },
      { name: 'dwh', tier: 'deferred', vcpu: 32 },
    ],
  });
  return worldOf(
    blueprint,
    new Map([
      ['ehr-1', 'h1'],
      ['pacs-1', 'h1'],
      ['pharmacy-1', 'h2'],
      ['dwh-1', 'h3'],
    ]),
    NOW,
    new Map([['ehr-1', 'h3']]),
  );
}

/** Runs the reconcilers restartVm() depends on, then restartVm() for `vm`, and returns the pass. */
function restart(w: World, vm: string, extra: Partial<DecideInput> = {}, nowMs = AT): Pass {
  const pass = new Pass(w.input(nowMs, extra));
  const hosts = reconcileHosts(pass);
  const instances = reconcileInstances(pass, hosts);
  const claims = reconcileReservations(pass, hosts, instances);
  restartVm(pass, { hosts, instances, claims }, vm, copiesOf(instances, hosts, vm));
  return pass;
}

const summary = (pass: Pass) => pass.decision().actions.map((action) => [action.type, 'vm' in action ? action.vm : '', action.host]);

describe('the restarts reconciler', () => {
  it('places a VM that never ran on its planned host', () => {
    const w = world();
    w.state.instances.delete('pacs-1#p');
    w.state.vms.get('pacs-1')!.lastHost = null;
    const pass = restart(w, 'pacs-1', { plan: new Map([['pacs-1', { primary: 'h2', secondary: null }]]) });
    expect(pass.decision().actions).toEqual([
      { type: 'startVm', vm: 'pacs-1', host: 'h2', role: 'primary', datastore: 'ds-1', coldRestart: false, reason: 'initial placement' },
    ]);
    expect(pass.decision().marks).toEqual([{ type: 'vm.pending', vm: 'pacs-1', sinceMs: AT }]);
  });

  it('claims a host for a VM whose copy waits for its host to be fenced, and starts nothing yet', () => {
    const w = world();
    for (const channel of ['management', 'datastore'] as const) w.state.hosts.get('h1')!.channels[channel] = { up: false, lastSeenAtMs: NOW };
    const pass = restart(w, 'pacs-1');
    expect(pass.decision().actions.filter((action) => action.type !== 'fenceHost')).toEqual([]);
    expect(pass.decision().marks.filter((mark) => mark.type.startsWith('vm.'))).toEqual([
      { type: 'vm.pending', vm: 'pacs-1', sinceMs: AT },
      { type: 'vm.reserve', vm: 'pacs-1', host: 'h2', untilMs: AT + DEFAULT_TIMINGS.reservationMs },
      { type: 'vm.waiting', vm: 'pacs-1', reason: 'waiting for host h1 to be fenced' },
    ]);
    expect(pass.load.usedCores('h2')).toBe(8 + 8);
  });

  it('holds a VM on its claim while its dependency is not healthy, then starts it once the wait runs out', () => {
    const w = world();
    loseHost(w.state, 'h1', NOW);
    w.state.vms.get('pacs-1')!.pendingSinceMs = AT;
    const waiting = restart(w, 'pacs-1');
    expect(waiting.decision().actions).toEqual([]);
    expect(waiting.decision().marks.at(-1)).toEqual({ type: 'vm.waiting', vm: 'pacs-1', reason: 'waiting for ehr to pass its health check' });
    expect(waiting.decision().nextWakeMs).toBe(AT + DEFAULT_TIMINGS.dependencyWaitMaxMs);
    const late = restart(w, 'pacs-1', {}, AT + DEFAULT_TIMINGS.dependencyWaitMaxMs);
    expect(summary(late)).toEqual([['startVm', 'pacs-1', 'h2']]);
    expect(late.decision().actions[0]).toMatchObject({ reason: 'restart after its copy on h1 was lost' });
  });

  it('fails a continuous VM over to its synchronised secondary', () => {
    const w = world();
    loseHost(w.state, 'h1', NOW);
    const pass = restart(w, 'ehr-1');
    expect(pass.decision().actions).toEqual([
      { type: 'promoteSecondary', vm: 'ehr-1', host: 'h3', instanceId: 'ehr-1#s', reason: 'primary lost on h1; the synchronised secondary takes over' },
    ]);
  });

  it('restarts a continuous VM that lost both copies cold, like a critical one', () => {
    const w = world();
    loseHost(w.state, 'h1', NOW);
    w.state.instances.delete('ehr-1#s');
    const pass = restart(w, 'ehr-1');
    expect(pass.decision().marks).toContainEqual({ type: 'vm.cold-restart', vm: 'ehr-1', reason: 'both copies lost at once; restarted like a critical VM from replicated storage' });
    expect(summary(pass)).toEqual([['startVm', 'ehr-1', 'h2']]);
  });

  it('follows a recovery target: the VM goes where it says once the room is free, and waits until then', () => {
    const w = world();
    loseHost(w.state, 'h1', NOW);
    w.state.instances.set('ehr-1#p2', { id: 'ehr-1#p2', vm: 'ehr-1', host: 'h3', role: 'primary', state: 'running', healthy: true, synced: false, datastore: 'ds-1' });
    const target = { primary: new Map([['pacs-1', 'h3']]), secondary: new Map(), shedReasons: new Map() };
    const full = restart(w, 'pacs-1', { target });
    expect(full.decision().actions).toEqual([]);
    expect(full.decision().marks.at(-1)).toEqual({ type: 'vm.waiting', vm: 'pacs-1', reason: 'waiting for room the recovery plan frees on h3' });
    w.state.instances.delete('dwh-1#p');
    expect(summary(restart(w, 'pacs-1', { target }))).toEqual([['startVm', 'pacs-1', 'h3']]);
  });

  it('does not wait for room a target overbooked (computed before something landed there): it goes where it fits', () => {
    const w = world();
    loseHost(w.state, 'h1', NOW);
    w.state.instances.set('ehr-1#p2', { id: 'ehr-1#p2', vm: 'ehr-1', host: 'h3', role: 'primary', state: 'running', healthy: true, synced: false, datastore: 'ds-1' });
    // The target keeps DWH and EHR on h3 and adds PACS there: 8 + 4 + 8 cores on a 16-core host.
    const target = {
      primary: new Map([['pacs-1', 'h3'], ['dwh-1', 'h3'], ['ehr-1', 'h3'], ['pharmacy-1', 'h2']]),
      secondary: new Map(),
      shedReasons: new Map(),
    };
    expect(summary(restart(w, 'pacs-1', { target }))).toEqual([['startVm', 'pacs-1', 'h2']]);
  });

  it('with no room and nothing lower to shed, a critical VM waits and a sheddable one is shed', () => {
    // Two 8-core hosts: h1 (lost) ran PACS (critical, 6 cores) and DWH (deferred, 8 vCPU = 2 cores); LIS fills h2.
    const blueprint = tinyHospital({
      hosts: 2,
      cores: 8,
      services: [
        { name: 'pacs', tier: 'critical', vcpu: 6 },
        { name: 'lis', tier: 'critical', vcpu: 8 },
        { name: 'dwh', tier: 'deferred', vcpu: 8 },
      ],
    });
    const w = worldOf(
      blueprint,
      new Map([
        ['pacs-1', 'h1'],
        ['dwh-1', 'h1'],
        ['lis-1', 'h2'],
      ]),
      NOW,
    );
    loseHost(w.state, 'h1', NOW);
    expect(restart(w, 'pacs-1').decision().marks.at(-1)).toEqual({ type: 'vm.waiting', vm: 'pacs-1', reason: 'no capacity on the surviving hosts, and nothing of a lower tier left to shed' });
    expect(restart(w, 'dwh-1').decision().marks.at(-1)).toEqual({ type: 'vm.shed', vm: 'dwh-1', reason: 'no capacity on the surviving hosts; it returns when capacity does' });
  });

  it('waits while a host is suspect, and while no copy of the disk is reachable', () => {
    const w = world();
    loseHost(w.state, 'h1', NOW);
    w.state.hosts.get('h2')!.channels.management = { up: false, lastSeenAtMs: AT - 100 };
    expect(restart(w, 'pacs-1').decision().marks.at(-1)).toEqual({ type: 'vm.waiting', vm: 'pacs-1', reason: 'waiting until every suspect host is confirmed up or failed' });
    w.state.hosts.get('h2')!.channels.management = { up: true, lastSeenAtMs: AT };
    w.state.datastoresUp.set('ds-1', false);
    expect(restart(w, 'pacs-1').decision().marks.at(-1)).toEqual({ type: 'vm.waiting', vm: 'pacs-1', reason: 'no copy of its disk is reachable (ds-1 and its replica are down)' });
  });
});
