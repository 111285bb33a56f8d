/**
 * Leaving a hypervisor: the order and waves in which to move services to another one without
 * breaking their dependencies or tiers, with the downtime each is estimated to take.
 * - Lowest tiers move first (deferred, then standard, critical, continuous): the method is proven
 *   on what can wait before it touches what cannot.
 * - No wave holds a service together with one it depends on or that depends on it, so a dependency
 *   is never down at the same time as its dependant; within a tier, dependants move before what
 *   they depend on (a database moves last, when every client already runs on the target).
 * - Downtime per service by its tier's mechanism: a continuous service gets its secondary built on
 *   the target while the primary runs, then fails over (its RTO); restart tiers pre-copy the disk
 *   while running and stop only for the final sync of changed blocks, conversion and boot; a
 *   deferred (restore) service is copied cold.
 */
import type { Blueprint, Service } from '../model/index.ts';
import { tierOf } from '../model/index.ts';

export interface MigrationAssumptions {
  /** Copy bandwidth between the old and the new platform. */
  readonly bandwidthGbps: number;
  /** Share of a disk that changes between the pre-copy and the final sync. */
  readonly changedShare: number;
  /** Disk format conversion and driver change at the cut-over (e.g. VMDK → qcow2, vmxnet3 → virtio). */
  readonly conversionS: number;
}

export const DEFAULT_MIGRATION_ASSUMPTIONS: MigrationAssumptions = Object.freeze({ bandwidthGbps: 10, changedShare: 0.02, conversionS: 30 });

export interface ServiceMove {
  readonly service: string;
  readonly tier: string;
  readonly vms: number;
  readonly diskGiB: number;
  readonly method: 'secondary-then-failover' | 'pre-copy-then-cutover' | 'cold-copy';
  readonly downtimeEstimateS: number;
  readonly rtoTargetS: number;
  readonly withinRto: boolean;
}

export interface MigrationWave {
  readonly wave: number;
  readonly tier: string;
  readonly moves: readonly ServiceMove[];
}

export interface MigrationPlan {
  readonly blueprint: string;
  readonly target: string;
  readonly assumptions: MigrationAssumptions;
  readonly waves: readonly MigrationWave[];
  /** Waves run one after another: the sum of each wave's longest downtime. */
  readonly totalDowntimeEstimateS: number;
}

const copyS = (diskGiB: number, assumptions: MigrationAssumptions) => (diskGiB * 8) / assumptions.bandwidthGbps;

function move(blueprint: Blueprint, service: Service, assumptions: MigrationAssumptions): ServiceMove {
  const tier = tierOf(blueprint, service);
  const diskGiB = service.vms.reduce((sum, vm) => sum + vm.diskGiB, 0);
  const largestDiskGiB = Math.max(...service.vms.map((vm) => vm.diskGiB));
  const bootS = Math.max(...service.vms.map((vm) => vm.bootTimeS));
  let method: ServiceMove['method'];
  let downtime: number;
  if (tier.mechanism === 'failover') {
    method = 'secondary-then-failover';
    downtime = tier.rtoS;
  } else if (tier.mechanism === 'restart') {
    method = 'pre-copy-then-cutover';
    downtime = copyS(largestDiskGiB * assumptions.changedShare, assumptions) + assumptions.conversionS + bootS;
  } else {
    method = 'cold-copy';
    downtime = copyS(diskGiB, assumptions) + assumptions.conversionS + bootS;
  }
  const downtimeEstimateS = Math.round(downtime);
  return { service: service.name, tier: tier.name, vms: service.vms.length, diskGiB, method, downtimeEstimateS, rtoTargetS: tier.rtoS, withinRto: downtimeEstimateS <= tier.rtoS };
}

export function planMigration(blueprint: Blueprint, target: string, assumptions: MigrationAssumptions = DEFAULT_MIGRATION_ASSUMPTIONS): MigrationPlan {
  const byTier = new Map<number, Service[]>();
  for (const service of blueprint.services) {
    const priority = tierOf(blueprint, service).priority;
    byTier.set(priority, [...(byTier.get(priority) ?? []), service]);
  }
  const related = (a: Service, b: Service) => a.dependsOn.includes(b.name) || b.dependsOn.includes(a.name);
  const waves: MigrationWave[] = [];
  for (const priority of [...byTier.keys()].sort((a, b) => b - a)) {
    let remaining = [...byTier.get(priority)!].sort((a, b) => a.order - b.order);
    for (let guard = 0; remaining.length > 0 && guard <= blueprint.services.length; guard++) {
      // Dependants first: a service moves once nothing left in this tier depends on it.
      const ready = remaining.filter((service) => !remaining.some((other) => other !== service && other.dependsOn.includes(service.name)));
      const wave: Service[] = [];
      for (const service of ready.length > 0 ? ready : remaining.slice(0, 1)) if (!wave.some((member) => related(member, service))) wave.push(service);
      waves.push({ wave: waves.length + 1, tier: tierOf(blueprint, wave[0]!).name, moves: wave.map((service) => move(blueprint, service, assumptions)) });
      remaining = remaining.filter((service) => !wave.includes(service));
    }
  }
  const totalDowntimeEstimateS = waves.reduce((sum, wave) => sum + Math.max(...wave.moves.map((entry) => entry.downtimeEstimateS)), 0);
  return { blueprint: blueprint.name, target, assumptions, waves, totalDowntimeEstimateS };
}
