/**
 * ClusterConfigSpecEx, the one argument of ReconfigureComputeResource_Task, built from typed
 * changes: HA VM overrides (ClusterDasVmConfigSpec), DRS VM and host groups (ClusterGroupSpec),
 * rules (ClusterRuleSpec: anti-affinity, VM-host, VM-VM dependency) and HA admission control
 * (ClusterFailoverResourcesAdmissionControlPolicy). Elements follow the WSDL's order.
 */
import type { IsolationResponse, RestartPriority } from './inventory.ts';
import { element, escapeXml, moRef, typed, type MoRef } from './xml.ts';

export type GroupSpec = { readonly kind: 'vm'; readonly name: string; readonly members: readonly MoRef[] } | { readonly kind: 'host'; readonly name: string; readonly members: readonly MoRef[] };

export type RuleSpec =
  | { readonly kind: 'antiAffinity'; readonly name: string; readonly mandatory: boolean; readonly vms: readonly MoRef[] }
  | { readonly kind: 'vmHost'; readonly name: string; readonly mandatory: boolean; readonly vmGroup: string; readonly affineHostGroup: string }
  | { readonly kind: 'dependency'; readonly name: string; readonly mandatory: boolean; readonly vmGroup: string; readonly dependsOnVmGroup: string };

export type ClusterChange =
  | { readonly kind: 'override'; readonly operation: 'add' | 'edit'; readonly vm: MoRef; readonly restartPriority: RestartPriority; readonly isolationResponse: IsolationResponse }
  | { readonly kind: 'override'; readonly operation: 'remove'; readonly vm: MoRef }
  | { readonly kind: 'group'; readonly operation: 'add' | 'edit'; readonly group: GroupSpec }
  | { readonly kind: 'group'; readonly operation: 'remove'; readonly name: string }
  | { readonly kind: 'rule'; readonly operation: 'add'; readonly rule: RuleSpec }
  | { readonly kind: 'rule'; readonly operation: 'edit'; readonly key: number; readonly rule: RuleSpec }
  | { readonly kind: 'rule'; readonly operation: 'remove'; readonly key: number }
  | { readonly kind: 'admission'; readonly cpuPercent: number; readonly memoryPercent: number };

export function clusterConfigSpec(changes: readonly ClusterChange[]): string {
  const parts: string[] = [];
  const admission = changes.find((change) => change.kind === 'admission');
  if (admission !== undefined && admission.kind === 'admission') {
    parts.push(
      `<dasConfig>${element('enabled', true)}${typed(
        'admissionControlPolicy',
        'ClusterFailoverResourcesAdmissionControlPolicy',
        element('cpuFailoverResourcesPercent', admission.cpuPercent) + element('memoryFailoverResourcesPercent', admission.memoryPercent),
      )}${element('admissionControlEnabled', true)}</dasConfig>`,
    );
  }
  for (const change of changes) if (change.kind === 'override') parts.push(overrideSpec(change));
  const rules = changes.filter((change) => change.kind === 'rule');
  const groups = changes.filter((change) => change.kind === 'group');
  // Rules go before groups in the WSDL; vCenter checks a rule's groups after the whole spec applies.
  for (const change of rules) parts.push(ruleSpec(change));
  for (const change of groups) parts.push(groupSpec(change));
  return typed('spec', 'ClusterConfigSpecEx', parts.join(''));
}

function overrideSpec(change: Extract<ClusterChange, { kind: 'override' }>): string {
  if (change.operation === 'remove') {
    return `<dasVmConfigSpec>${element('operation', 'remove')}<removeKey xsi:type="ManagedObjectReference" type="${escapeXml(change.vm.type)}">${escapeXml(change.vm.value)}</removeKey></dasVmConfigSpec>`;
  }
  const settings = element('restartPriority', change.restartPriority) + element('isolationResponse', change.isolationResponse);
  return `<dasVmConfigSpec>${element('operation', change.operation)}<info>${moRef('key', change.vm)}<dasSettings>${settings}</dasSettings></info></dasVmConfigSpec>`;
}

function groupSpec(change: Extract<ClusterChange, { kind: 'group' }>): string {
  if (change.operation === 'remove') return `<groupSpec>${element('operation', 'remove')}<removeKey xsi:type="xsd:string">${escapeXml(change.name)}</removeKey></groupSpec>`;
  const { group } = change;
  const members = group.members.map((ref) => moRef(group.kind === 'vm' ? 'vm' : 'host', ref)).join('');
  return `<groupSpec>${element('operation', change.operation)}${typed('info', group.kind === 'vm' ? 'ClusterVmGroup' : 'ClusterHostGroup', element('name', group.name) + members)}</groupSpec>`;
}

function ruleSpec(change: Extract<ClusterChange, { kind: 'rule' }>): string {
  if (change.operation === 'remove') return `<rulesSpec>${element('operation', 'remove')}<removeKey xsi:type="xsd:int">${change.key}</removeKey></rulesSpec>`;
  const { rule } = change;
  const head = (change.operation === 'edit' ? element('key', change.key) : '') + element('enabled', true) + element('name', rule.name) + element('mandatory', rule.mandatory) + element('userCreated', true);
  let info: string;
  switch (rule.kind) {
    case 'antiAffinity':
      info = typed('info', 'ClusterAntiAffinityRuleSpec', head + rule.vms.map((vm) => moRef('vm', vm)).join(''));
      break;
    case 'vmHost':
      info = typed('info', 'ClusterVmHostRuleInfo', head + element('vmGroupName', rule.vmGroup) + element('affineHostGroupName', rule.affineHostGroup));
      break;
    case 'dependency':
      info = typed('info', 'ClusterDependencyRuleInfo', head + element('vmGroup', rule.vmGroup) + element('dependsOnVmGroup', rule.dependsOnVmGroup));
      break;
  }
  return `<rulesSpec>${element('operation', change.operation)}${info}</rulesSpec>`;
}

/** The whole ReconfigureComputeResource_Task call for one cluster (modify: true merges into the present configuration). */
export function reconfigureClusterBody(cluster: MoRef, changes: readonly ClusterChange[]): string {
  return `<ReconfigureComputeResource_Task>${moRef('_this', cluster)}${clusterConfigSpec(changes)}${element('modify', true)}</ReconfigureComputeResource_Task>`;
}
