/**
 * Secondaries: a continuous VM that runs without its synchronised secondary gets a new one, in
 * another failure domain than its primary. Restoring a critical service comes first: while a VM
 * that may not be shed still waits for a host, no new secondary takes room.
 */
import { domainDistance } from '../../capacity/capacity.ts';
import { chooseHost } from '../../capacity/first-fit.ts';
import type { InstanceObservation } from '../../ports/index.ts';
import type { Hosts } from './hosts.ts';
import { livePrimary, type Instances } from './instances.ts';
import type { Pass } from './pass.ts';

/** Whether a VM that may not be shed has no running primary (new secondaries then wait). */
export function unshedableWaiting(pass: Pass, hosts: Hosts, instances: Instances, visit: readonly number[]): boolean {
  const { order } = pass.input;
  const infos = pass.infos;
  // A VM the pass does not visit runs (reconcile/visits.ts).
  for (const index of visit) {
    if (infos[index]!.tier.sheddable) continue;
    if (livePrimary(instances, hosts, order[index]!) === undefined) return true;
  }
  return false;
}

/** A secondary that protects its primary (or is on its way to): not stopping, on a host that can be reached. */
export function usableSecondary(hosts: Hosts, instance: InstanceObservation): boolean {
  return instance.state !== 'stopping' && hosts.reachable(instance.host);
}

export interface Protection {
  readonly hosts: Hosts;
  /** From unshedableWaiting(), once per pass. */
  readonly unshedableWaiting: boolean;
}

/** Starts a secondary for a continuous VM that lacks one; returns why it stays unprotected, or null. */
export function protectWithSecondary(pass: Pass, protection: Protection, primary: InstanceObservation, secondaries: readonly InstanceObservation[]): string | null {
  const { hosts } = protection;
  const { model, state } = pass.input;
  if (secondaries.some((instance) => usableSecondary(hosts, instance))) return null;
  if (secondaries.some((instance) => hosts.statusOf(instance.host) === 'failed')) return 'unprotected: its secondary is on a failed host, waiting for fencing';
  if (pass.busy(`start:${primary.vm}:secondary`)) return null;
  if (primary.state !== 'running' || !primary.healthy) return 'unprotected: the primary must run and be healthy before a secondary can sync';
  const host = secondaryHost(pass, protection, primary);
  if (host.reason !== null) return host.reason;
  const service = model.info(primary.vm).service;
  const room = model.host(host.name).room;
  const replica = model.index.datastore.get(service.datastore)?.replicatedTo ?? null;
  const candidates = [service.datastore, ...(replica === null ? [] : [replica])].filter((name) => state.datastoresUp.get(name) !== false);
  const datastore = candidates.find((name) => model.index.datastore.get(name)?.room === room) ?? candidates[0];
  if (datastore === undefined) return 'unprotected: no copy of its disk is reachable';
  pass.load.add(host.name, primary.vm);
  pass.act({
    type: 'startVm',
    vm: primary.vm,
    host: host.name,
    role: 'secondary',
    datastore,
    coldRestart: false,
    reason: `protect ${primary.vm}: a synchronised secondary in another failure domain than ${primary.host}`,
  });
  return null;
}

/** Where the new secondary goes: the recovery target's host, else the plan's, else the farthest that fits. */
function secondaryHost(pass: Pass, protection: Protection, primary: InstanceObservation): { name: string; reason: null } | { name: null; reason: string } {
  const { hosts } = protection;
  const { model, plan } = pass.input;
  const load = pass.load;
  if (pass.target !== null) {
    let want = pass.target.secondary.get(primary.vm);
    // The copies swapped roles since the target was computed (a failover whose old host stayed up, an
    // operator's restart): the new secondary goes where the target put the primary, never beside it.
    if (want === primary.host) want = pass.target.primary.get(primary.vm);
    if (want === undefined || want === primary.host) return { name: null, reason: 'unprotected: the recovery plan has no room for a secondary in another failure domain' };
    if (!hosts.eligible(want) || !load.fits(want, primary.vm)) return { name: null, reason: `unprotected: waiting for room on ${want} for its secondary` };
    return { name: want, reason: null };
  }
  if (protection.unshedableWaiting) return { name: null, reason: 'unprotected: a new secondary waits until every critical VM has a host' };
  const planned = plan.get(primary.vm)?.secondary ?? null;
  const plannedFits = planned !== null && hosts.eligible(planned) && load.fits(planned, primary.vm) && domainDistance(model.host(planned), model.host(primary.host)) >= 2;
  const host = plannedFits ? planned : chooseHost({ model, load, vm: primary.vm, avoid: [primary.host], awayFrom: primary.host, eligible: hosts.eligible });
  if (host === null) return { name: null, reason: 'unprotected: no host in another failure domain has room for a new secondary' };
  return { name: host, reason: null };
}
