/**
 * Read-only views the dashboard draws and the other resources do not carry: the tiers' targets,
 * the hospital's physical layout with each host's load and power feed, CPU demand and ready time
 * per host over the simulated day (the plan's placement against where VMs run now), what survives
 * what, and the security picture (segmentation, attack paths, quarantines, anomalies). Every value
 * is computed from the running blueprint, the live substrate state and the journal; nothing here
 * changes anything. The heavy analyses are cached per blueprint version.
 */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { CapacitySchema, TiersSchema, TopologySchema, type FailureRowDto } from '../../dto/index.ts';
import { tierOf, type Blueprint } from '../../model/index.ts';
import { analyseFailures, failureCases } from '../../analysis/failure-analysis.ts';
import { CapacityModel } from '../../capacity/capacity.ts';
import { planInitialPlacement } from '../../capacity/first-fit.ts';
import { cpuDemand, DAY_MS, HOUR_MS, shareCpu } from '../../model/demand.ts';
import { compileSegmentation } from '../../model/segmentation.ts';
import { analyzeAttackPaths } from '../../plan/attack-paths.ts';
import { entriesBetween } from '../../journal/store.ts';
import { route } from '../route.ts';
import type { PluginOptions } from './types.ts';

/** Default CPU shares per tier priority, as the twin gives them (continuous, critical, standard, deferred). */
const SHARES_BY_PRIORITY = [4000, 2000, 1000, 500] as const;
const HOURS = 24;
/** Anomaly entries scanned from the end of the journal, at most. */
const ANOMALY_SCAN_LIMIT = 20_000;
const ANOMALY_TYPES = /anomal|intrusion|ransom|encrypt|quarantin|flow\.denied|^security\.(alert|recovered|unrecoverable)/;

const Anomaly = z.object({ seq: z.number(), atMs: z.number(), type: z.string(), subject: z.string(), data: z.record(z.string(), z.unknown()) });

interface Cache<T> {
  version: number;
  blueprint: Blueprint | null;
  value: T | null;
}

function cached<T>(cache: Cache<T>, blueprint: Blueprint, version: number, compute: () => T): T {
  if (cache.value === null || cache.blueprint !== blueprint || cache.version !== version) {
    cache.value = compute();
    cache.blueprint = blueprint;
    cache.version = version;
  }
  return cache.value;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Demand and ready time of one host's VMs at each hour of the day. */
function daySeries(blueprint: Blueprint, vmsOnHost: readonly string[], cores: number, dayStartMs: number): { demand: number[]; ready: number[] } {
  const vmIndex = new Map(blueprint.vms.map((vm) => [vm.name, vm]));
  const serviceIndex = new Map(blueprint.services.map((service) => [service.name, service]));
  const demand: number[] = [];
  const ready: number[] = [];
  for (let hour = 0; hour < HOURS; hour++) {
    const atMs = dayStartMs + hour * HOUR_MS + HOUR_MS / 2;
    const claims = vmsOnHost.flatMap((name) => {
      const vm = vmIndex.get(name);
      const service = vm === undefined ? undefined : serviceIndex.get(vm.service);
      if (vm === undefined || service === undefined) return [];
      return [{ demandCores: cpuDemand(vm.vcpu, service.demand, atMs), shares: SHARES_BY_PRIORITY[Math.min(3, tierOf(blueprint, service).priority)] ?? 1000 }];
    });
    const grants = shareCpu(cores, claims);
    demand.push(round(claims.reduce((sum, claim) => sum + claim.demandCores, 0)));
    // The worst VM's ready time on the host: what a clinician on the slowest system feels.
    ready.push(round(100 * Math.max(0, ...grants.map((grant) => grant.readyFraction))));
  }
  return { demand, ready };
}

export const insightPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;
  const planCache: Cache<ReturnType<typeof planInitialPlacement>> = { version: 0, blueprint: null, value: null };
  const failureCache: Cache<FailureRowDto[]> = { version: 0, blueprint: null, value: null };
  const securityCache: Cache<ReturnType<typeof securityOf>> = { version: 0, blueprint: null, value: null };
  const placementOf = () => cached(planCache, plane.blueprint, plane.blueprintVersion, () => planInitialPlacement(plane.blueprint, new CapacityModel(plane.blueprint)));

  route(app, { method: 'GET', url: '/tiers', summary: "The SLA tiers' recovery targets (for status displays)", tag: 'insight', permission: 'status.read', response: TiersSchema }, async () => ({
    tiers: [...plane.blueprint.tiers.values()].map((tier) => ({ name: tier.name, rtoS: tier.rtoS, rpoS: tier.rpoS, priority: tier.priority, mechanism: tier.mechanism })),
  }));

  route(
    app,
    { method: 'GET', url: '/topology', summary: 'Rooms, racks and hosts with their load, VMs and power feed (generator or not)', tag: 'insight', permission: 'hosts.read', response: TopologySchema },
    async () => {
      const blueprint = plane.blueprint;
      const feeds = new Map(blueprint.powerFeeds.map((feed) => [feed.name, feed]));
      const vmIndex = new Map(blueprint.vms.map((vm) => [vm.name, vm]));
      const tierOfService = new Map(blueprint.services.map((service) => [service.name, service.tier]));
      const statuses = new Map((await plane.hosts()).map((host) => [host.name, host]));
      const hosts = blueprint.hosts.map((host) => {
        const running = statuses.get(host.name)?.vms ?? [];
        const vms = running.flatMap((name) => {
          const vm = vmIndex.get(name);
          return vm === undefined ? [] : [{ name, service: vm.service, tier: tierOfService.get(vm.service) ?? 'standard', vcpu: vm.vcpu, memoryGiB: vm.memoryGiB }];
        });
        return {
          name: host.name,
          room: host.room,
          rack: host.rack,
          cores: host.cores,
          memoryGiB: host.memoryGiB,
          powerFeed: host.powerFeed,
          generator: feeds.get(host.powerFeed)?.generator ?? false,
          status: statuses.get(host.name)?.status ?? 'unknown',
          vcpuUsed: vms.reduce((sum, vm) => sum + vm.vcpu, 0),
          memoryGiBUsed: vms.reduce((sum, vm) => sum + vm.memoryGiB, 0),
          vms: vms.map(({ name, service, tier }) => ({ name, service, tier })),
        };
      });
      const racks = [...new Map(blueprint.hosts.map((host) => [host.rack, host.room])).entries()].map(([name, room]) => ({ name, room }));
      return { rooms: [...blueprint.rooms], racks, hosts };
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/capacity',
      summary: "CPU demand and ready time per host over the simulated day (plan vs now), and what survives what",
      tag: 'insight',
      permission: 'plan.read',
      response: CapacitySchema,
    },
    async () => {
      const blueprint = plane.blueprint;
      const nowMs = plane.clock.nowMs();
      const dayStartMs = Math.floor(nowMs / DAY_MS) * DAY_MS;
      const placement = placementOf();
      const running = new Map((await plane.hosts()).map((host) => [host.name, host.vms]));
      const hosts = blueprint.hosts.map((host) => {
        const planned = [...placement.placements].filter(([, place]) => place.primary === host.name).map(([vm]) => vm);
        const plan = daySeries(blueprint, planned, host.cores, dayStartMs);
        const now = daySeries(blueprint, running.get(host.name) ?? [], host.cores, dayStartMs);
        return { host: host.name, cores: host.cores, planDemandCores: plan.demand, nowDemandCores: now.demand, planReadyPercent: plan.ready, nowReadyPercent: now.ready };
      });
      const failures = cached(failureCache, blueprint, plane.blueprintVersion, () =>
        analyseFailures(blueprint, placement.placements, failureCases(blueprint, { pairs: false })).map((outcome) => ({
          kind: outcome.failed.kind,
          ids: [...outcome.failed.ids],
          survivable: outcome.survivable,
          shed: [...outcome.shed],
          lost: [...outcome.lost],
          late: [...outcome.late],
          worstRtoEstimateS: round(outcome.worstRtoEstimateS, 1),
        })),
      );
      return { dayStartMs, nowMs, hosts, failures };
    },
  );

  route(
    app,
    {
      method: 'GET',
      url: '/security',
      summary: 'The segmentation graph between services, attack paths to continuous services, quarantined VMs and recent anomalies',
      tag: 'insight',
      permission: 'blueprint.read',
    },
    async () => {
      const security = cached(securityCache, plane.blueprint, plane.blueprintVersion, () => securityOf(plane.blueprint));
      const quarantined = [...plane.view.quarantined];
      const from = Math.max(1, deps.journal.length - ANOMALY_SCAN_LIMIT + 1);
      const anomalies: z.infer<typeof Anomaly>[] = [];
      for (const entry of entriesBetween(deps.journal, from, Number.MAX_SAFE_INTEGER, ANOMALY_SCAN_LIMIT)) {
        if (ANOMALY_TYPES.test(entry.type)) anomalies.push({ seq: entry.seq, atMs: entry.atMs, type: entry.type, subject: entry.subject, data: entry.data });
      }
      return { ...security, quarantined, anomalies: anomalies.slice(-50).reverse() };
    },
  );
};

/** Service-level segmentation edges and, per entry point, the shortest path to each continuous service. */
function securityOf(blueprint: Blueprint) {
  const policy = compileSegmentation(blueprint);
  const serviceOfVm = new Map(blueprint.vms.map((vm) => [vm.name, vm.service]));
  const endpoint = (name: string) => serviceOfVm.get(name) ?? name;
  const edges = new Map<string, { from: string; to: string; ports: Set<number> }>();
  for (const rule of policy.rules) {
    const from = endpoint(rule.from);
    const to = endpoint(rule.to);
    if (from === to) continue;
    const key = `${from}→${to}`;
    const edge = edges.get(key) ?? { from, to, ports: new Set<number>() };
    edge.ports.add(rule.port);
    edges.set(key, edge);
  }
  const analysis = analyzeAttackPaths(blueprint, { policy, coverSize: 5 });
  const nodes = [
    ...blueprint.services.map((service) => ({ id: service.name, kind: 'service', tier: service.tier })),
    ...policy.networks.map((network) => ({ id: network.name, kind: `network:${network.kind}`, tier: null as string | null })),
  ];
  return {
    totals: policy.totals,
    nodes,
    edges: [...edges.values()].map((edge) => ({ from: edge.from, to: edge.to, ports: [...edge.ports].sort((a, b) => a - b) })),
    entries: analysis.segmented.entries.map((entry) => ({
      entry: entry.entry,
      kind: entry.kind,
      description: entry.description,
      vmsReached: entry.vmsReached,
      continuousReached: entry.continuousReached,
      paths: entry.continuousPaths.map((path) => ({ service: path.service, hops: path.hops === null ? null : path.hops.map((hop) => `${hop.from}→${hop.to}`) })),
    })),
    flatVmsReachedMax: analysis.flat.vmsReachedFromEntriesMax,
    segmentedVmsReachedMax: analysis.segmented.vmsReachedFromEntriesMax,
    cutFirst: analysis.cover.flows.map((flow) => ({ from: flow.from, to: flow.to, port: flow.port, pairsCut: flow.pairsCut })),
  };
}
