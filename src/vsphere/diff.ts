/**
 * The blueprint's vSphere settings against the live cluster: every setting that differs, as a line a
 * person reads (what, before, after, why) and as the typed change apply sends. Only groups and
 * rules named `tmr-…` are Tomaranai's: others are never edited or removed. Also the placement
 * findings drift reports: a VM running outside the room the plan gives it, or on a host that is not
 * connected.
 */
import type { Blueprint } from '../model/index.ts';
import type { ClusterChange, GroupSpec, RuleSpec } from '../substrate/vsphere/cluster-spec.ts';
import type { ClusterRule, Inventory, InventoryCluster } from '../substrate/vsphere/inventory.ts';
import type { MoRef } from '../substrate/vsphere/xml.ts';
import { matchNames, type NameMatch } from './names.ts';
import { TOMARANAI_PREFIX, type DesiredRule, type DesiredSettings } from './settings.ts';

export type SettingArea = 'override' | 'ft' | 'group' | 'rule' | 'admission' | 'placement';

export interface SettingDifference {
  readonly area: SettingArea;
  readonly action: 'add' | 'edit' | 'remove' | 'enable' | 'report';
  readonly target: string;
  readonly before: string;
  readonly after: string;
  readonly because: string;
}

export interface SettingsDiff {
  readonly cluster: string;
  readonly differences: readonly SettingDifference[];
  /** What ReconfigureComputeResource_Task gets: groups (add/edit) first, then overrides, rules and admission, then removals. */
  readonly groupChanges: readonly ClusterChange[];
  readonly otherChanges: readonly ClusterChange[];
  readonly removals: readonly ClusterChange[];
  /** VMs to protect with FT (CreateSecondaryVMEx_Task). */
  readonly ftToEnable: readonly { readonly vm: string; readonly ref: MoRef }[];
  readonly missingVms: readonly string[];
  readonly missingHosts: readonly string[];
  readonly clusterRef: MoRef | null;
}

const FT_ACTIVE = new Set(['enabled', 'running', 'starting', 'needSecondary']);
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

/** The cluster that runs most of the blueprint's VMs. */
export function clusterOfBlueprint(inventory: Inventory, match: NameMatch): InventoryCluster | null {
  const counts = new Map<InventoryCluster, number>();
  for (const vm of match.vms.values()) {
    const cluster = inventory.clusters.find((candidate) => vm.host !== null && candidate.hosts.includes(vm.host));
    if (cluster !== undefined) counts.set(cluster, (counts.get(cluster) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? inventory.clusters[0] ?? null;
}

export function diffSettings(blueprint: Blueprint, desired: DesiredSettings, inventory: Inventory): SettingsDiff {
  const match = matchNames(blueprint, inventory);
  const cluster = clusterOfBlueprint(inventory, match);
  const differences: SettingDifference[] = [];
  const groupChanges: ClusterChange[] = [];
  const otherChanges: ClusterChange[] = [];
  const removals: ClusterChange[] = [];
  const ftToEnable: { vm: string; ref: MoRef }[] = [];
  const empty = { cluster: cluster?.name ?? '(none)', differences, groupChanges, otherChanges, removals, ftToEnable, missingVms: match.missingVms, missingHosts: match.missingHosts, clusterRef: cluster?.ref ?? null };
  if (cluster === null) return empty;
  const live = cluster.configuration;
  const vmRef = (name: string) => match.vms.get(name)?.ref;
  const hostRef = (name: string) => match.hosts.get(name)?.ref;
  const vmNameOfRef = new Map([...match.vms].map(([name, vm]) => [vm.ref.value, name]));
  const hostNameOfRef = new Map([...match.hosts].map(([name, host]) => [host.ref.value, name]));

  for (const override of desired.overrides) {
    const ref = vmRef(override.vm);
    if (ref === undefined) continue;
    const current = live.overrides.get(ref.value);
    const after = `restart ${override.restartPriority}, isolation ${override.isolationResponse}`;
    if (current !== undefined && current.restartPriority === override.restartPriority && current.isolationResponse === override.isolationResponse) continue;
    const before = current === undefined ? '(cluster default)' : `restart ${current.restartPriority ?? 'default'}, isolation ${current.isolationResponse ?? 'default'}`;
    differences.push({ area: 'override', action: current === undefined ? 'add' : 'edit', target: override.vm, before, after, because: `tier ${override.tier}${override.readyCondition === 'guestHbStatusGreen' ? '; others depend on it' : ''}` });
    otherChanges.push({ kind: 'override', operation: current === undefined ? 'add' : 'edit', vm: ref, restartPriority: override.restartPriority, isolationResponse: override.isolationResponse });
  }

  for (const decision of desired.ft) {
    const vm = match.vms.get(decision.vm);
    if (vm === undefined) continue;
    if (!decision.eligible) {
      differences.push({ area: 'ft', action: 'report', target: decision.vm, before: vm.faultTolerance, after: 'no FT', because: `continuous, but ${decision.reasons.join('; ')}: HA restart at highest priority, Tomaranai's hot secondary in the other room` });
    } else if (!FT_ACTIVE.has(vm.faultTolerance)) {
      differences.push({ area: 'ft', action: 'enable', target: decision.vm, before: vm.faultTolerance, after: 'FT on', because: 'continuous: a secondary in lockstep, failover without restart' });
      ftToEnable.push({ vm: decision.vm, ref: vm.ref });
    }
  }

  const liveGroups = new Map(live.groups.map((group) => [group.name, group]));
  const wantedGroups = new Set(desired.groups.map((group) => group.name));
  for (const group of desired.groups) {
    const refs = group.members.map((member) => (group.kind === 'vm' ? vmRef(member) : hostRef(member))).filter((ref): ref is MoRef => ref !== undefined);
    const current = liveGroups.get(group.name);
    const names = (members: readonly string[]) => members.map((member) => (group.kind === 'vm' ? vmNameOfRef : hostNameOfRef).get(member) ?? member);
    if (current !== undefined && current.kind === group.kind && sameSet(current.members, refs.map((ref) => ref.value))) continue;
    const spec: GroupSpec = { kind: group.kind, name: group.name, members: refs };
    differences.push({ area: 'group', action: current === undefined ? 'add' : 'edit', target: group.name, before: current === undefined ? '(none)' : summarise(names(current.members)), after: summarise(group.members), because: `${group.kind} group` });
    groupChanges.push({ kind: 'group', operation: current === undefined ? 'add' : 'edit', group: spec });
  }
  for (const group of live.groups) {
    if (!group.name.startsWith(TOMARANAI_PREFIX) || wantedGroups.has(group.name)) continue;
    differences.push({ area: 'group', action: 'remove', target: group.name, before: `${group.members.length} members`, after: '(none)', because: 'a tmr- group the blueprint no longer implies' });
    removals.push({ kind: 'group', operation: 'remove', name: group.name });
  }

  const liveRules = new Map(live.rules.map((rule) => [rule.name, rule]));
  const wantedRules = new Set(desired.rules.map((rule) => rule.name));
  for (const rule of desired.rules) {
    const spec = ruleSpec(rule, vmRef);
    const current = liveRules.get(rule.name);
    if (current !== undefined && sameRule(current, spec)) continue;
    differences.push({ area: 'rule', action: current === undefined ? 'add' : 'edit', target: rule.name, before: current === undefined ? '(none)' : describeRule(current), after: describeDesired(rule), because: rule.because });
    otherChanges.push(current === undefined ? { kind: 'rule', operation: 'add', rule: spec } : { kind: 'rule', operation: 'edit', key: current.key, rule: spec });
  }
  for (const rule of live.rules) {
    if (!rule.name.startsWith(TOMARANAI_PREFIX) || wantedRules.has(rule.name)) continue;
    differences.push({ area: 'rule', action: 'remove', target: rule.name, before: describeRule(rule), after: '(none)', because: 'a tmr- rule the blueprint no longer implies' });
    removals.unshift({ kind: 'rule', operation: 'remove', key: rule.key });
  }

  const { admission } = desired;
  if (!live.admission.enabled || live.admission.cpuPercent !== admission.cpuPercent || live.admission.memoryPercent !== admission.memoryPercent) {
    const before = live.admission.enabled ? `${live.admission.cpuPercent ?? '?'} % CPU, ${live.admission.memoryPercent ?? '?'} % memory` : 'off';
    differences.push({ area: 'admission', action: live.admission.enabled ? 'edit' : 'add', target: cluster.name, before, after: `${admission.cpuPercent} % CPU, ${admission.memoryPercent} % memory reserved`, because: admission.because });
    otherChanges.push({ kind: 'admission', cpuPercent: admission.cpuPercent, memoryPercent: admission.memoryPercent });
  }

  differences.push(...placementFindings(blueprint, desired, match));
  return { ...empty, differences };
}

function placementFindings(blueprint: Blueprint, desired: DesiredSettings, match: NameMatch): SettingDifference[] {
  const findings: SettingDifference[] = [];
  const roomOfHost = new Map(blueprint.hosts.map((host) => [host.name, host.room]));
  const hostByRef = new Map([...match.hosts].map(([name, host]) => [host.ref.value, { name, host }]));
  for (const [vmName, vm] of match.vms) {
    const planned = roomOfHost.get(desired.placement.get(vmName) ?? '');
    const running = vm.host === null ? undefined : hostByRef.get(vm.host);
    if (running === undefined) continue;
    const room = roomOfHost.get(running.name);
    if (running.host.connectionState !== 'connected') {
      findings.push({ area: 'placement', action: 'report', target: vmName, before: `on ${running.name} (${running.host.connectionState})`, after: 'on a connected host', because: 'its host does not answer vCenter' });
    } else if (planned !== undefined && room !== planned) {
      findings.push({ area: 'placement', action: 'report', target: vmName, before: `in ${room} (${running.name})`, after: `in ${planned}`, because: 'the plan puts it in the other room (room separation)' });
    }
  }
  return findings;
}

function ruleSpec(rule: DesiredRule, vmRef: (name: string) => MoRef | undefined): RuleSpec {
  switch (rule.kind) {
    case 'antiAffinity':
      return { kind: 'antiAffinity', name: rule.name, mandatory: rule.mandatory, vms: rule.vms.map(vmRef).filter((ref): ref is MoRef => ref !== undefined) };
    case 'vmHost':
      return { kind: 'vmHost', name: rule.name, mandatory: rule.mandatory, vmGroup: rule.vmGroup, affineHostGroup: rule.affineHostGroup };
    case 'dependency':
      return { kind: 'dependency', name: rule.name, mandatory: rule.mandatory, vmGroup: rule.vmGroup, dependsOnVmGroup: rule.dependsOnVmGroup };
  }
}

function sameRule(live: ClusterRule, wanted: RuleSpec): boolean {
  if (live.kind !== wanted.kind || !live.enabled || live.mandatory !== wanted.mandatory) return false;
  if (live.kind === 'antiAffinity' && wanted.kind === 'antiAffinity') return sameSet(live.vms, wanted.vms.map((ref) => ref.value));
  if (live.kind === 'vmHost' && wanted.kind === 'vmHost') return live.vmGroup === wanted.vmGroup && live.affineHostGroup === wanted.affineHostGroup && live.antiAffineHostGroup === null;
  if (live.kind === 'dependency' && wanted.kind === 'dependency') return live.vmGroup === wanted.vmGroup && live.dependsOnVmGroup === wanted.dependsOnVmGroup;
  return false;
}

function describeRule(rule: ClusterRule): string {
  const state = `${rule.enabled ? '' : 'disabled, '}${rule.mandatory ? 'must' : 'should'}`;
  switch (rule.kind) {
    case 'antiAffinity':
    case 'affinity':
      return `${rule.kind === 'affinity' ? 'together' : 'apart'}: ${rule.vms.length} VMs (${state})`;
    case 'vmHost':
      return `${rule.vmGroup} ${rule.affineHostGroup ? `on ${rule.affineHostGroup}` : `not on ${rule.antiAffineHostGroup}`} (${state})`;
    case 'dependency':
      return `${rule.vmGroup} after ${rule.dependsOnVmGroup} (${state})`;
  }
}

function describeDesired(rule: DesiredRule): string {
  const state = rule.mandatory ? 'must' : 'should';
  switch (rule.kind) {
    case 'antiAffinity':
      return `apart: ${rule.vms.join(', ')} (${state})`;
    case 'vmHost':
      return `${rule.vmGroup} on ${rule.affineHostGroup} (${state})`;
    case 'dependency':
      return `${rule.vmGroup} after ${rule.dependsOnVmGroup} (${state})`;
  }
}

function summarise(members: readonly string[]): string {
  return members.length <= 4 ? members.join(', ') : `${members.slice(0, 3).join(', ')} … ${members.length} in all`;
}
