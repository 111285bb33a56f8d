import { describe, expect, it } from 'vitest';
import { reconcileHosts } from '../../../src/control/reconcile/hosts.ts';
import { reconcileInstances } from '../../../src/control/reconcile/instances.ts';
import { Pass, type DecideInput } from '../../../src/control/reconcile/pass.ts';
import { protectWithSecondary, unshedableWaiting } from '../../../src/control/reconcile/secondaries.ts';
import { loseHost, tinyHospital, worldOf, type World } from '../world.ts';
import { vmsToVisit } from '../../../src/control/reconcile/visits.ts';

const NOW = 1_000_000;
const AT = NOW + 3_000;

/** Three 16-core hosts, one per rack. EHR (continuous) runs on h1 with its secondary on h3; PACS (critical) on h2. */
function world(): World {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 16,
    services: [
      { name: 'ehr', tier: 'continuous', vcpu: 4 },
      { name: 'pacs', tier: 'critical', vcpu: 8 },
    ],
  });
  return worldOf(
    blueprint,
    new Map([
      ['ehr-1', 'h1'],
      ['pacs-1', 'h2'],
    ]),
    NOW,
    new Map([['ehr-1', 'h3']]),
  );
}

/** protectWithSecondary() for EHR's primary, after the reconcilers it depends on. */
function protect(w: World, extra: Partial<DecideInput> = {}) {
  const pass = new Pass(w.input(AT, extra));
  const hosts = reconcileHosts(pass);
  const instances = reconcileInstances(pass, hosts);
  const waiting = unshedableWaiting(pass, hosts, instances, vmsToVisit(pass, hosts));
  const primary = instances.byVm.get('ehr-1')!.find((instance) => instance.role === 'primary')!;
  const secondaries = instances.byVm.get('ehr-1')!.filter((instance) => instance.role === 'secondary');
  const reason = protectWithSecondary(pass, { hosts, unshedableWaiting: waiting }, primary, secondaries);
  return { pass, reason, waiting };
}

describe('the secondaries reconciler', () => {
  it('leaves a continuous VM with a usable secondary alone', () => {
    const { pass, reason } = protect(world());
    expect(reason).toBeNull();
    expect(pass.decision().actions).toEqual([]);
  });

  it('starts a new secondary in another failure domain for a continuous VM that lost its own, and counts its room', () => {
    const w = world();
    loseHost(w.state, 'h3', NOW);
    const { pass, reason } = protect(w);
    expect(reason).toBeNull();
    expect(pass.decision().actions).toEqual([
      { type: 'startVm', vm: 'ehr-1', host: 'h2', role: 'secondary', datastore: 'ds-1', coldRestart: false, reason: 'protect ehr-1: a synchronised secondary in another failure domain than h1' },
    ]);
    expect(pass.load.usedCores('h2')).toBe(8 + 4);
  });

  it('starts no new secondary while a critical VM still waits for a host', () => {
    const w = world();
    loseHost(w.state, 'h3', NOW);
    w.state.instances.delete('pacs-1#p');
    const { pass, reason, waiting } = protect(w);
    expect(waiting).toBe(true);
    expect(reason).toBe('unprotected: a new secondary waits until every critical VM has a host');
    expect(pass.decision().actions).toEqual([]);
  });

  it('says why a VM stays unprotected: an unhealthy primary, a secondary on a failed host, no room in another domain', () => {
    const unhealthy = world();
    loseHost(unhealthy.state, 'h3', NOW);
    unhealthy.state.instances.set('ehr-1#p', { ...unhealthy.state.instances.get('ehr-1#p')!, healthy: false });
    expect(protect(unhealthy).reason).toBe('unprotected: the primary must run and be healthy before a secondary can sync');

    const failed = world();
    for (const channel of ['management', 'datastore'] as const) failed.state.hosts.get('h3')!.channels[channel] = { up: false, lastSeenAtMs: NOW };
    expect(protect(failed).reason).toBe('unprotected: its secondary is on a failed host, waiting for fencing');

    const full = world();
    loseHost(full.state, 'h3', NOW);
    expect(protect(full, { held: new Set(['h2']) }).reason).toBe('unprotected: no host in another failure domain has room for a new secondary');
  });

  it('following a recovery target, puts the secondary where the target says, or says it has no room', () => {
    const w = world();
    loseHost(w.state, 'h3', NOW);
    const target = { primary: new Map([['ehr-1', 'h1']]), secondary: new Map([['ehr-1', 'h2']]), shedReasons: new Map() };
    expect(protect(w, { target }).pass.decision().actions).toEqual([expect.objectContaining({ type: 'startVm', vm: 'ehr-1', host: 'h2', role: 'secondary' })]);
    const none = { ...target, secondary: new Map() };
    expect(protect(w, { target: none }).reason).toBe('unprotected: the recovery plan has no room for a secondary in another failure domain');
  });
});
