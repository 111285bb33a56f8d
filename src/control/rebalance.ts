/**
 * The rebalancer: CPU follows clinical demand. A pure function from the controller's view and the
 * substrate's CPU metrics to share changes and live migrations, honouring the placement rules.
 * It does nothing while anything is being recovered: moving VMs then competes with the recovery.
 *
 * - Shares: a continuous or critical VM in its busy hour (demand at least 1.5 × its quiet level)
 *   gets twice its tier's shares; on a hot host, deferred VMs get half of theirs.
 * - Migration: a host above `hotUtilisation` sheds its lowest-tier, busiest movable VMs to the
 *   coolest eligible host that stays under `targetUtilisation` after the move, keeping capacity
 *   rules, the continuous secondary's failure domain, service spread and the generator feed of
 *   continuous primaries.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import { domainDistance, HostLoad } from '../capacity/capacity.ts';
import { BASE_UTILISATION } from '../model/demand.ts';
import type { InstanceObservation, VmMetrics } from '../ports/index.ts';
import type { ControllerState } from './state.ts';

export interface RebalanceOptions {
  readonly hotUtilisation: number;
  readonly targetUtilisation: number;
  readonly maxMigrationsPerPass: number;
  /** A VM moved once is not moved again for this long. */
  readonly migrationCooldownMs: number;
  readonly tierShares: readonly number[];
}

export const DEFAULT_REBALANCE: RebalanceOptions = Object.freeze({
  hotUtilisation: 0.7,
  targetUtilisation: 0.6,
  maxMigrationsPerPass: 8,
  migrationCooldownMs: 30 * 60_000,
  tierShares: [4000, 2000, 1000, 500],
});

export type RebalanceAction =
  | { readonly type: 'setCpuShares'; readonly vm: string; readonly instanceId: string; readonly shares: number; readonly reason: string }
  | { readonly type: 'migrateVm'; readonly vm: string; readonly instanceId: string; readonly fromHost: string; readonly toHost: string; readonly reason: string };

export interface RebalanceInput {
  readonly model: CapacityModel;
  readonly state: ControllerState;
  readonly metrics: readonly VmMetrics[];
  readonly nowMs: number;
  readonly lastMigratedAtMs: ReadonlyMap<string, number>;
  readonly options?: RebalanceOptions;
  /** Hosts held for maintenance: nothing is moved onto them. */
  readonly held?: ReadonlySet<string>;
}

export function rebalance(input: RebalanceInput): RebalanceAction[] {
  const { model, state, metrics, nowMs } = input;
  if (recovering(state)) return [];
  const options = input.options ?? DEFAULT_REBALANCE;
  const actions: RebalanceAction[] = [];
  const demandOnHost = new Map<string, number>();
  for (const metric of metrics) demandOnHost.set(metric.host, (demandOnHost.get(metric.host) ?? 0) + metric.demandCores);
  const utilisation = (host: string) => (demandOnHost.get(host) ?? 0) / model.host(host).cores;

  // 1. Shares follow the hour.
  for (const metric of metrics) {
    const { vm, tier } = model.info(metric.vm);
    const base = options.tierShares[Math.min(options.tierShares.length - 1, tier.priority)] ?? 1000;
    const busy = metric.demandCores >= vm.vcpu * BASE_UTILISATION * 1.5;
    let shares = base;
    let reason = `${tier.name} default`;
    if (!tier.sheddable && busy) {
      shares = base * 2;
      reason = `${tier.name} VM in its busy hour`;
    } else if (tier.name === 'deferred' && utilisation(metric.host) > options.hotUtilisation) {
      shares = Math.round(base / 2);
      reason = `deferred VM on a hot host (${Math.round(utilisation(metric.host) * 100)} %)`;
    }
    if (shares !== metric.shares) actions.push({ type: 'setCpuShares', vm: metric.vm, instanceId: metric.instanceId, shares, reason });
  }

  // 2. Hot hosts hand VMs to cool ones, within the placement rules.
  const load = new HostLoad(model);
  const instancesByVm = new Map<string, InstanceObservation[]>();
  for (const instance of state.instances.values()) {
    if (instance.state === 'stopping') continue;
    load.add(instance.host, instance.vm);
    const list = instancesByVm.get(instance.vm);
    if (list === undefined) instancesByVm.set(instance.vm, [instance]);
    else list.push(instance);
  }
  const eligible = (host: string) => state.hostStatus.get(host) === 'up' && !(input.held?.has(host) ?? false);
  const generatorFeeds = new Set(model.blueprint.powerFeeds.filter((feed) => feed.generator).map((feed) => feed.name));
  const onGenerator = (host: string) => generatorFeeds.has(model.host(host).powerFeed);
  const hot = model.blueprint.hosts.map((host) => host.name).filter((host) => eligible(host) && utilisation(host) > options.hotUtilisation);
  hot.sort((a, b) => utilisation(b) - utilisation(a));
  let migrations = 0;
  for (const source of hot) {
    const candidates = metrics
      .filter((metric) => metric.host === source && metric.role === 'primary')
      .filter((metric) => nowMs - (input.lastMigratedAtMs.get(metric.vm) ?? -Infinity) >= options.migrationCooldownMs)
      .sort((a, b) => model.priority(b.vm) - model.priority(a.vm) || b.demandCores - a.demandCores || a.vm.localeCompare(b.vm));
    for (const candidate of candidates) {
      if (migrations >= options.maxMigrationsPerPass || utilisation(source) <= options.targetUtilisation) break;
      const { service, tier } = model.info(candidate.vm);
      const siblings = new Set(service.vms.flatMap((sibling) => (instancesByVm.get(sibling.name) ?? []).filter((instance) => instance.role === 'primary').map((instance) => instance.host)));
      const partner = (instancesByVm.get(candidate.vm) ?? []).find((instance) => instance.role === 'secondary');
      let best: string | null = null;
      for (const host of model.blueprint.hosts) {
        const name = host.name;
        if (name === source || !eligible(name)) continue;
        if (!load.fits(name, candidate.vm)) continue;
        if (utilisation(name) + candidate.demandCores / host.cores > options.targetUtilisation) continue;
        if (siblings.has(name)) continue;
        if (partner !== undefined && domainDistance(host, model.host(partner.host)) < domainDistance(model.host(source), model.host(partner.host))) continue;
        if (tier.mechanism === 'failover' && onGenerator(source) && !onGenerator(name)) continue;
        if (best === null || utilisation(name) < utilisation(best)) best = name;
      }
      if (best === null) continue;
      actions.push({
        type: 'migrateVm',
        vm: candidate.vm,
        instanceId: candidate.instanceId,
        fromHost: source,
        toHost: best,
        reason: `host ${source} at ${Math.round(utilisation(source) * 100)} % CPU demand; ${best} at ${Math.round(utilisation(best) * 100)} %`,
      });
      migrations++;
      demandOnHost.set(source, (demandOnHost.get(source) ?? 0) - candidate.demandCores);
      demandOnHost.set(best, (demandOnHost.get(best) ?? 0) + candidate.demandCores);
      load.remove(source, candidate.vm);
      load.add(best, candidate.vm);
    }
  }
  return actions;
}

/** A VM waits to be started, or an action is still in flight. */
function recovering(state: ControllerState): boolean {
  if (state.inFlight.size > 0) return true;
  for (const view of state.vms.values()) if (view.pendingSinceMs !== null) return true;
  return false;
}
