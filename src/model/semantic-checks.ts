/**
 * The blueprint's semantic checks: what the schema cannot say. Each concern is one check — unique
 * names, hosts (power feeds, models, completeness), datastore replication, tiers, failure domains,
 * service references, dependencies, VM sizes against the largest host, VM names, dependency cycles
 * and flows — and each reports every problem it finds, with its position and a hint (a misspelt
 * name gets a "did you mean"). The checks run in a fixed order, concern by concern and within one
 * in blueprint order, so the problems of a file come out the same every time.
 */
import { resolveTiers, vmNames } from './blueprint.ts';
import { type Locator, type Path, problem } from './locate.ts';
import type { Problem, ProblemCode } from './problems.ts';
import type { RawBlueprint } from './schema.ts';

type Tiers = ReturnType<typeof resolveTiers>;

/** What every check is given: the blueprint, and where its problems go. */
interface CheckContext {
  readonly raw: RawBlueprint;
  readonly locator: Locator;
  add(code: ProblemCode, path: Path, message: string, hint: string, severity?: 'error' | 'warning'): void;
}

/** The first definition of each name, per kind (duplicates are reported, not kept). */
interface DefinedNames {
  readonly models: Set<string>;
  readonly feeds: Set<string>;
  readonly datastores: Set<string>;
  readonly networks: Set<string>;
  readonly services: Set<string>;
}

export function semanticProblems(locator: Locator, raw: RawBlueprint): Problem[] {
  const problems: Problem[] = [];
  const context: CheckContext = {
    raw,
    locator,
    add: (code, path, message, hint, severity = 'error') => problems.push(problem(locator, code, path, message, hint, severity)),
  };
  const names = checkNames(context);
  checkHosts(context, names);
  checkReplication(context, names);
  const tiers = resolveTiers(raw);
  checkTiers(context, tiers);
  checkFailureDomains(context, tiers);
  checkServiceReferences(context, names);
  checkDependencies(context, names, tiers);
  checkVmSizes(context);
  checkVmNames(context);
  checkCycles(context);
  checkFlows(context, names);
  return problems;
}

/** Each kind's names are unique; returns the names defined. */
function checkNames(context: CheckContext): DefinedNames {
  const { raw, locator } = context;
  const names = (kind: string, list: readonly { name: string }[], key: string): Set<string> => {
    const seen = new Map<string, number>();
    list.forEach((item, index) => {
      const first = seen.get(item.name);
      if (first !== undefined) {
        context.add(
          'TMR_BLUEPRINT_DUPLICATE',
          [key, index, 'name'],
          `duplicate ${kind} name "${item.name}" (first defined at ${key}[${first}], line ${locator.at([key, first, 'name']).line})`,
          `give each ${kind} its own name`,
        );
      } else seen.set(item.name, index);
    });
    return new Set(seen.keys());
  };
  const models = names('host model', raw.hostModels, 'hostModels');
  const feeds = names('power feed', raw.powerFeeds, 'powerFeeds');
  names('host', raw.hosts, 'hosts');
  const datastores = names('datastore', raw.datastores, 'datastores');
  const networks = names('network', raw.networks, 'networks');
  const services = names('service', raw.services, 'services');
  return { models, feeds, datastores, networks, services };
}

/** Every host names a power feed of its own room and a known model, and has every capacity field. */
function checkHosts(context: CheckContext, names: DefinedNames): void {
  const { raw } = context;
  const feeds = new Map(raw.powerFeeds.map((feed) => [feed.name, feed]));
  const models = new Map(raw.hostModels.map((model) => [model.name, model]));
  raw.hosts.forEach((host, index) => {
    if (!names.feeds.has(host.powerFeed)) {
      context.add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['hosts', index, 'powerFeed'],
        `host "${host.name}" names unknown power feed "${host.powerFeed}"`,
        `${suggest(host.powerFeed, names.feeds)}define it under powerFeeds`,
      );
    } else {
      const feedRoom = feeds.get(host.powerFeed)?.room;
      if (feedRoom !== undefined && feedRoom !== host.room) {
        context.add(
          'TMR_BLUEPRINT_FEED_ROOM',
          ['hosts', index, 'powerFeed'],
          `host "${host.name}" in room "${host.room}" is fed by "${host.powerFeed}" of room "${feedRoom}"`,
          'use a power feed of the host\'s own room',
        );
      }
    }
    if (host.model !== undefined && !names.models.has(host.model)) {
      context.add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['hosts', index, 'model'],
        `host "${host.name}" names unknown host model "${host.model}"`,
        `${suggest(host.model, names.models)}define it under hostModels`,
      );
    } else {
      const model = host.model === undefined ? undefined : models.get(host.model);
      const missing = (['cores', 'ghz', 'memoryGiB', 'watts'] as const).filter(
        (field) => host[field] === undefined && model?.[field] === undefined,
      );
      if (missing.length > 0) {
        context.add(
          'TMR_BLUEPRINT_HOST_INCOMPLETE',
          ['hosts', index],
          `host "${host.name}" has no ${missing.join(', ')}`,
          'give the fields or a "model" from hostModels',
        );
      }
    }
  });
}

/** A datastore replicates to a known datastore, in another room (else a warning: no room protection). */
function checkReplication(context: CheckContext, names: DefinedNames): void {
  const { raw } = context;
  const datastoreRoom = new Map(raw.datastores.map((store) => [store.name, store.room]));
  raw.datastores.forEach((store, index) => {
    if (store.replicatedTo === undefined) return;
    if (!names.datastores.has(store.replicatedTo)) {
      context.add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['datastores', index, 'replicatedTo'],
        `datastore "${store.name}" replicates to unknown datastore "${store.replicatedTo}"`,
        `${suggest(store.replicatedTo, names.datastores)}define it under datastores`,
      );
    } else if (datastoreRoom.get(store.replicatedTo) === store.room) {
      context.add(
        'TMR_BLUEPRINT_REPLICA_ROOM',
        ['datastores', index, 'replicatedTo'],
        `datastore "${store.name}" replicates to "${store.replicatedTo}" in the same room "${store.room}"`,
        'a replica protects against a room failure only in another room',
        'warning',
      );
    }
  });
}

/** Every service has a known tier. */
function checkTiers(context: CheckContext, tiers: Tiers): void {
  context.raw.services.forEach((service, index) => {
    if (tiers.has(service.tier)) return;
    context.add(
      'TMR_BLUEPRINT_UNKNOWN_TIER',
      ['services', index, 'tier'],
      `service "${service.name}" has unknown tier "${service.tier}"`,
      `${suggest(service.tier, tiers.keys())}use one of ${[...tiers.keys()].join(', ')} or define it under tiers`,
    );
  });
}

/** A service whose tier fails over needs a second failure domain (rack or room) for its secondaries. */
function checkFailureDomains(context: CheckContext, tiers: Tiers): void {
  const { raw } = context;
  const racks = new Set(raw.hosts.map((host) => host.rack));
  const rooms = new Set(raw.hosts.map((host) => host.room));
  raw.services.forEach((service, index) => {
    const tier = tiers.get(service.tier);
    if (tier === undefined || tier.mechanism !== 'failover' || racks.size >= 2 || rooms.size >= 2) return;
    context.add(
      'TMR_BLUEPRINT_SINGLE_DOMAIN',
      ['services', index, 'tier'],
      `service "${service.name}" is ${service.tier} but every host is in one failure domain (rack "${[...racks][0]}")`,
      'add hosts in a second rack or room, or choose the critical tier',
    );
  });
}

/** A service's datastore and network, where given, are defined. */
function checkServiceReferences(context: CheckContext, names: DefinedNames): void {
  context.raw.services.forEach((service, index) => {
    if (service.datastore !== undefined && !names.datastores.has(service.datastore)) {
      context.add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['services', index, 'datastore'],
        `service "${service.name}" names unknown datastore "${service.datastore}"`,
        `${suggest(service.datastore, names.datastores)}define it under datastores`,
      );
    }
    if (service.network !== undefined && !names.networks.has(service.network)) {
      context.add(
        'TMR_BLUEPRINT_UNKNOWN_REF',
        ['services', index, 'network'],
        `service "${service.name}" names unknown network "${service.network}"`,
        `${suggest(service.network, names.networks)}define it under networks`,
      );
    }
  });
}

/**
 * Each dependency is listed once and is a defined service; one of a lower tier is a warning (it is
 * shed first, or restarts later in tier order, and the dependent waits for it).
 */
function checkDependencies(context: CheckContext, names: DefinedNames, tiers: Tiers): void {
  const { raw } = context;
  const services = new Map(raw.services.map((service) => [service.name, service]));
  raw.services.forEach((service, index) => {
    const seenDependencies = new Set<string>();
    service.dependsOn.forEach((dependency, dependencyIndex) => {
      const path = ['services', index, 'dependsOn', dependencyIndex];
      if (seenDependencies.has(dependency)) {
        context.add('TMR_BLUEPRINT_DUPLICATE', path, `service "${service.name}" lists "${dependency}" twice in dependsOn`, 'list each dependency once');
        return;
      }
      seenDependencies.add(dependency);
      const target = services.get(dependency);
      if (target === undefined) {
        context.add(
          'TMR_BLUEPRINT_UNKNOWN_REF',
          path,
          `service "${service.name}" depends on unknown service "${dependency}"`,
          `${suggest(dependency, names.services)}define it under services or remove it`,
        );
        return;
      }
      const own = tiers.get(service.tier);
      const theirs = tiers.get(target.tier);
      if (own !== undefined && theirs !== undefined && theirs.priority > own.priority) {
        context.add(
          'TMR_BLUEPRINT_TIER_INVERSION',
          path,
          theirs.sheddable
            ? `${service.tier} service "${service.name}" depends on ${target.tier} service "${dependency}", which is shed before it: when capacity is short "${service.name}" starts and runs without "${dependency}" (it does not wait for a shed dependency; the drill report names what it runs without)`
            : `${service.tier} service "${service.name}" depends on ${target.tier} service "${dependency}", which restarts after it in tier order: after a failure "${service.name}" waits for "${dependency}" to pass its health check, up to the dependency wait (120 s by default), then starts without it`,
          `raise "${dependency}" to ${service.tier} or lower "${service.name}"`,
          'warning',
        );
      }
    });
  });
}

/** No VM needs more cores or memory than the largest host has. */
function checkVmSizes(context: CheckContext): void {
  const { raw } = context;
  const models = new Map(raw.hostModels.map((model) => [model.name, model]));
  const largest = raw.hosts.reduce(
    (best, host) => {
      const model = host.model === undefined ? undefined : models.get(host.model);
      return {
        cores: Math.max(best.cores, host.cores ?? model?.cores ?? 0),
        memoryGiB: Math.max(best.memoryGiB, host.memoryGiB ?? model?.memoryGiB ?? 0),
      };
    },
    { cores: 0, memoryGiB: 0 },
  );
  raw.services.forEach((service, index) => {
    service.vms.forEach((group, groupIndex) => {
      if (group.vcpu > largest.cores || group.memoryGiB > largest.memoryGiB) {
        context.add(
          'TMR_BLUEPRINT_VM_TOO_LARGE',
          ['services', index, 'vms', groupIndex, group.vcpu > largest.cores ? 'vcpu' : 'memoryGiB'],
          `a VM of "${service.name}" needs ${group.vcpu} vCPU / ${group.memoryGiB} GiB, the largest host has ${largest.cores} cores / ${largest.memoryGiB} GiB`,
          'split the service into more, smaller VMs or add a larger host model',
        );
      }
    });
  });
}

/** The VM names that services derive from their groups are unique across services. */
function checkVmNames(context: CheckContext): void {
  const vmOwners = new Map<string, string>();
  context.raw.services.forEach((service, index) => {
    for (const vmName of vmNames(service.name, service.vms)) {
      const owner = vmOwners.get(vmName);
      if (owner !== undefined) {
        context.add(
          'TMR_BLUEPRINT_DUPLICATE',
          ['services', index, 'name'],
          `VM name "${vmName}" of service "${service.name}" is also a VM of "${owner}"`,
          'rename one of the services or its VM groups',
        );
      } else vmOwners.set(vmName, service.name);
    }
  });
}

/** No dependency cycle: a restart order needs a dependency to start first. */
function checkCycles(context: CheckContext): void {
  const { raw } = context;
  for (const cycle of dependencyCycles(raw)) {
    const first = raw.services.findIndex((service) => service.name === cycle[0]);
    const dependencyIndex = raw.services[first]!.dependsOn.indexOf(cycle[1]!);
    context.add(
      'TMR_BLUEPRINT_CYCLE',
      ['services', first, 'dependsOn', dependencyIndex],
      `dependency cycle: ${cycle.join(' → ')}`,
      'remove one dependsOn edge of the cycle; a restart order needs a dependency to start first',
    );
  }
}

/** Both ends of every flow are a service or a network of the blueprint. */
function checkFlows(context: CheckContext, names: DefinedNames): void {
  const endpoints = new Set([...names.services, ...names.networks]);
  context.raw.flows.forEach((flow, index) => {
    for (const end of ['from', 'to'] as const) {
      if (!endpoints.has(flow[end])) {
        context.add(
          'TMR_BLUEPRINT_UNKNOWN_REF',
          ['flows', index, end],
          `flow ${flow.from} → ${flow.to} names unknown service or network "${flow[end]}"`,
          `${suggest(flow[end], endpoints)}name a service or a network of the blueprint`,
        );
      }
    }
  });
}

/** "did you mean …? " when a defined name is close to `name`, else nothing. */
function suggest(name: string, candidates: Iterable<string>): string {
  const best = closest(name, candidates);
  return best === null ? '' : `did you mean "${best}"? `;
}

/** Each elementary cycle found by a depth-first search, reported once, starting at its first service. */
function dependencyCycles(raw: RawBlueprint): string[][] {
  const edges = new Map(raw.services.map((service) => [service.name, service.dependsOn]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (name: string): void => {
    state.set(name, 'open');
    stack.push(name);
    for (const next of edges.get(name) ?? []) {
      if (!edges.has(next)) continue;
      const nextState = state.get(next);
      if (nextState === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const key = [...cycle].sort().join(',');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...cycle, next]);
        }
      } else if (nextState === undefined) visit(next);
    }
    stack.pop();
    state.set(name, 'done');
  };
  // An explicit bound: a blueprint holds at most 10,000 services, so recursion depth is bounded too.
  for (const service of raw.services) if (!state.has(service.name)) visit(service.name);
  return cycles.slice(0, 20);
}

function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 5) return 99;
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}
