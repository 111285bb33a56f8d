import { describe, expect, it } from 'vitest';
import { reconcileHosts } from '../../../src/control/reconcile/hosts.ts';
import { reconcileInstances } from '../../../src/control/reconcile/instances.ts';
import { Pass } from '../../../src/control/reconcile/pass.ts';
import { followTargetSheds, shedFor } from '../../../src/control/reconcile/shedding.ts';
import type { RecoveryTarget } from '../../../src/control/state.ts';
import { loseHost, tinyHospital, worldOf, type World } from '../world.ts';
import { vmsToVisit } from '../../../src/control/reconcile/visits.ts';

const NOW = 1_000_000;

/**
 * Three 8-core hosts, h1 lost with PACS (critical, 6 cores). h2: an archive VM (deferred, 2 vCPU =
 * 0.5 core) and pharmacy (standard, 12 vCPU = 6 cores). h3: a DWH VM (deferred, 24 vCPU = 6 cores)
 * and LIS (critical, 1 core).
 */
function world(): World {
  const blueprint = tinyHospital({
    hosts: 3,
    cores: 8,
    services: [
      { name: 'pacs', tier: 'critical', vcpu: 6 },
      { name: 'lis', tier: 'critical', vcpu: 1 },
      { name: 'pharmacy', tier: 'standard', vcpu: 12 },
      { name: 'archive', tier: 'deferred', vcpu: 2 },
      { name: 'dwh', tier: 'deferred', vcpu: 24 },
    ],
  });
  const w = worldOf(
    blueprint,
    new Map([
      ['pacs-1', 'h1'],
      ['archive-1', 'h2'],
      ['pharmacy-1', 'h2'],
      ['dwh-1', 'h3'],
      ['lis-1', 'h3'],
    ]),
    NOW,
  );
  loseHost(w.state, 'h1', NOW);
  return w;
}

function run(w: World, target: RecoveryTarget | null = null, held: ReadonlySet<string> = new Set()) {
  const pass = new Pass(w.input(NOW + 3_000, { target, held }));
  const hosts = reconcileHosts(pass);
  return { pass, hosts, instances: reconcileInstances(pass, hosts) };
}

describe('the shedding reconciler', () => {
  it('sheds on the host whose most important victim is the least important: a deferred VM rather than a standard one', () => {
    const { pass, hosts, instances } = run(world());
    const critical = pass.input.model.info('pacs-1').tier;
    expect(shedFor(pass, hosts, instances, 'pacs-1', critical)).toBe(true);
    const decision = pass.decision();
    expect(decision.actions).toEqual([{ type: 'stopVm', vm: 'dwh-1', host: 'h3', instanceId: 'dwh-1#p', reason: 'shed to make room on h3 for critical pacs-1', shed: true }]);
    expect(decision.marks).toEqual([
      { type: 'vm.shed', vm: 'dwh-1', reason: 'shed to make room on h3 for critical pacs-1' },
      { type: 'vm.reserve', vm: 'pacs-1', host: 'h3', untilMs: NOW + 3_000 + 600_000 },
      { type: 'vm.waiting', vm: 'pacs-1', reason: 'waiting for 1 lower-tier VM(s) on h3 to stop' },
    ]);
    // The room is the waiting VM's at once: DWH's 6 cores freed, PACS's 6 claimed.
    expect(pass.load.usedCores('h3')).toBe(1 + 6);
    expect(pass.shedNow).toEqual(new Set(['dwh-1']));
  });

  it('takes no more victims than the room needs: the standard VM alone, not the small deferred one before it', () => {
    // With h3 held for maintenance, h2 is the only host: 1.5 cores free, PACS needs 6.
    const { pass, hosts, instances } = run(world(), null, new Set(['h3']));
    expect(shedFor(pass, hosts, instances, 'pacs-1', pass.input.model.info('pacs-1').tier)).toBe(true);
    expect(pass.decision().actions.map((action) => (action.type === 'stopVm' ? action.vm : action.type))).toEqual(['pharmacy-1']);
    expect(pass.load.usedCores('h2')).toBe(0.5 + 6);
  });

  it('sheds nothing of its own tier or a higher one', () => {
    // h2 is full with a critical VM and two standard ones; a standard VM lost with h1 finds no victim.
    const blueprint = tinyHospital({
      hosts: 2,
      cores: 8,
      services: [
        { name: 'lis', tier: 'critical', vcpu: 4 },
        { name: 'pharmacy', tier: 'standard', count: 3, vcpu: 4 },
      ],
    });
    const w = worldOf(
      blueprint,
      new Map([
        ['pharmacy-1', 'h1'],
        ['lis-1', 'h2'],
        ['pharmacy-2', 'h2'],
        ['pharmacy-3', 'h2'],
      ]),
      NOW,
    );
    loseHost(w.state, 'h1', NOW);
    const { pass, hosts, instances } = run(w);
    expect(shedFor(pass, hosts, instances, 'pharmacy-1', pass.input.model.info('pharmacy-1').tier)).toBe(false);
    expect(pass.decision()).toEqual({ actions: [], marks: [], nextWakeMs: null });
  });

  it('following a recovery target, stops what it sheds or moves first and frees that room for the pass', () => {
    const target: RecoveryTarget = {
      primary: new Map([
        ['pacs-1', 'h2'],
        ['lis-1', 'h3'],
        ['archive-1', 'h3'],
      ]),
      secondary: new Map(),
      shedReasons: new Map([
        ['pharmacy-1', 'the recovery plan has no room for it'],
        ['dwh-1', 'shed for pacs-1'],
      ]),
    };
    const { pass, hosts, instances } = run(world(), target);
    const moving = followTargetSheds(pass, hosts, instances, vmsToVisit(pass, hosts));
    expect([...moving]).toEqual(['pharmacy-1', 'archive-1', 'dwh-1']);
    const decision = pass.decision();
    expect(decision.actions.map((action) => (action.type === 'stopVm' ? [action.vm, action.shed, action.reason] : action.type))).toEqual([
      ['pharmacy-1', true, 'the recovery plan has no room for it'],
      ['archive-1', false, 'moved to h3 by the recovery plan, to make room'],
      ['dwh-1', true, 'shed for pacs-1'],
    ]);
    expect(decision.marks.map((mark) => mark.type === 'vm.shed' && mark.vm)).toEqual(['pharmacy-1', 'dwh-1']);
    expect([pass.load.usedCores('h2'), pass.load.usedCores('h3')]).toEqual([0, 1]);
  });

  it('stops nothing for a target while a host is suspect: the failure may still be unfolding', () => {
    const w = world();
    w.state.hosts.get('h3')!.channels.management = { up: false, lastSeenAtMs: NOW + 2_500 };
    const { pass, hosts, instances } = run(w, { primary: new Map(), secondary: new Map(), shedReasons: new Map() });
    expect(followTargetSheds(pass, hosts, instances, vmsToVisit(pass, hosts)).size).toBe(0);
    expect(pass.decision().actions).toEqual([]);
  });
});
