/**
 * Segmentation: the blueprint's allowed flows compiled into a default-deny, per-VM network policy
 * (who may talk to whom, on which port). The policy is a plain, frozen, serialisable object so the
 * Substrate port can carry it to a real substrate; the twin enforces the same object.
 *
 * Expansion: a flow between two services allows every VM of the source to every VM of the target
 * on the flow's port; a network endpoint (client, modality, a vendor VPN…) stays a network, since
 * the devices on it are not VMs Tomaranai runs. A service flow to itself allows no self-pair (a VM
 * talking to itself never crosses the network).
 *
 * The management network is not VM traffic. It carries the hosts' management plane (heartbeats,
 * fencing, live migration, storage and secondary replication) between hypervisors and the
 * controller, below the VMs' virtual NICs, so it needs no rule here and, by default deny, no VM
 * may reach it. That is also what lets the controller keep snapshotting, migrating and inspecting
 * a quarantined VM. A blueprint that declares a flow to a management network explicitly gets that
 * rule like any other (visible in the policy, and removed by a quarantine).
 */
import type { Blueprint } from './index.ts';
import { TomaranaiError } from '../errors/index.ts';

/** Port 0 is never a real TCP/UDP port (flows use 1–65535), so it marks "any port". */
export const ANY_PORT = 0;

export type EndpointKind = 'vm' | 'network';

export interface SegmentationRule {
  readonly from: string;
  readonly to: string;
  /** 1–65535, or ANY_PORT (only quarantine rules to and from the forensic network use it). */
  readonly port: number;
  readonly protocol: string | null;
  /** Indexes into blueprint.flows of the flows that allow this rule (empty for quarantine rules). */
  readonly flows: readonly number[];
  readonly origin: 'flow' | 'quarantine';
}

/** What a VM's virtual NIC enforces: its own ingress and egress allow-lists; everything else is denied. */
export interface VmPolicy {
  readonly vm: string;
  readonly service: string;
  readonly tier: string;
  readonly quarantined: boolean;
  readonly ingress: readonly { readonly from: string; readonly port: number; readonly protocol: string | null }[];
  readonly egress: readonly { readonly to: string; readonly port: number; readonly protocol: string | null }[];
}

export interface PolicyNetwork {
  readonly name: string;
  readonly kind: string;
  readonly vendor: string | null;
}

export interface SegmentationTotals {
  readonly rules: number;
  /** Rules between two VMs. */
  readonly vmToVmRules: number;
  /** Rules with a network at one end (or both). */
  readonly networkRules: number;
  readonly vms: number;
  /** Ordered pairs of distinct VMs with at least one allowed port. */
  readonly vmPairsAllowed: number;
  /** Ordered pairs of distinct VMs on a flat network, n × (n − 1): every pair, every port. */
  readonly vmPairsFlat: number;
  /** How many of the flat network's VM pairs the policy denies, in percent. */
  readonly reductionPercent: number;
}

export interface SegmentationPolicy {
  readonly blueprint: string;
  readonly defaultAction: 'deny';
  readonly networks: readonly PolicyNetwork[];
  readonly vms: readonly VmPolicy[];
  /** Every allowed (from, to, port), in blueprint flow order; quarantine rules come last. */
  readonly rules: readonly SegmentationRule[];
  readonly quarantined: readonly string[];
  readonly totals: SegmentationTotals;
}

export interface PolicyDiff {
  readonly removed: readonly SegmentationRule[];
  readonly added: readonly SegmentationRule[];
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new TomaranaiError('TMR_SEGMENTATION_INVARIANT', message);
}

export function ruleKey(rule: { from: string; to: string; port: number }): string {
  return `${rule.from}\u0000${rule.to}\u0000${rule.port}`;
}

/** The VMs' identity as the policy needs it: name, service and tier, in blueprint order. */
interface VmIdentity {
  readonly vm: string;
  readonly service: string;
  readonly tier: string;
}

/** Compiles the blueprint's flows into the per-VM default-deny policy. */
export function compileSegmentation(blueprint: Blueprint): SegmentationPolicy {
  const vmsOfService = new Map(blueprint.services.map((service) => [service.name, service.vms.map((vm) => vm.name)]));
  const networkNames = new Set(blueprint.networks.map((network) => network.name));
  const endpoints = (name: string, flow: number): string[] => {
    const vms = vmsOfService.get(name);
    if (vms !== undefined) return vms;
    check(networkNames.has(name), `flow ${flow} names "${name}", neither a service nor a network (validate the blueprint first)`);
    return [name];
  };

  const rules: SegmentationRule[] = [];
  const byKey = new Map<string, number>();
  blueprint.flows.forEach((flow, flowIndex) => {
    check(flow.port >= 1 && flow.port <= 65_535, `flow ${flowIndex} has port ${flow.port}, outside 1–65535`);
    for (const from of endpoints(flow.from, flowIndex)) {
      for (const to of endpoints(flow.to, flowIndex)) {
        if (from === to) continue;
        const key = ruleKey({ from, to, port: flow.port });
        const known = byKey.get(key);
        if (known !== undefined) {
          // A second flow allowing the same (from, to, port): one rule, both flows remembered, so
          // that removing one of them (attack-path analysis) keeps the rule.
          const rule = rules[known]!;
          rules[known] = { ...rule, flows: [...rule.flows, flowIndex] };
          continue;
        }
        byKey.set(key, rules.length);
        rules.push({ from, to, port: flow.port, protocol: flow.protocol, flows: [flowIndex], origin: 'flow' });
      }
    }
  });

  const identities: VmIdentity[] = blueprint.services.flatMap((service) =>
    service.vms.map((vm) => ({ vm: vm.name, service: service.name, tier: service.tier })),
  );
  const networks = blueprint.networks.map((network) => ({ name: network.name, kind: network.kind, vendor: network.vendor }));
  return assemble(blueprint.name, networks, identities, rules, []);
}

/** Builds the derived views (per-VM lists, totals) from the rules: the rules are the only truth. */
function assemble(
  blueprintName: string,
  networks: readonly PolicyNetwork[],
  identities: readonly VmIdentity[],
  rules: readonly SegmentationRule[],
  quarantined: readonly string[],
): SegmentationPolicy {
  const vmNames = new Set(identities.map((identity) => identity.vm));
  const ingress = new Map<string, { from: string; port: number; protocol: string | null }[]>();
  const egress = new Map<string, { to: string; port: number; protocol: string | null }[]>();
  for (const identity of identities) {
    ingress.set(identity.vm, []);
    egress.set(identity.vm, []);
  }
  const vmPairs = new Set<string>();
  let vmToVmRules = 0;
  for (const rule of rules) {
    egress.get(rule.from)?.push(Object.freeze({ to: rule.to, port: rule.port, protocol: rule.protocol }));
    ingress.get(rule.to)?.push(Object.freeze({ from: rule.from, port: rule.port, protocol: rule.protocol }));
    if (vmNames.has(rule.from) && vmNames.has(rule.to)) {
      vmToVmRules += 1;
      vmPairs.add(`${rule.from}\u0000${rule.to}`);
    }
  }
  const quarantinedSet = new Set(quarantined);
  const vms = identities.map((identity) =>
    Object.freeze({
      ...identity,
      quarantined: quarantinedSet.has(identity.vm),
      ingress: Object.freeze(ingress.get(identity.vm)!),
      egress: Object.freeze(egress.get(identity.vm)!),
    }),
  );
  const count = identities.length;
  const vmPairsFlat = count * (count - 1);
  const totals: SegmentationTotals = Object.freeze({
    rules: rules.length,
    vmToVmRules,
    networkRules: rules.length - vmToVmRules,
    vms: count,
    vmPairsAllowed: vmPairs.size,
    vmPairsFlat,
    reductionPercent: vmPairsFlat === 0 ? 0 : roundTo(100 * (1 - vmPairs.size / vmPairsFlat), 2),
  });
  return Object.freeze({
    blueprint: blueprintName,
    defaultAction: 'deny' as const,
    networks: Object.freeze(networks.map((network) => Object.freeze({ ...network }))),
    vms: Object.freeze(vms),
    rules: Object.freeze(rules.map((rule) => Object.freeze({ ...rule, flows: Object.freeze([...rule.flows]) }))),
    quarantined: Object.freeze([...quarantined]),
    totals,
  });
}

function roundTo(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function identitiesOf(policy: SegmentationPolicy): VmIdentity[] {
  return policy.vms.map((vm) => ({ vm: vm.vm, service: vm.service, tier: vm.tier }));
}

/**
 * The fast lookup: endpoint names get numeric ids and each allowed (from, to, port) one number,
 * (from × E + to) × 65536 + port, exact as long as E² × 65536 < 2^53 (E < 370,000 endpoints).
 * It is built once per policy object and kept in a WeakMap, so the policy itself stays plain.
 */
interface PolicyIndex {
  readonly ids: ReadonlyMap<string, number>;
  readonly endpointCount: number;
  readonly allowed: ReadonlySet<number>;
}

const indexes = new WeakMap<SegmentationPolicy, PolicyIndex>();

function indexOf(policy: SegmentationPolicy): PolicyIndex {
  const known = indexes.get(policy);
  if (known !== undefined) return known;
  const ids = new Map<string, number>();
  for (const vm of policy.vms) ids.set(vm.vm, ids.size);
  for (const network of policy.networks) if (!ids.has(network.name)) ids.set(network.name, ids.size);
  const endpointCount = ids.size;
  check(endpointCount * endpointCount * 65_536 < Number.MAX_SAFE_INTEGER, `${endpointCount} endpoints are too many for the numeric index`);
  const allowed = new Set<number>();
  for (const rule of policy.rules) {
    const from = ids.get(rule.from);
    const to = ids.get(rule.to);
    check(from !== undefined && to !== undefined, `rule ${rule.from} → ${rule.to} names an endpoint the policy does not know`);
    allowed.add((from * endpointCount + to) * 65_536 + rule.port);
  }
  const index = { ids, endpointCount, allowed };
  indexes.set(policy, index);
  return index;
}

/** True when the policy lets `from` open a connection to `to` on `port` (VM or network names). */
export function allows(policy: SegmentationPolicy, from: string, to: string, port: number): boolean {
  const index = indexOf(policy);
  const fromId = index.ids.get(from);
  const toId = index.ids.get(to);
  if (fromId === undefined || toId === undefined) return false;
  const pair = (fromId * index.endpointCount + toId) * 65_536;
  return index.allowed.has(pair + port) || index.allowed.has(pair + ANY_PORT);
}

/** The rules a VM's NIC enforces, as full rules (egress: it is the source; ingress: it is the target). */
export function rulesOfVm(policy: SegmentationPolicy, vm: string): { ingress: SegmentationRule[]; egress: SegmentationRule[] } {
  requireVm(policy, vm);
  return {
    ingress: policy.rules.filter((rule) => rule.to === vm),
    egress: policy.rules.filter((rule) => rule.from === vm),
  };
}

function requireVm(policy: SegmentationPolicy, vm: string): void {
  if (!policy.vms.some((entry) => entry.vm === vm)) {
    throw new TomaranaiError('TMR_SEGMENTATION_UNKNOWN_VM', `no VM "${vm}" in the policy of ${policy.blueprint}`);
  }
}

/**
 * Quarantines one VM: every rule from or to it goes, and it may reach only networks of kind
 * `forensic` (any port), and be reached only from them. Every other rule is unchanged (invariant 4
 * of DESIGN.md; `policyDiff` shows it). Idempotent. Without a forensic network the VM is isolated.
 */
export function quarantine(policy: SegmentationPolicy, vm: string): SegmentationPolicy {
  requireVm(policy, vm);
  if (policy.quarantined.includes(vm)) return policy;
  const kept = policy.rules.filter((rule) => rule.from !== vm && rule.to !== vm);
  const forensic = policy.networks.filter((network) => network.kind === 'forensic');
  const added: SegmentationRule[] = forensic.flatMap((network) => [
    { from: vm, to: network.name, port: ANY_PORT, protocol: null, flows: [], origin: 'quarantine' as const },
    { from: network.name, to: vm, port: ANY_PORT, protocol: null, flows: [], origin: 'quarantine' as const },
  ]);
  const result = assemble(policy.blueprint, policy.networks, identitiesOf(policy), [...kept, ...added], [...policy.quarantined, vm]);
  // Checked after the write: the quarantined VM touches nothing but forensic networks.
  const forensicNames = new Set(forensic.map((network) => network.name));
  for (const rule of result.rules) {
    if (rule.from === vm) check(forensicNames.has(rule.to), `quarantined ${vm} still reaches ${rule.to}`);
    if (rule.to === vm) check(forensicNames.has(rule.from), `quarantined ${vm} is still reached from ${rule.from}`);
  }
  check(result.rules.length === kept.length + added.length, 'quarantine changed rules it should not touch');
  return result;
}

/**
 * Lifts a VM's quarantine: its quarantine rules go and its rules from `baseline` (the compiled
 * policy) come back, except those with another VM that is still quarantined.
 */
export function release(policy: SegmentationPolicy, baseline: SegmentationPolicy, vm: string): SegmentationPolicy {
  requireVm(policy, vm);
  if (!policy.quarantined.includes(vm)) return policy;
  const stillQuarantined = new Set(policy.quarantined.filter((name) => name !== vm));
  const kept = policy.rules.filter((rule) => !(rule.origin === 'quarantine' && (rule.from === vm || rule.to === vm)));
  const restored = baseline.rules.filter(
    (rule) => (rule.from === vm || rule.to === vm) && !stillQuarantined.has(rule.from) && !stillQuarantined.has(rule.to),
  );
  return assemble(policy.blueprint, policy.networks, identitiesOf(policy), [...kept, ...restored], [...stillQuarantined]);
}

/** Rules in `a` but not in `b` (removed) and in `b` but not in `a` (added), compared by (from, to, port). */
export function policyDiff(a: SegmentationPolicy, b: SegmentationPolicy): PolicyDiff {
  const keysA = new Set(a.rules.map(ruleKey));
  const keysB = new Set(b.rules.map(ruleKey));
  return {
    removed: a.rules.filter((rule) => !keysB.has(ruleKey(rule))),
    added: b.rules.filter((rule) => !keysA.has(ruleKey(rule))),
  };
}

/**
 * The flat network the policy is measured against: every VM and every network may reach every
 * other VM and network on any port (on an unsegmented network the management plane is exposed too).
 */
export function flatPolicy(blueprint: Blueprint): SegmentationPolicy {
  const networks = blueprint.networks.map((network) => ({ name: network.name, kind: network.kind, vendor: network.vendor }));
  const names = [...blueprint.vms.map((vm) => vm.name), ...networks.map((network) => network.name)];
  const rules: SegmentationRule[] = [];
  for (const from of names) {
    for (const to of names) {
      if (from !== to) rules.push({ from, to, port: ANY_PORT, protocol: null, flows: [], origin: 'flow' });
    }
  }
  const identities: VmIdentity[] = blueprint.services.flatMap((service) =>
    service.vms.map((vm) => ({ vm: vm.name, service: service.name, tier: service.tier })),
  );
  return assemble(blueprint.name, networks, identities, rules, []);
}
