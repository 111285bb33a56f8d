/**
 * Maintenance as a pure decision: which host each VM of a host held for maintenance moves to by
 * live migration, within the placement rules (capacity, a continuous VM's secondary in another
 * failure domain, a service's VMs spread over hosts). The controller holds the host and executes
 * the migrations; what cannot move stays and is reported.
 */
import { HostLoad, type CapacityModel } from '../capacity/capacity.ts';
import { chooseHost } from '../capacity/first-fit.ts';
import type { RebalanceAction } from './rebalance.ts';
import type { ControllerState } from './state.ts';

export interface Evacuation {
  readonly migrations: readonly Extract<RebalanceAction, { type: 'migrateVm' }>[];
  /** VMs that no other host has room for, within the placement rules. */
  readonly stuck: readonly string[];
}

/**
 * Moves every running copy off `host`, most important tier first (then by name), each to the host
 * chooseHost() picks among the up hosts not held, counting the moves already planned.
 */
export function planEvacuation(input: { readonly model: CapacityModel; readonly state: ControllerState; readonly host: string; readonly held: ReadonlySet<string> }): Evacuation {
  const { model, state, host, held } = input;
  const instances = [...state.instances.values()];
  const load = new HostLoad(model);
  for (const instance of instances) if (instance.state !== 'stopping') load.add(instance.host, instance.vm);
  const eligible = (name: string) => name !== host && !held.has(name) && state.hostStatus.get(name) === 'up';
  const onHost = instances.filter((instance) => instance.host === host && instance.state === 'running');
  onHost.sort((a, b) => model.priority(a.vm) - model.priority(b.vm) || a.vm.localeCompare(b.vm));
  const migrations: Extract<RebalanceAction, { type: 'migrateVm' }>[] = [];
  const stuck: string[] = [];
  for (const instance of onHost) {
    const partner = instances.find((other) => other.vm === instance.vm && other.id !== instance.id);
    const siblings = model.info(instance.vm).service.vms.flatMap((vm) => instances.filter((other) => other.vm === vm.name && other.role === instance.role).map((other) => other.host));
    const target = chooseHost({ model, load, vm: instance.vm, avoid: siblings, awayFrom: partner?.host ?? null, eligible });
    if (target === null) {
      stuck.push(instance.vm);
      continue;
    }
    load.remove(host, instance.vm);
    load.add(target, instance.vm);
    migrations.push({ type: 'migrateVm', vm: instance.vm, instanceId: instance.id, fromHost: host, toHost: target, reason: `evacuating ${host} for maintenance` });
  }
  return { migrations, stuck };
}
