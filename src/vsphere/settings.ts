/**
 * What a blueprint means in vSphere's own settings, one rule each:
 * - HA VM overrides: restart priority from the tier's priority (continuous highest, critical high,
 *   standard medium, the rest lowest); isolation response power-off for tiers with RPO 0 on shared
 *   storage (the restarted copy takes the disk at once, never two writers), shutdown otherwise; a
 *   ready condition (guest heartbeat green) for VMs another service depends on.
 * - FT for continuous VMs within vSphere 6.5 FT's limits (≤ 8 vCPU, ≤ 128 GiB, ≤ 2 TiB of disk, no
 *   NSX-T segment); for the rest, why not.
 * - DRS groups and rules (all named `tmr-…`, the only ones Tomaranai touches): a host group per room,
 *   a VM group per room holding the VMs the planner placed there with a should-run rule, an
 *   anti-affinity rule per service whose tier keeps its VMs apart, and a VM-VM dependency rule per
 *   dependsOn (a database restarts before the application that needs it).
 * - HA admission control: the share of CPU and memory the largest failure the blueprint must survive
 *   takes away, from the planner's failure analysis.
 */
import { analyseFailures, failureCases, hostsOfCase } from '../analysis/failure-analysis.ts';
import type { Placement } from '../capacity/capacity.ts';
import { planPlacement } from '../capacity/placement.ts';
import type { Blueprint } from '../model/index.ts';
import { tierOf } from '../model/index.ts';
import type { IsolationResponse, RestartPriority } from '../substrate/vsphere/inventory.ts';

export const TOMARANAI_PREFIX = 'tmr-';

export interface DesiredOverride {
  readonly vm: string;
  readonly service: string;
  readonly tier: string;
  readonly restartPriority: RestartPriority;
  readonly isolationResponse: IsolationResponse;
  /** When HA counts the VM as started for those that wait on it. */
  readonly readyCondition: 'poweredOn' | 'guestHbStatusGreen';
}

export interface FtDecision {
  readonly vm: string;
  readonly service: string;
  readonly eligible: boolean;
  /** Why not (empty when eligible). */
  readonly reasons: readonly string[];
}

export type DesiredGroup = { readonly kind: 'vm' | 'host'; readonly name: string; readonly members: readonly string[] };

export type DesiredRule =
  | { readonly kind: 'antiAffinity'; readonly name: string; readonly mandatory: boolean; readonly vms: readonly string[]; readonly because: string }
  | { readonly kind: 'vmHost'; readonly name: string; readonly mandatory: boolean; readonly vmGroup: string; readonly affineHostGroup: string; readonly because: string }
  | { readonly kind: 'dependency'; readonly name: string; readonly mandatory: boolean; readonly vmGroup: string; readonly dependsOnVmGroup: string; readonly because: string };

export interface DesiredAdmission {
  readonly cpuPercent: number;
  readonly memoryPercent: number;
  readonly because: string;
}

export interface DesiredSettings {
  readonly overrides: readonly DesiredOverride[];
  readonly ft: readonly FtDecision[];
  readonly groups: readonly DesiredGroup[];
  readonly rules: readonly DesiredRule[];
  readonly admission: DesiredAdmission;
  /** Blueprint VM → the host the planner puts its primary on. */
  readonly placement: ReadonlyMap<string, string>;
}

/** vSphere 6.5 FT limits per VM (Enterprise Plus): vCPU, memory, total virtual disk. */
export const FT_LIMITS = Object.freeze({ vcpu: 8, memoryGiB: 128, diskGiB: 2048 });

export function restartPriorityOf(tierPriority: number): RestartPriority {
  return (['highest', 'high', 'medium'] as const)[tierPriority] ?? 'lowest';
}

export interface CompileOptions {
  /** VMs on an NSX-T segment (FT does not support them). */
  readonly nsxVms?: ReadonlySet<string>;
}

export function compileSettings(blueprint: Blueprint, options: CompileOptions = {}): DesiredSettings {
  const planned = planPlacement(blueprint).placements;
  const placement = new Map([...planned].map(([vm, where]) => [vm, where.primary]));
  const dependedOn = new Set(blueprint.services.flatMap((service) => service.dependsOn));
  const overrides: DesiredOverride[] = [];
  const ft: FtDecision[] = [];
  for (const service of blueprint.services) {
    const tier = tierOf(blueprint, service);
    for (const vm of service.vms) {
      overrides.push({
        vm: vm.name,
        service: service.name,
        tier: tier.name,
        restartPriority: restartPriorityOf(tier.priority),
        isolationResponse: tier.rpoS === 0 ? 'powerOff' : 'shutdown',
        readyCondition: dependedOn.has(service.name) ? 'guestHbStatusGreen' : 'poweredOn',
      });
      if (tier.mechanism !== 'failover') continue;
      const reasons: string[] = [];
      if (vm.vcpu > FT_LIMITS.vcpu) reasons.push(`${vm.vcpu} vCPU, over FT's ${FT_LIMITS.vcpu}`);
      if (vm.memoryGiB > FT_LIMITS.memoryGiB) reasons.push(`${vm.memoryGiB} GiB of memory, over FT's ${FT_LIMITS.memoryGiB} GiB`);
      if (vm.diskGiB > FT_LIMITS.diskGiB) reasons.push(`${vm.diskGiB} GiB of disk, over FT's ${FT_LIMITS.diskGiB} GiB`);
      if (options.nsxVms?.has(vm.name)) reasons.push('on an NSX-T segment, which FT does not support');
      ft.push({ vm: vm.name, service: service.name, eligible: reasons.length === 0, reasons });
    }
  }
  const { groups, rules } = drsGroupsAndRules(blueprint, placement);
  return { overrides, ft, groups, rules, admission: admissionControl(blueprint, planned), placement };
}

function drsGroupsAndRules(blueprint: Blueprint, placement: ReadonlyMap<string, string>): { groups: DesiredGroup[]; rules: DesiredRule[] } {
  const groups: DesiredGroup[] = [];
  const rules: DesiredRule[] = [];
  const roomOfHost = new Map(blueprint.hosts.map((host) => [host.name, host.room]));
  for (const room of blueprint.rooms) {
    const hosts = blueprint.hosts.filter((host) => host.room === room).map((host) => host.name);
    const vms = blueprint.vms.filter((vm) => roomOfHost.get(placement.get(vm.name) ?? '') === room).map((vm) => vm.name);
    groups.push({ kind: 'host', name: `${TOMARANAI_PREFIX}hosts-${room}`, members: hosts });
    if (vms.length === 0) continue;
    groups.push({ kind: 'vm', name: `${TOMARANAI_PREFIX}vms-${room}`, members: vms });
    rules.push({
      kind: 'vmHost',
      name: `${TOMARANAI_PREFIX}vms-${room}-in-${room}`,
      mandatory: false,
      vmGroup: `${TOMARANAI_PREFIX}vms-${room}`,
      affineHostGroup: `${TOMARANAI_PREFIX}hosts-${room}`,
      because: `the planner places these ${vms.length} VMs in ${room} (room separation); a should-rule, so HA may still restart them in the other room`,
    });
  }
  const needsGroup = new Set(blueprint.services.filter((service) => service.dependsOn.length > 0).flatMap((service) => [service.name, ...service.dependsOn]));
  for (const service of blueprint.services) {
    const tier = tierOf(blueprint, service);
    const vms = service.vms.map((vm) => vm.name);
    if (needsGroup.has(service.name)) groups.push({ kind: 'vm', name: `${TOMARANAI_PREFIX}svc-${service.name}`, members: vms });
    if (vms.length > 1 && tier.antiAffinity !== 'none') {
      rules.push({
        kind: 'antiAffinity',
        name: `${TOMARANAI_PREFIX}apart-${service.name}`,
        mandatory: false,
        vms,
        because: `tier ${tier.name} keeps a service's VMs apart (${tier.antiAffinity}); DRS can only say "different hosts", the room groups carry the rest`,
      });
    }
  }
  for (const service of blueprint.services) {
    for (const dependency of service.dependsOn) {
      rules.push({
        kind: 'dependency',
        name: `${TOMARANAI_PREFIX}${service.name}-after-${dependency}`,
        mandatory: false,
        vmGroup: `${TOMARANAI_PREFIX}svc-${service.name}`,
        dependsOnVmGroup: `${TOMARANAI_PREFIX}svc-${dependency}`,
        because: `${service.name} depends on ${dependency}: HA restarts ${dependency} first`,
      });
    }
  }
  return { groups, rules };
}

/**
 * The largest share of the cluster's CPU and memory that one failure the blueprint must survive
 * takes away, among the cases the planner's failure analysis finds survivable (a case it cannot
 * survive is not made survivable by reserving more: it needs hosts, and plan says so).
 */
function admissionControl(blueprint: Blueprint, placements: ReadonlyMap<string, Placement>): DesiredAdmission {
  const protectedKinds = new Set(blueprint.protection.survive);
  const cases = failureCases(blueprint, { pairs: protectedKinds.has('hostPair') }).filter((failure) => protectedKinds.has(failure.kind));
  const outcomes = analyseFailures(blueprint, placements, cases);
  const totalCores = blueprint.hosts.reduce((sum, host) => sum + host.cores, 0);
  const totalMemory = blueprint.hosts.reduce((sum, host) => sum + host.memoryGiB, 0);
  let worst = { cpu: 0, memory: 0, label: 'no protected failure' };
  let unsurvivable = 0;
  for (const outcome of outcomes) {
    if (!outcome.survivable) unsurvivable++;
    const lost = blueprint.hosts.filter((host) => hostsOfCase(blueprint, outcome.failed).has(host.name));
    const cpu = Math.ceil((100 * lost.reduce((sum, host) => sum + host.cores, 0)) / totalCores);
    const memory = Math.ceil((100 * lost.reduce((sum, host) => sum + host.memoryGiB, 0)) / totalMemory);
    if (outcome.survivable && Math.max(cpu, memory) > Math.max(worst.cpu, worst.memory)) {
      worst = { cpu, memory, label: `${outcome.failed.kind} ${outcome.failed.ids.join('+')} (${lost.length} of ${blueprint.hosts.length} hosts)` };
    }
  }
  const note = unsurvivable > 0 ? `; ${unsurvivable} protected case(s) the planner finds unsurvivable need more hosts, not more reserve (tomaranai plan)` : '';
  return { cpuPercent: worst.cpu, memoryPercent: worst.memory, because: `the largest protected failure the plan survives: ${worst.label}${note}` };
}
