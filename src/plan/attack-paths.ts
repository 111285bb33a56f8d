/**
 * Attack paths: what an attacker who holds an entry point can reach through the allowed flows.
 *
 * The graph has a node per VM and per network and a directed edge wherever the policy lets one
 * open a connection to the other: an attacker on the source can attack the target's listening
 * port, never the other way round. Networks are nodes too, so a path may cross one (RIS → the
 * modality network → PACS: the unpatchable modalities are a stepping stone), except a forensic
 * network: it is the responders' isolated segment whose collectors take evidence from quarantined
 * VMs and pull their images, so it is a dead end here; treating it as a pivot would link every
 * quarantined VM to every other, which the substrate must prevent (one forensic case per VM).
 * Entry points are the
 * places attacks on hospitals came in through: each vendor's remote-maintenance VPN, the systems
 * exposed to the internet (DMZ), the terminal (client) network and the modality network.
 *
 * Everything is computed twice: under the segmentation policy and on a flat network (everyone
 * reaches everyone on any port), the baseline the policy is measured against. The flow ranking
 * removes each blueprint flow in turn and counts the entry → continuous-service pairs that become
 * unreachable; a greedy cover then picks a few flows that together cut the most.
 */
import type { Blueprint, Flow } from '../model/index.ts';
import { compileSegmentation, flatPolicy, type SegmentationPolicy } from '../model/segmentation.ts';

/** A directed edge: every rule from one node to another, merged. */
interface Edge {
  readonly from: number;
  readonly to: number;
  readonly ports: readonly number[];
  /** Per rule, the blueprint flows that allow it; an empty list (a quarantine rule) never dies. */
  readonly ruleFlows: readonly (readonly number[])[];
}

export interface AttackGraph {
  readonly names: readonly string[];
  readonly ids: ReadonlyMap<string, number>;
  readonly isVm: readonly boolean[];
  /** False for forensic networks: a search stops there unless it starts there. */
  readonly transit: readonly boolean[];
  readonly edges: readonly Edge[];
  /** Per node, the ids of its outgoing edges, in policy rule order (so BFS is deterministic). */
  readonly outgoing: readonly (readonly number[])[];
}

export function attackGraph(policy: SegmentationPolicy): AttackGraph {
  const names: string[] = [];
  const ids = new Map<string, number>();
  const isVm: boolean[] = [];
  const transit: boolean[] = [];
  const add = (name: string, vm: boolean, through: boolean): void => {
    if (ids.has(name)) return;
    ids.set(name, names.length);
    names.push(name);
    isVm.push(vm);
    transit.push(through);
  };
  for (const vm of policy.vms) add(vm.vm, true, true);
  for (const network of policy.networks) add(network.name, false, network.kind !== 'forensic');
  const edgeOf = new Map<number, { from: number; to: number; ports: number[]; ruleFlows: (readonly number[])[] }>();
  const order: number[] = [];
  for (const rule of policy.rules) {
    const from = ids.get(rule.from);
    const to = ids.get(rule.to);
    if (from === undefined || to === undefined) throw new Error(`rule ${rule.from} → ${rule.to} names an unknown endpoint`);
    const key = from * names.length + to;
    let edge = edgeOf.get(key);
    if (edge === undefined) {
      edge = { from, to, ports: [], ruleFlows: [] };
      edgeOf.set(key, edge);
      order.push(key);
    }
    if (!edge.ports.includes(rule.port)) edge.ports.push(rule.port);
    edge.ruleFlows.push(rule.flows);
  }
  const edges = order.map((key) => edgeOf.get(key)!);
  const outgoing: number[][] = names.map(() => []);
  edges.forEach((edge, index) => outgoing[edge.from]!.push(index));
  return { names, ids, isVm, transit, edges, outgoing };
}

/** Breadth-first search from several starts; `dead[edge]` edges are skipped. Returns parent edges (−1: start, −2: unreached). */
function search(graph: AttackGraph, starts: readonly number[], dead?: Uint8Array): Int32Array {
  const parent = new Int32Array(graph.names.length).fill(-2);
  const queue = new Int32Array(graph.names.length);
  let head = 0;
  let tail = 0;
  for (const start of starts) {
    if (parent[start] !== -2) continue;
    parent[start] = -1;
    queue[tail++] = start;
  }
  while (head < tail) {
    const node = queue[head++]!;
    if (parent[node] !== -1 && !graph.transit[node]) continue;
    for (const edgeId of graph.outgoing[node]!) {
      if (dead !== undefined && dead[edgeId] === 1) continue;
      const to = graph.edges[edgeId]!.to;
      if (parent[to] !== -2) continue;
      parent[to] = edgeId;
      queue[tail++] = to;
    }
  }
  return parent;
}

function startIds(graph: AttackGraph, entry: string | readonly string[]): number[] {
  const starts = typeof entry === 'string' ? [entry] : entry;
  return starts.map((name) => {
    const id = graph.ids.get(name);
    if (id === undefined) throw new Error(`"${name}" is neither a VM nor a network of the policy`);
    return id;
  });
}

/**
 * Every VM and network an attacker holding `entry` (a VM or network name, or several) can reach
 * through allowed flows, the entry itself included. The lead's ransomware-lateral scenario stays
 * inside this set.
 */
export function reachableFrom(policyOrGraph: SegmentationPolicy | AttackGraph, entry: string | readonly string[]): Set<string> {
  const graph = 'edges' in policyOrGraph ? policyOrGraph : attackGraph(policyOrGraph);
  const parent = search(graph, startIds(graph, entry));
  const reached = new Set<string>();
  parent.forEach((value, node) => {
    if (value !== -2) reached.add(graph.names[node]!);
  });
  return reached;
}

export type EntryKind = 'vendor' | 'dmz' | 'client' | 'modality';

export interface EntryPoint {
  readonly id: string;
  readonly kind: EntryKind;
  /** What the attacker holds at the start: a network, or the VMs of an internet-exposed service. */
  readonly sources: readonly string[];
  readonly description: string;
}

/** The entry points of a blueprint, in a fixed order: vendor VPNs, DMZ systems, terminals, modalities. */
export function entryPoints(blueprint: Blueprint): EntryPoint[] {
  const kindOf = new Map(blueprint.networks.map((network) => [network.name, network.kind]));
  const entries: EntryPoint[] = [];
  for (const network of blueprint.networks) {
    if (network.kind !== 'vendor') continue;
    entries.push({
      id: `vendor:${network.name}`,
      kind: 'vendor',
      sources: [network.name],
      description: `remote-maintenance VPN of ${network.vendor ?? 'an unnamed vendor'}`,
    });
  }
  const exposed = new Set(blueprint.flows.filter((flow) => kindOf.get(flow.from) === 'external').map((flow) => flow.to));
  for (const service of blueprint.services) {
    const inDmz = service.network !== null && kindOf.get(service.network) === 'dmz';
    if (!exposed.has(service.name) && !inDmz) continue;
    entries.push({
      id: `dmz:${service.name}`,
      kind: 'dmz',
      sources: service.vms.map((vm) => vm.name),
      description: exposed.has(service.name) ? `${service.name}, reachable from the internet` : `${service.name}, in the DMZ`,
    });
  }
  for (const kind of ['client', 'modality'] as const) {
    for (const network of blueprint.networks) {
      if (network.kind !== kind) continue;
      entries.push({
        id: `${kind}:${network.name}`,
        kind,
        sources: [network.name],
        description: kind === 'client' ? 'terminal network (2,000+ PCs)' : 'modality network (unpatchable medical devices)',
      });
    }
  }
  return entries;
}

export interface Hop {
  readonly from: string;
  readonly to: string;
  /** Allowed ports on this hop; 0 means any port (flat network, forensic). */
  readonly ports: readonly number[];
}

export interface ServicePath {
  readonly service: string;
  readonly tier: string;
  /** Null when the service is unreachable from the entry. */
  readonly hops: readonly Hop[] | null;
}

export interface EntryReach {
  readonly entry: string;
  readonly kind: EntryKind;
  readonly description: string;
  readonly vmsReached: number;
  readonly vms: readonly string[];
  readonly servicesReached: readonly string[];
  readonly continuousReached: number;
  readonly criticalReached: number;
  /** The shortest path to each continuous service, in blueprint order. */
  readonly continuousPaths: readonly ServicePath[];
}

export interface BlastRadius {
  readonly vm: string;
  readonly service: string;
  readonly tier: string;
  /** VMs an attacker on this VM can reach, itself excluded. */
  readonly vmsReached: number;
  readonly continuousVms: number;
  readonly criticalVms: number;
  readonly vms: readonly string[];
}

/**
 * access: one end is a network (VPN, terminals, modalities, internet); dependency: the flow carries
 * a dependsOn edge between its services (removing it breaks one); undeclared: service to service
 * with no dependsOn behind it (allowed by a blanket rule such as "every system ↔ interface-engine").
 */
export type FlowCategory = 'access' | 'dependency' | 'undeclared';

export interface FlowCut {
  readonly flow: number;
  readonly from: string;
  readonly to: string;
  readonly port: number;
  readonly protocol: string | null;
  readonly category: FlowCategory;
  /** True when the flow carries a dependsOn edge between its two services: harden it, removing it breaks a service. */
  readonly carriesDependency: boolean;
  /** Entry → continuous-service pairs that become unreachable without this flow (for a cover: in addition to those before it). */
  readonly pairsCut: number;
  readonly pairs: readonly string[];
}

export interface FlowCover {
  readonly flows: readonly FlowCut[];
  readonly pairsCut: number;
  readonly pairsBefore: number;
}

export interface ReachSummary {
  readonly entries: readonly EntryReach[];
  readonly blastRadius: readonly BlastRadius[];
  /** Entry → continuous-service pairs with a path. */
  readonly continuousPairsReachable: number;
  readonly continuousPairsTotal: number;
  readonly vmsReachedFromEntriesMax: number;
  readonly blastRadiusMax: number;
  readonly blastRadiusMean: number;
}

export interface AttackPathAnalysis {
  readonly blueprint: string;
  readonly entryPoints: readonly EntryPoint[];
  readonly continuousServices: readonly string[];
  readonly segmented: ReachSummary;
  readonly flat: ReachSummary;
  /** Every flow whose removal alone cuts at least one entry → continuous pair, most first. */
  readonly ranking: readonly FlowCut[];
  /** A greedy set of flows that together cut the most pairs, any flow allowed. */
  readonly cover: FlowCover;
  /** The same greedy cover restricted to flows that carry no dependency (maintenance, terminals, DMZ…). */
  readonly coverWithoutDependencies: FlowCover;
}

export interface AttackPathOptions {
  readonly policy?: SegmentationPolicy;
  /** Flows in each greedy cover, at most. */
  readonly coverSize?: number;
}

interface Context {
  readonly blueprint: Blueprint;
  readonly graph: AttackGraph;
  readonly entries: readonly EntryPoint[];
  readonly entryStarts: readonly (readonly number[])[];
  readonly tierOfVm: ReadonlyMap<string, string>;
  readonly serviceOfVm: ReadonlyMap<string, string>;
  /** Per continuous service, the node ids of its VMs. */
  readonly continuous: readonly { readonly service: string; readonly tier: string; readonly nodes: readonly number[] }[];
}

function context(blueprint: Blueprint, policy: SegmentationPolicy, entries: readonly EntryPoint[]): Context {
  const graph = attackGraph(policy);
  const tierOfVm = new Map<string, string>();
  const serviceOfVm = new Map<string, string>();
  for (const vm of policy.vms) {
    tierOfVm.set(vm.vm, vm.tier);
    serviceOfVm.set(vm.vm, vm.service);
  }
  const continuous = blueprint.services
    .filter((service) => service.tier === 'continuous')
    .map((service) => ({ service: service.name, tier: service.tier, nodes: service.vms.map((vm) => graph.ids.get(vm.name)!) }));
  return { blueprint, graph, entries, entryStarts: entries.map((entry) => startIds(graph, entry.sources)), tierOfVm, serviceOfVm, continuous };
}

function pathTo(graph: AttackGraph, parent: Int32Array, target: number): Hop[] {
  const hops: Hop[] = [];
  let node = target;
  // A path is at most one hop per node: the bound keeps a corrupt parent array from looping forever.
  for (let guard = 0; guard <= graph.names.length; guard++) {
    const edgeId = parent[node]!;
    if (edgeId < 0) return hops.reverse();
    const edge = graph.edges[edgeId]!;
    hops.push({ from: graph.names[edge.from]!, to: graph.names[edge.to]!, ports: [...edge.ports].sort((a, b) => a - b) });
    node = edge.from;
  }
  throw new Error('a shortest path longer than the graph: the search is corrupt');
}

function summarise(context: Context): ReachSummary {
  const { graph } = context;
  const entries: EntryReach[] = context.entries.map((entry, index) => {
    const parent = search(graph, context.entryStarts[index]!);
    const vms = graph.names.filter((name, node) => graph.isVm[node] && parent[node] !== -2);
    const services = [...new Set(vms.map((vm) => context.serviceOfVm.get(vm)!))];
    const continuousPaths = context.continuous.map(({ service, tier, nodes }) => {
      // BFS reaches nodes in distance order, so the nearest VM of the service has the shortest path.
      let best: Hop[] | null = null;
      for (const node of nodes) {
        if (parent[node] === -2) continue;
        const hops = pathTo(graph, parent, node);
        if (best === null || hops.length < best.length) best = hops;
      }
      return { service, tier, hops: best };
    });
    return {
      entry: entry.id,
      kind: entry.kind,
      description: entry.description,
      vmsReached: vms.length,
      vms,
      servicesReached: services,
      continuousReached: continuousPaths.filter((path) => path.hops !== null).length,
      criticalReached: services.filter((service) => context.blueprint.services.find((s) => s.name === service)?.tier === 'critical').length,
      continuousPaths,
    };
  });
  const blastRadius: BlastRadius[] = [];
  graph.names.forEach((name, node) => {
    if (!graph.isVm[node]) return;
    const parent = search(graph, [node]);
    const vms = graph.names.filter((other, otherNode) => graph.isVm[otherNode] && otherNode !== node && parent[otherNode] !== -2);
    blastRadius.push({
      vm: name,
      service: context.serviceOfVm.get(name)!,
      tier: context.tierOfVm.get(name)!,
      vmsReached: vms.length,
      continuousVms: vms.filter((vm) => context.tierOfVm.get(vm) === 'continuous').length,
      criticalVms: vms.filter((vm) => context.tierOfVm.get(vm) === 'critical').length,
      vms,
    });
  });
  // Stable sort: equal radii keep blueprint order.
  blastRadius.sort((a, b) => b.vmsReached - a.vmsReached);
  const pairs = entries.reduce((sum, entry) => sum + entry.continuousReached, 0);
  const radii = blastRadius.map((radius) => radius.vmsReached);
  return {
    entries,
    blastRadius,
    continuousPairsReachable: pairs,
    continuousPairsTotal: entries.length * context.continuous.length,
    vmsReachedFromEntriesMax: Math.max(0, ...entries.map((entry) => entry.vmsReached)),
    blastRadiusMax: Math.max(0, ...radii),
    blastRadiusMean: radii.length === 0 ? 0 : Math.round((100 * radii.reduce((sum, value) => sum + value, 0)) / radii.length) / 100,
  };
}

/** Which continuous services an entry reaches, as "entry → service" pairs, given its search. */
function pairsOfEntry(context: Context, entryIndex: number, parent: Int32Array): string[] {
  const pairs: string[] = [];
  for (const { service, nodes } of context.continuous) {
    if (nodes.some((node) => parent[node] !== -2)) pairs.push(`${context.entries[entryIndex]!.id} → ${service}`);
  }
  return pairs;
}

/** Reachable entry → continuous-service pairs with `dead` edges removed. */
function reachablePairs(context: Context, dead: Uint8Array): Set<string> {
  const pairs = new Set<string>();
  context.entryStarts.forEach((starts, index) => {
    for (const pair of pairsOfEntry(context, index, search(context.graph, starts, dead))) pairs.add(pair);
  });
  return pairs;
}

function edgeAlive(edge: Edge, removed: ReadonlySet<number>): boolean {
  return edge.ruleFlows.some((flows) => flows.length === 0 || flows.some((flow) => !removed.has(flow)));
}

/** Edges that die when every flow in `removed` is gone (a rule lives while one of its flows does). */
function deadEdges(context: Context, removed: ReadonlySet<number>): Uint8Array {
  const dead = new Uint8Array(context.graph.edges.length);
  context.graph.edges.forEach((edge, index) => {
    if (!edgeAlive(edge, removed)) dead[index] = 1;
  });
  return dead;
}

function flowCategory(blueprint: Blueprint, flow: Flow): FlowCategory {
  const from = blueprint.services.find((service) => service.name === flow.from);
  const to = blueprint.services.find((service) => service.name === flow.to);
  if (from === undefined || to === undefined) return 'access';
  return from.dependsOn.includes(to.name) || to.dependsOn.includes(from.name) ? 'dependency' : 'undeclared';
}

function describeCut(context: Context, flow: number, pairs: readonly string[]): FlowCut {
  const source = context.blueprint.flows[flow]!;
  const category = flowCategory(context.blueprint, source);
  return {
    flow,
    from: source.from,
    to: source.to,
    port: source.port,
    protocol: source.protocol,
    category,
    carriesDependency: category === 'dependency',
    pairsCut: pairs.length,
    pairs,
  };
}

/** Per flow used by some edge (the only flows whose removal can change anything), its edges; blueprint order. */
function edgesByFlow(context: Context): Map<number, number[]> {
  const byFlow = new Map<number, number[]>();
  context.graph.edges.forEach((edge, edgeId) => {
    for (const flows of edge.ruleFlows) {
      for (const flow of flows) {
        const list = byFlow.get(flow) ?? [];
        if (!list.includes(edgeId)) list.push(edgeId);
        byFlow.set(flow, list);
      }
    }
  });
  return new Map([...byFlow].sort((a, b) => a[0] - b[0]));
}

/**
 * For each candidate flow, the pairs (of `before`) it cuts when removed on top of `removed`.
 * Removing an edge can only change an entry's reach if the edge is in that entry's search tree,
 * so only those entries are searched again.
 */
function cutsOf(
  context: Context,
  candidates: readonly number[],
  flowEdges: ReadonlyMap<number, readonly number[]>,
  removed: ReadonlySet<number>,
): Map<number, string[]> {
  const dead = deadEdges(context, removed);
  const trees = context.entryStarts.map((starts) => {
    const parent = search(context.graph, starts, dead);
    return { parent, edges: new Set([...parent].filter((edgeId) => edgeId >= 0)) };
  });
  const cuts = new Map<number, string[]>();
  for (const flow of candidates) {
    if (removed.has(flow)) continue;
    const withFlow = new Set([...removed, flow]);
    const dying = (flowEdges.get(flow) ?? []).filter((edgeId) => dead[edgeId] === 0 && !edgeAlive(context.graph.edges[edgeId]!, withFlow));
    const pairs: string[] = [];
    if (dying.length > 0) {
      const after = dead.slice();
      for (const edgeId of dying) after[edgeId] = 1;
      trees.forEach((tree, entryIndex) => {
        if (!dying.some((edgeId) => tree.edges.has(edgeId))) return;
        const still = new Set(pairsOfEntry(context, entryIndex, search(context.graph, context.entryStarts[entryIndex]!, after)));
        for (const pair of pairsOfEntry(context, entryIndex, tree.parent)) if (!still.has(pair)) pairs.push(pair);
      });
    }
    cuts.set(flow, pairs);
  }
  return cuts;
}

function greedyCover(context: Context, candidates: readonly number[], flowEdges: ReadonlyMap<number, readonly number[]>, size: number): FlowCover {
  const removed = new Set<number>();
  const chosen: FlowCut[] = [];
  const before = reachablePairs(context, deadEdges(context, removed)).size;
  let cut = 0;
  // Bounded: at most `size` rounds, each removing one flow.
  for (let round = 0; round < size; round++) {
    const cuts = cutsOf(context, candidates, flowEdges, removed);
    let bestFlow = -1;
    let bestPairs: string[] = [];
    for (const flow of candidates) {
      const pairs = cuts.get(flow);
      if (pairs !== undefined && pairs.length > bestPairs.length) {
        bestFlow = flow;
        bestPairs = pairs;
      }
    }
    if (bestFlow < 0) break;
    removed.add(bestFlow);
    chosen.push(describeCut(context, bestFlow, bestPairs));
    cut += bestPairs.length;
  }
  return { flows: chosen, pairsCut: cut, pairsBefore: before };
}

/** The whole analysis: reach, shortest paths, blast radii, flow ranking and covers; and the flat baseline. */
export function analyzeAttackPaths(blueprint: Blueprint, options: AttackPathOptions = {}): AttackPathAnalysis {
  const policy = options.policy ?? compileSegmentation(blueprint);
  const coverSize = options.coverSize ?? 5;
  const entries = entryPoints(blueprint);
  const segmented = context(blueprint, policy, entries);
  const flat = context(blueprint, flatPolicy(blueprint), entries);

  const flowEdges = edgesByFlow(segmented);
  const candidates = [...flowEdges.keys()];
  const cuts = cutsOf(segmented, candidates, flowEdges, new Set());
  const ranking = candidates
    .map((flow) => describeCut(segmented, flow, cuts.get(flow) ?? []))
    .filter((cut) => cut.pairsCut > 0)
    .sort((a, b) => b.pairsCut - a.pairsCut || a.flow - b.flow);
  const removable = candidates.filter((flow) => flowCategory(blueprint, blueprint.flows[flow]!) !== 'dependency');

  return {
    blueprint: blueprint.name,
    entryPoints: entries,
    continuousServices: segmented.continuous.map((entry) => entry.service),
    segmented: summarise(segmented),
    flat: summarise(flat),
    ranking,
    cover: greedyCover(segmented, candidates, flowEdges, coverSize),
    coverWithoutDependencies: greedyCover(segmented, removable, flowEdges, coverSize),
  };
}
