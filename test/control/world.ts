/**
 * Small hospitals built in a test, and the controller's view of them, for tests that call
 * decide() or one of its reconcilers directly: hosts of one size in one room, services of one VM
 * group each, and a state in which every listed instance runs and is healthy.
 */
import { buildBlueprint, type Blueprint, type RawBlueprint } from '../../src/model/index.ts';
import { CapacityModel } from '../../src/capacity/capacity.ts';
import { restartOrder } from '../../src/capacity/first-fit.ts';
import { DEFAULT_TIMINGS, type DecideInput } from '../../src/control/decide.ts';
import type { ControllerState, HostView } from '../../src/control/state.ts';
import type { InstanceObservation } from '../../src/ports/index.ts';

export interface TinyService {
  readonly name: string;
  readonly tier: 'continuous' | 'critical' | 'standard' | 'deferred';
  readonly count?: number;
  readonly vcpu: number;
  readonly memoryGiB?: number;
  readonly dependsOn?: readonly string[];
}

/** A one-room hospital: `hosts` hosts of `cores` cores and 256 GiB, one per rack, on one datastore. */
export function tinyHospital(options: { readonly hosts: number; readonly cores: number; readonly services: readonly TinyService[] }): Blueprint {
  const raw: RawBlueprint = {
    apiVersion: 'tomaranai/v1',
    kind: 'Hospital',
    name: 'tiny',
    tiers: {},
    hostModels: [{ name: 'unit', cores: options.cores, ghz: 2.5, memoryGiB: 256, watts: 500, rackUnits: 2 }],
    powerFeeds: [{ name: 'gen', room: 'room-1', generator: true }],
    hosts: Array.from({ length: options.hosts }, (_, index) => ({ name: `h${index + 1}`, model: 'unit', room: 'room-1', rack: `r${index + 1}`, powerFeed: 'gen' })),
    datastores: [{ name: 'ds-1', room: 'room-1', immutableSnapshots: true }],
    networks: [],
    services: options.services.map((service) => ({
      name: service.name,
      tier: service.tier,
      vendor: 'vendor-a',
      dependsOn: [...(service.dependsOn ?? [])],
      vms: [{ count: service.count ?? 1, vcpu: service.vcpu, memoryGiB: service.memoryGiB ?? 1, diskGiB: 10, bootTimeS: 60 }],
    })),
    flows: [],
  };
  return buildBlueprint(raw);
}

export interface World {
  readonly blueprint: Blueprint;
  readonly model: CapacityModel;
  readonly order: readonly string[];
  readonly state: ControllerState;
  /** decide()'s input at `nowMs`, greedy (no recovery target) unless one is given. */
  input(nowMs: number, extra?: Partial<DecideInput>): DecideInput;
}

/**
 * The controller's view of `blueprint` at `nowMs`: every host up, and the given copies (VM → host of
 * its primary; a continuous VM's secondary with `secondaries`) running and healthy.
 */
export function worldOf(blueprint: Blueprint, primaries: ReadonlyMap<string, string>, nowMs: number, secondaries: ReadonlyMap<string, string> = new Map()): World {
  const model = new CapacityModel(blueprint);
  const order = restartOrder(blueprint).map((vm) => vm.name);
  const instances = new Map<string, InstanceObservation>();
  const add = (vm: string, host: string, role: 'primary' | 'secondary') => {
    const id = `${vm}#${role === 'primary' ? 'p' : 's'}`;
    instances.set(id, { id, vm, host, role, state: 'running', healthy: true, synced: role === 'secondary', datastore: model.info(vm).service.datastore });
  };
  for (const [vm, host] of primaries) add(vm, host, 'primary');
  for (const [vm, host] of secondaries) add(vm, host, 'secondary');
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
    vms: new Map(blueprint.vms.map((vm) => [vm.name, { pendingSinceMs: null, waitReason: null, shedReason: null, coldRestart: false, lastHost: primaries.get(vm.name) ?? null }])),
    inFlight: new Map(),
    hostStatus: new Map(blueprint.hosts.map((host) => [host.name, 'up'])),
    unhealthySinceMs: new Map(),
    reservations: new Map(),
  };
  const plan = new Map([...primaries].map(([vm, host]) => [vm, { primary: host, secondary: secondaries.get(vm) ?? null }]));
  return {
    blueprint,
    model,
    order,
    state,
    input: (at, extra = {}) => ({ blueprint, model, plan, order, state, nowMs: at, timings: DEFAULT_TIMINGS, ...extra }),
  };
}

/** Marks `host` fenced at `nowMs` and drops its copies, as the controller does once a fence completes. */
export function loseHost(state: ControllerState, host: string, nowMs: number): void {
  const view = state.hosts.get(host)!;
  view.channels.management = { up: false, lastSeenAtMs: nowMs };
  view.channels.datastore = { up: false, lastSeenAtMs: nowMs };
  view.fencedAtMs = nowMs;
  state.hostStatus.set(host, 'fenced');
  for (const [id, instance] of state.instances) if (instance.host === host) state.instances.delete(id);
}
