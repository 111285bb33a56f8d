import { describe, expect, it } from 'vitest';
import { reconcileHosts } from '../../../src/control/reconcile/hosts.ts';
import { reconcileInstances } from '../../../src/control/reconcile/instances.ts';
import { Pass } from '../../../src/control/reconcile/pass.ts';
import { claim, reconcileReservations, releaseClaim } from '../../../src/control/reconcile/reservations.ts';
import type { World } from '../world.ts';
import { loseHost, tinyHospital, worldOf } from '../world.ts';

const NOW = 1_000_000;

/** h1 lost with PACS (critical, 8 cores); h2 runs DWH (deferred, 4 cores); PACS holds room on h2. */
function world(): World {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 16,
    services: [
      { name: 'pacs', tier: 'critical', vcpu: 8 },
      { name: 'dwh', tier: 'deferred', vcpu: 16 },
    ],
  });
  const w = worldOf(
    blueprint,
    new Map([
      ['pacs-1', 'h1'],
      ['dwh-1', 'h2'],
    ]),
    NOW,
  );
  loseHost(w.state, 'h1', NOW);
  w.state.reservations.set('pacs-1', { host: 'h2', untilMs: NOW + 60_000 });
  return w;
}

function run(w: World, nowMs: number, extra: Parameters<World['input']>[1] = {}) {
  const pass = new Pass(w.input(nowMs, extra));
  const hosts = reconcileHosts(pass);
  const instances = reconcileInstances(pass, hosts);
  return { pass, claims: reconcileReservations(pass, hosts, instances) };
}

describe('the reservations reconciler', () => {
  it('counts a held claim once on its host and wakes when it runs out', () => {
    // Past the lost host's detection deadline, so the claim's is the only wake-up.
    const { pass, claims } = run(world(), NOW + 3_000);
    expect([...claims]).toEqual([['pacs-1', 'h2']]);
    expect(pass.load.usedCores('h2')).toBe(4 + 8);
    expect(pass.decision()).toEqual({ actions: [], marks: [], nextWakeMs: NOW + 60_000 });
  });

  it('releases a claim that ran out, whose VM runs, whose host takes no VM, or that a recovery target replaces', () => {
    const released = (w: World, nowMs: number, extra: Parameters<World['input']>[1] = {}) => {
      const { pass, claims } = run(w, nowMs, extra);
      expect(claims.size).toBe(0);
      expect(pass.load.usedCores('h2')).toBe(w.state.instances.has('pacs-1#h2') ? 12 : 4);
      return pass.decision().marks;
    };
    const release = [{ type: 'vm.reserve', vm: 'pacs-1', host: null, untilMs: 0 }];
    expect(released(world(), NOW + 60_000)).toEqual(release);
    const running = world();
    running.state.instances.set('pacs-1#h2', { id: 'pacs-1#h2', vm: 'pacs-1', host: 'h2', role: 'primary', state: 'running', healthy: true, synced: false, datastore: 'ds-1' });
    expect(released(running, NOW + 1_000)).toEqual(release);
    expect(released(world(), NOW + 1_000, { held: new Set(['h2']) })).toEqual(release);
    expect(released(world(), NOW + 1_000, { target: { primary: new Map(), secondary: new Map(), shedReasons: new Map() } })).toEqual(release);
  });

  it('claims a host for a waiting VM unless it holds that claim already, and releases it to the VM that starts', () => {
    const { pass, claims } = run(world(), NOW + 1_000);
    claim(pass, claims, 'pacs-1', 'h2');
    claim(pass, claims, 'pacs-1', 'h3');
    releaseClaim(pass, claims, 'pacs-1');
    releaseClaim(pass, claims, 'dwh-1');
    expect(pass.decision().marks).toEqual([
      { type: 'vm.reserve', vm: 'pacs-1', host: 'h3', untilMs: NOW + 1_000 + 600_000 },
      { type: 'vm.reserve', vm: 'pacs-1', host: null, untilMs: 0 },
    ]);
  });
});
