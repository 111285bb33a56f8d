/**
 * The initial placement: every VM on a host, honouring capacity and failure domains. It spreads
 * load (it places on the fitting host with the most free cores, a worst fit) so that every host
 * keeps headroom for restarts; the capacity planner replaces it with an optimised plan.
 */
import type { Blueprint, Vm } from '../model/index.ts';
import { tierOf } from '../model/index.ts';
import { CapacityModel, domainDistance, HostLoad, type Placement } from './capacity.ts';

export interface InitialPlan {
  readonly placements: ReadonlyMap<string, Placement>;
  /** VMs that found no host, with why. */
  readonly unplaced: ReadonlyMap<string, string>;
}

export function restartOrder(blueprint: Blueprint): Vm[] {
  const depth = dependencyDepths(blueprint);
  const services = [...blueprint.services].sort(
    (a, b) =>
      tierOf(blueprint, a).priority - tierOf(blueprint, b).priority ||
      (depth.get(a.name) ?? 0) - (depth.get(b.name) ?? 0) ||
      a.order - b.order,
  );
  return services.flatMap((service) => service.vms);
}

/** How many dependency levels lie under each service (0 = depends on nothing). */
export function dependencyDepths(blueprint: Blueprint): Map<string, number> {
  const byName = new Map(blueprint.services.map((service) => [service.name, service]));
  const depths = new Map<string, number>();
  const visit = (name: string, trail: Set<string>): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    if (trail.has(name)) return 0;
    trail.add(name);
    let depth = 0;
    for (const dependency of byName.get(name)?.dependsOn ?? []) {
      if (byName.has(dependency)) depth = Math.max(depth, visit(dependency, trail) + 1);
    }
    trail.delete(name);
    depths.set(name, depth);
    return depth;
  };
  for (const service of blueprint.services) visit(service.name, new Set());
  return depths;
}

export function planInitialPlacement(blueprint: Blueprint, model = new CapacityModel(blueprint)): InitialPlan {
  const load = new HostLoad(model);
  const placements = new Map<string, Placement>();
  const unplaced = new Map<string, string>();
  const hostsOfService = new Map<string, string[]>();
  for (const vm of restartOrder(blueprint)) {
    const service = model.index.service.get(vm.service)!;
    const tier = tierOf(blueprint, service);
    const siblings = hostsOfService.get(service.name) ?? [];
    const primary = chooseHost({ model, load, vm: vm.name, avoid: siblings, awayFrom: null });
    if (primary === null) {
      unplaced.set(vm.name, 'no host has room');
      continue;
    }
    load.add(primary, vm.name);
    let secondary: string | null = null;
    if (tier.mechanism === 'failover') {
      secondary = chooseHost({ model, load, vm: vm.name, avoid: [...siblings, primary], awayFrom: primary });
      if (secondary === null) unplaced.set(vm.name, 'no host in another failure domain has room for the secondary');
      else load.add(secondary, vm.name);
    }
    siblings.push(primary);
    hostsOfService.set(service.name, siblings);
    placements.set(vm.name, { primary, secondary });
  }
  return { placements, unplaced };
}

export interface HostChoice {
  readonly model: CapacityModel;
  readonly load: HostLoad;
  readonly vm: string;
  /** Hosts that already hold a VM of the same service: used only if nothing else fits. */
  readonly avoid: readonly string[];
  /** For a secondary: the primary's host; the choice must be in another failure domain. */
  readonly awayFrom: string | null;
  readonly eligible?: (host: string) => boolean;
}

/**
 * Picks a host for `vm`: among eligible hosts that fit, prefer (1) the farthest failure domain from
 * `awayFrom`, (2) hosts without a sibling, (3) the most free cores; ties go to blueprint order.
 */
export function chooseHost(choice: HostChoice): string | null {
  const { model, load, vm } = choice;
  const away = choice.awayFrom === null ? null : model.host(choice.awayFrom);
  const rooms = new Set(model.blueprint.hosts.map((host) => host.room)).size;
  const requiredDistance = away === null ? 0 : rooms > 1 ? 3 : 2;
  let best: string | null = null;
  let bestScore = -Infinity;
  for (const host of model.blueprint.hosts) {
    if (choice.eligible !== undefined && !choice.eligible(host.name)) continue;
    if (!load.fits(host.name, vm)) continue;
    let score = 0;
    if (away !== null) {
      const distance = domainDistance(host, away);
      if (distance < 2) continue;
      score += distance >= requiredDistance ? 1e6 : 0;
    }
    if (!choice.avoid.includes(host.name)) score += 1e4;
    score += load.freeCores(host.name) / Math.max(1, host.cores);
    if (score > bestScore) {
      best = host.name;
      bestScore = score;
    }
  }
  return best;
}
