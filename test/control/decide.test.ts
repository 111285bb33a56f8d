import { describe, expect, it } from 'vitest';
import { decide, DEFAULT_TIMINGS, type DecideInput } from '../../src/control/decide.ts';
import type { InstanceObservation } from '../../src/ports/index.ts';
import type { ControllerState, HostView } from '../../src/control/state.ts';
import { CapacityModel } from '../../src/capacity/capacity.ts';
import { planInitialPlacement, restartOrder } from '../../src/capacity/first-fit.ts';
import { shipped } from '../support/blueprints.ts';

/** A fake world: the steady state of the initial plan, every instance running and healthy. */
function steadyState(nowMs: number) {
  const blueprint = shipped('regional-hospital');
  const model = new CapacityModel(blueprint);
  const plan = planInitialPlacement(blueprint, model).placements;
  const instances = new Map<string, InstanceObservation>();
  for (const [vm, placement] of plan) {
    const service = model.info(vm).service;
    instances.set(`${vm}#p`, { id: `${vm}#p`, vm, host: placement.primary, role: 'primary', state: 'running', healthy: true, synced: false, datastore: service.datastore });
    if (placement.secondary !== null) {
      instances.set(`${vm}#s`, { id: `${vm}#s`, vm, host: placement.secondary, role: 'secondary', state: 'running', healthy: true, synced: true, datastore: service.datastore });
    }
  }
  const hosts = new Map<string, HostView>(
    blueprint.hosts.map((host) => [
      host.name,
      { name: host.name, channels: { management: { up: true, lastSeenAtMs: nowMs }, datastore: { up: true, lastSeenAtMs: nowMs } }, fencedAtMs: null, poweredOn: true },
    ]),
  );
  const state: ControllerState = {
    hosts,
    instances,
    datastoresUp: new Map(blueprint.datastores.map((store) => [store.name, true])),
    vms: new Map(blueprint.vms.map((vm) => [vm.name, { pendingSinceMs: null, waitReason: null, shedReason: null, coldRestart: false, lastHost: plan.get(vm.name)!.primary }])),
    inFlight: new Map(),
    hostStatus: new Map(blueprint.hosts.map((host) => [host.name, 'up'])),
    unhealthySinceMs: new Map(),
    reservations: new Map(),
  };
  const input = (at: number): DecideInput => ({ blueprint, model, plan, order: restartOrder(blueprint).map((vm) => vm.name), state, nowMs: at, timings: DEFAULT_TIMINGS });
  return { blueprint, plan, state, input };
}

describe('decide', () => {
  it('does nothing when everything runs as planned', () => {
    const { input } = steadyState(1_000_000);
    const decision = decide(input(1_000_000));
    expect(decision.actions).toEqual([]);
  });

  it('fences a host silent on both channels before restarting anything, and restarts nothing before that', () => {
    const { state, input, plan } = steadyState(1_000_000);
    const victim = plan.get('ehr-db-1')!.primary;
    const host = state.hosts.get(victim)!;
    host.channels.management = { up: false, lastSeenAtMs: 1_000_000 };
    host.channels.datastore = { up: false, lastSeenAtMs: 1_000_000 };
    const early = decide(input(1_001_000));
    expect(early.actions).toEqual([]);
    expect(early.nextWakeMs).toBe(1_000_000 + DEFAULT_TIMINGS.detectionTimeoutMs);
    const detected = decide(input(1_002_000));
    expect(detected.actions.map((action) => action.type)).toEqual(['fenceHost']);
    expect(detected.actions[0]).toMatchObject({ type: 'fenceHost', host: victim });
  });

  it('leaves an isolated host alone while its VMs answer, and fences it once one stops answering (the isolation response)', () => {
    const { state, input, plan } = steadyState(1_000_000);
    const victim = plan.get('ehr-db-1')!.primary;
    state.hosts.get(victim)!.channels.management = { up: false, lastSeenAtMs: 1_000_000 };
    // Isolated (management silent past the timeout, datastore alive), VMs still answering: nothing.
    expect(decide(input(1_003_000)).actions).toEqual([]);
    // Its VM stops answering (the isolation cut the service network too): fenced after the grace.
    const instance = [...state.instances.values()].find((candidate) => candidate.vm === 'ehr-db-1' && candidate.role === 'primary')!;
    state.instances.set(instance.id, { ...instance, healthy: false });
    state.unhealthySinceMs.set(instance.id, 1_003_000);
    const early = decide(input(1_003_000 + DEFAULT_TIMINGS.isolationResponseMs - 1));
    expect(early.actions).toEqual([]);
    expect(early.nextWakeMs).toBe(1_003_000 + DEFAULT_TIMINGS.isolationResponseMs);
    const late = decide(input(1_003_000 + DEFAULT_TIMINGS.isolationResponseMs));
    expect(late.actions).toEqual([expect.objectContaining({ type: 'fenceHost', host: victim })]);
    expect((late.actions[0] as { reason: string }).reason).toMatch(/isolated, and ehr-db-1 on it no longer answers/);
  });

  it('after fencing, promotes the continuous secondary and restarts the critical VMs', () => {
    const { state, input, plan } = steadyState(1_000_000);
    const victim = plan.get('ehr-db-1')!.primary;
    const host = state.hosts.get(victim)!;
    host.channels.management = { up: false, lastSeenAtMs: 1_000_000 };
    host.channels.datastore = { up: false, lastSeenAtMs: 1_000_000 };
    host.fencedAtMs = 1_002_100;
    for (const [id, instance] of state.instances) if (instance.host === victim) state.instances.delete(id);
    const decision = decide(input(1_002_100));
    expect(decision.actions).toContainEqual(expect.objectContaining({ type: 'promoteSecondary', vm: 'ehr-db-1', host: plan.get('ehr-db-1')!.secondary }));
    const lost = [...plan].filter(([, placement]) => placement.primary === victim).map(([vm]) => vm);
    for (const vm of lost) {
      const action = decision.actions.find((candidate) => 'vm' in candidate && candidate.vm === vm && candidate.type !== 'stopVm');
      if (plan.get(vm)!.secondary === null) {
        expect(action === undefined || (action.type === 'startVm' && action.host !== victim), vm).toBe(true);
      }
    }
  });

  it('on an isolated host (datastore heartbeat alive) leaves the VMs alone', () => {
    const { state, input, plan } = steadyState(1_000_000);
    const victim = plan.get('ehr-db-1')!.primary;
    state.hosts.get(victim)!.channels.management = { up: false, lastSeenAtMs: 1_000_000 };
    const decision = decide(input(1_010_000));
    expect(decision.actions).toEqual([]);
    expect(decision.marks).toContainEqual({ type: 'host.status', host: victim, status: 'isolated' });
  });

  it('on a host that lost its storage path stops its VMs (through the management network) before restarting them', () => {
    const { state, input, plan } = steadyState(1_000_000);
    const victim = plan.get('ehr-db-1')!.primary;
    state.hosts.get(victim)!.channels.datastore = { up: false, lastSeenAtMs: 1_000_000 };
    const decision = decide(input(1_010_000));
    const onHost = [...state.instances.values()].filter((instance) => instance.host === victim);
    expect(decision.actions.filter((action) => action.type === 'stopVm').map((action) => (action.type === 'stopVm' ? action.instanceId : '')).sort()).toEqual(
      onHost.map((instance) => instance.id).sort(),
    );
    expect(decision.actions.some((action) => action.type === 'startVm' || action.type === 'promoteSecondary')).toBe(false);
  });

  it('repeats nothing already under way (idempotent passes)', () => {
    const { state, input, plan } = steadyState(1_000_000);
    const victim = plan.get('ehr-db-1')!.primary;
    const host = state.hosts.get(victim)!;
    host.channels.management = { up: false, lastSeenAtMs: 1_000_000 };
    host.channels.datastore = { up: false, lastSeenAtMs: 1_000_000 };
    state.inFlight.set(`fence:${victim}`, { issuedAtMs: 1_002_000, deadlineMs: 1_017_000 });
    expect(decide(input(1_002_500)).actions).toEqual([]);
  });
});
