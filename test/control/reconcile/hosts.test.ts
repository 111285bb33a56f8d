import { describe, expect, it } from 'vitest';
import { reconcileHosts } from '../../../src/control/reconcile/hosts.ts';
import { Pass } from '../../../src/control/reconcile/pass.ts';
import { DEFAULT_TIMINGS } from '../../../src/control/timings.ts';
import { tinyHospital, worldOf } from '../world.ts';

const NOW = 1_000_000;

function world() {
  const blueprint = tinyHospital({ hosts: 3, cores: 16, services: [{ name: 'pacs', tier: 'critical', vcpu: 4 }] });
  return worldOf(blueprint, new Map([['pacs-1', 'h1']]), NOW);
}

describe('the hosts reconciler', () => {
  it('calls a host silent on both channels past the timeout failed, marks the change and fences it', () => {
    const { state, input } = world();
    state.hosts.get('h2')!.channels.management = { up: false, lastSeenAtMs: NOW };
    state.hosts.get('h2')!.channels.datastore = { up: false, lastSeenAtMs: NOW };
    const pass = new Pass(input(NOW + DEFAULT_TIMINGS.detectionTimeoutMs));
    const hosts = reconcileHosts(pass);
    expect(hosts.statusOf('h2')).toBe('failed');
    expect(hosts.reachable('h2')).toBe(false);
    const decision = pass.decision();
    expect(decision.marks).toEqual([{ type: 'host.status', host: 'h2', status: 'failed' }]);
    expect(decision.actions).toEqual([{ type: 'fenceHost', host: 'h2', reason: 'no heartbeat on the management network nor on the datastore' }]);
  });

  it('before the timeout calls the host suspect, settles, fences nothing and wakes at the deadline', () => {
    const { state, input } = world();
    state.hosts.get('h2')!.channels.management = { up: false, lastSeenAtMs: NOW };
    const pass = new Pass(input(NOW + 500));
    const hosts = reconcileHosts(pass);
    expect(hosts.statusOf('h2')).toBe('suspect');
    expect(hosts.settling).toBe(true);
    expect(hosts.reachable('h2')).toBe(true);
    expect(hosts.eligible('h2')).toBe(false);
    expect(pass.decision()).toEqual({ actions: [], marks: [{ type: 'host.status', host: 'h2', status: 'suspect' }], nextWakeMs: NOW + DEFAULT_TIMINGS.detectionTimeoutMs });
  });

  it('keeps an isolated host reachable but gives it nothing new; a held host neither; an unknown host is failed', () => {
    const { state, input } = world();
    state.hosts.get('h2')!.channels.management = { up: false, lastSeenAtMs: NOW };
    const pass = new Pass(input(NOW + 10_000, { held: new Set(['h3']) }));
    const hosts = reconcileHosts(pass);
    expect([hosts.statusOf('h2'), hosts.reachable('h2'), hosts.eligible('h2')]).toEqual(['isolated', true, false]);
    expect([hosts.statusOf('h3'), hosts.reachable('h3'), hosts.eligible('h3')]).toEqual(['up', true, false]);
    expect([hosts.statusOf('h1'), hosts.eligible('h1')]).toEqual(['up', true]);
    expect(hosts.statusOf('nowhere')).toBe('failed');
    expect(hosts.settling).toBe(false);
    expect(pass.decision().actions).toEqual([]);
  });
});
