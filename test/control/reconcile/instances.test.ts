import { describe, expect, it } from 'vitest';
import { reconcileHosts } from '../../../src/control/reconcile/hosts.ts';
import { copiesOf, reconcileInstances, settleRunning } from '../../../src/control/reconcile/instances.ts';
import { Pass } from '../../../src/control/reconcile/pass.ts';
import { DEFAULT_TIMINGS } from '../../../src/control/timings.ts';
import { tinyHospital, worldOf } from '../world.ts';

const NOW = 1_000_000;

/** h1: EHR (critical, 4 cores, needed by PACS) and DWH (deferred, 16 vCPU = 4 cores); h2: PACS (critical, 8 cores). */
function world() {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 16,
    services: [
      { name: 'ehr', tier: 'critical', vcpu: 4 },
      { name: 'pacs', tier: 'critical', vcpu: 8, dependsOn: ['ehr'] },
      { name: 'dwh', tier: 'deferred', vcpu: 16 },
    ],
  });
  return worldOf(
    blueprint,
    new Map([
      ['ehr-1', 'h1'],
      ['dwh-1', 'h1'],
      ['pacs-1', 'h2'],
    ]),
    NOW,
  );
}

function run(world: ReturnType<typeof worldOf>, nowMs: number) {
  const pass = new Pass(world.input(nowMs));
  const hosts = reconcileHosts(pass);
  const instances = reconcileInstances(pass, hosts);
  return { pass, hosts, instances };
}

describe('the instances reconciler', () => {
  it('indexes the copies by VM and host, counts the room they hold and knows which services are healthy', () => {
    const { pass, instances } = run(world(), NOW);
    expect([...instances.byHost.keys()]).toEqual(['h1', 'h2']);
    expect(instances.byVm.get('dwh-1')!.map((instance) => instance.host)).toEqual(['h1']);
    expect([pass.load.usedCores('h1'), pass.load.usedCores('h2'), pass.load.usedCores('h3')]).toEqual([8, 8, 0]);
    expect(['dwh', 'ehr', 'pacs', 'no-such-service'].map((service) => instances.healthyServices.has(service))).toEqual([true, true, true, false]);
    expect(pass.decision().actions).toEqual([]);
  });

  it('holds the room of a live migration under way on its destination, and counts it once when it has arrived', () => {
    const w = world();
    w.state.inFlight.set('migrate:dwh-1', { issuedAtMs: NOW, deadlineMs: NOW + 60_000, host: 'h3' });
    expect(run(w, NOW + 1_000).pass.load.usedCores('h3')).toBe(4);
    // Arrived: the instance is on h3 now, and its room there is counted once.
    const dwh = w.state.instances.get('dwh-1#p')!;
    w.state.instances.set(dwh.id, { ...dwh, host: 'h3' });
    const { pass } = run(w, NOW + 2_000);
    expect([pass.load.usedCores('h1'), pass.load.usedCores('h3')]).toEqual([4, 4]);
  });

  it('stops the copies of a host that lost its storage path, and no longer counts a stopping copy', () => {
    const w = world();
    w.state.hosts.get('h1')!.channels.datastore = { up: false, lastSeenAtMs: NOW };
    const dwh = w.state.instances.get('dwh-1#p')!;
    w.state.instances.set(dwh.id, { ...dwh, state: 'stopping' });
    const { pass, instances } = run(w, NOW + 10_000);
    expect(pass.decision().actions).toEqual([{ type: 'stopVm', vm: 'ehr-1', host: 'h1', instanceId: 'ehr-1#p', reason: 'its host lost the path to storage', shed: false }]);
    expect(pass.load.usedCores('h1')).toBe(4);
    // Its VMs no longer count as running: nothing waits for EHR's health check there.
    expect(instances.healthyServices.has('ehr')).toBe(false);
  });

  it('restarts a copy that failed its health check past the grace, and wakes at the grace before that', () => {
    const w = world();
    const pacs = w.state.instances.get('pacs-1#p')!;
    w.state.instances.set(pacs.id, { ...pacs, healthy: false });
    w.state.unhealthySinceMs.set(pacs.id, NOW);
    const early = run(w, NOW + 1_000).pass.decision();
    expect(early.actions).toEqual([]);
    expect(early.nextWakeMs).toBe(NOW + DEFAULT_TIMINGS.unhealthyGraceMs);
    const late = run(w, NOW + DEFAULT_TIMINGS.unhealthyGraceMs).pass.decision();
    expect(late.actions).toEqual([expect.objectContaining({ type: 'stopVm', vm: 'pacs-1', reason: 'health check failing for 60 s on a healthy host' })]);
  });

  it('fences an isolated host once one of its primaries stopped answering (the isolation response)', () => {
    const w = world();
    w.state.hosts.get('h2')!.channels.management = { up: false, lastSeenAtMs: NOW };
    const pacs = w.state.instances.get('pacs-1#p')!;
    w.state.instances.set(pacs.id, { ...pacs, healthy: false });
    w.state.unhealthySinceMs.set(pacs.id, NOW + 5_000);
    expect(run(w, NOW + 5_500).pass.decision().actions).toEqual([]);
    const late = run(w, NOW + 5_000 + DEFAULT_TIMINGS.isolationResponseMs).pass.decision();
    expect(late.actions).toEqual([expect.objectContaining({ type: 'fenceHost', host: 'h2' })]);
  });

  it('stops a copy whose disk is unreachable', () => {
    const w = world();
    w.state.datastoresUp.set('ds-1', false);
    const { pass } = run(w, NOW);
    expect(pass.decision().actions.map((action) => (action.type === 'stopVm' ? action.vm : action.type))).toEqual(['ehr-1', 'dwh-1', 'pacs-1']);
  });

  it('sorts a VM’s copies: live, blocked on an unfenced host, secondaries; a fenced host’s copy is gone', () => {
    const w = world();
    w.state.instances.set('pacs-1#old', { ...w.state.instances.get('pacs-1#p')!, id: 'pacs-1#old', host: 'h3' });
    w.state.hosts.get('h3')!.channels.management = { up: false, lastSeenAtMs: NOW };
    w.state.hosts.get('h3')!.channels.datastore = { up: false, lastSeenAtMs: NOW };
    const { hosts, instances } = run(w, NOW + 10_000);
    const copies = copiesOf(instances, hosts, 'pacs-1');
    expect(copies.live.map((instance) => instance.id)).toEqual(['pacs-1#p']);
    expect(copies.blocked.map((instance) => instance.id)).toEqual(['pacs-1#old']);
    w.state.hosts.get('h3')!.fencedAtMs = NOW + 10_000;
    const fenced = run(w, NOW + 10_000);
    expect(copiesOf(fenced.instances, fenced.hosts, 'pacs-1').blocked).toEqual([]);
  });

  it('settles a VM that runs: clears its wait, claim and shed mark, and stops a second running copy', () => {
    const w = world();
    w.state.instances.set('pacs-1#twin', { ...w.state.instances.get('pacs-1#p')!, id: 'pacs-1#twin', host: 'h3' });
    w.state.vms.set('pacs-1', { pendingSinceMs: NOW - 5_000, waitReason: 'x', shedReason: 'y', coldRestart: false, lastHost: 'h2' });
    w.state.reservations.set('pacs-1', { host: 'h2', untilMs: NOW + 60_000 });
    const { pass, hosts, instances } = run(w, NOW);
    settleRunning(pass, 'pacs-1', copiesOf(instances, hosts, 'pacs-1'));
    const decision = pass.decision();
    expect(decision.marks).toEqual([
      { type: 'vm.pending', vm: 'pacs-1', sinceMs: null },
      { type: 'vm.reserve', vm: 'pacs-1', host: null, untilMs: 0 },
      { type: 'vm.shed', vm: 'pacs-1', reason: null },
    ]);
    expect(decision.actions).toEqual([{ type: 'stopVm', vm: 'pacs-1', host: 'h3', instanceId: 'pacs-1#twin', reason: 'a second running copy', shed: false }]);
  });
});
