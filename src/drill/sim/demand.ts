/**
 * Clinical-demand scenarios on the twin: a weekday's outpatient peak, and a mass-casualty surge.
 * The hospital boots at Monday 00:00 (simulated), the scenario window is sampled once a minute,
 * and every VM's CPU ready time is measured — with the rebalancer on or off, so that the two can
 * be shown side by side.
 */
import { Controller } from '../../control/controller.ts';
import { createRandom } from '../../ports/random.ts';
import { MemoryJournal } from '../../journal/memory.ts';
import type { Blueprint } from '../../model/index.ts';
import { HOUR_MS } from '../../model/demand.ts';
import { Scheduler } from '../../substrate/twin/scheduler.ts';
import { Twin } from '../../substrate/twin/twin.ts';
import { InvariantAuditor } from './auditor.ts';
import { runChecked } from './run.ts';

export const DEMAND_SCENARIOS = ['outpatient-peak', 'mass-casualty'] as const;
export type DemandScenarioName = (typeof DEMAND_SCENARIOS)[number];

interface DemandScenario {
  readonly description: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly surge?: { readonly fromMs: number; readonly toMs: number };
}

const SCENARIOS: Record<DemandScenarioName, DemandScenario> = {
  'outpatient-peak': { description: 'a weekday from 07:00 to 18:00: reception from 08:00, EHR peaks near 10:00 and 14:00', fromMs: 7 * HOUR_MS, toMs: 18 * HOUR_MS },
  'mass-casualty': {
    description: 'a weekday morning; at 10:00 a mass-casualty event multiplies emergency, radiology and laboratory load (each service by its surge factor) for 4 hours',
    fromMs: 9 * HOUR_MS,
    toMs: 16 * HOUR_MS,
    surge: { fromMs: 10 * HOUR_MS, toMs: 14 * HOUR_MS },
  },
};

export interface VmReady {
  readonly vm: string;
  readonly service: string;
  readonly tier: string;
  readonly role: string;
  readonly maxReadyPercent: number;
  readonly meanReadyPercent: number;
  readonly minutesAbove2Percent: number;
}

export interface DemandRun {
  readonly scenario: DemandScenarioName;
  readonly description: string;
  readonly seed: number;
  readonly rebalance: boolean;
  readonly placement: 'balanced' | 'fewest-hosts';
  readonly samples: number;
  readonly vms: readonly VmReady[];
  readonly hosts: readonly { readonly host: string; readonly maxUtilisationPercent: number; readonly meanUtilisationPercent: number; readonly seriesPercent: readonly number[] }[];
  readonly maxReadyPercentByTier: Readonly<Record<string, number>>;
  readonly migrations: number;
  readonly shareChanges: number;
  readonly invariantViolations: number;
}

export function runDemandScenario(options: {
  blueprint: Blueprint;
  scenario: DemandScenarioName;
  seed: number;
  rebalance: boolean;
  /** 'fewest-hosts' consolidates the hospital first: the case where rebalancing matters. */
  placement?: 'balanced' | 'fewest-hosts';
}): DemandRun {
  const scenario = SCENARIOS[options.scenario];
  const random = createRandom(options.seed, 'demand');
  const scheduler = new Scheduler();
  const twin = new Twin(options.blueprint, scheduler, random.fork('twin'));
  const controller = new Controller({ blueprint: options.blueprint, substrate: twin, clock: scheduler, journal: new MemoryJournal(false), rebalance: options.rebalance, placementObjective: options.placement ?? 'balanced' });
  const auditor = new InvariantAuditor(options.blueprint, twin, controller, scheduler);
  controller.start();
  if (scenario.surge) {
    scheduler.at(scenario.surge.fromMs, () => twin.setSurge(true));
    scheduler.at(scenario.surge.toMs, () => twin.setSurge(false));
  }
  runChecked(scheduler, auditor, scenario.fromMs);
  const ready = new Map<string, { sum: number; max: number; above: number; count: number; role: string }>();
  const hostSeries = new Map<string, number[]>(options.blueprint.hosts.map((host) => [host.name, []]));
  let samples = 0;
  for (let atMs = scenario.fromMs; atMs <= scenario.toMs; atMs += 60_000) {
    runChecked(scheduler, auditor, atMs);
    samples++;
    const demandByHost = new Map<string, number>();
    for (const metric of twin.metrics()) {
      const key = `${metric.vm}|${metric.role}`;
      const entry = ready.get(key) ?? { sum: 0, max: 0, above: 0, count: 0, role: metric.role };
      entry.sum += metric.readyPercent;
      entry.max = Math.max(entry.max, metric.readyPercent);
      entry.above += metric.readyPercent > 2 ? 1 : 0;
      entry.count++;
      ready.set(key, entry);
      demandByHost.set(metric.host, (demandByHost.get(metric.host) ?? 0) + metric.demandCores);
    }
    for (const host of options.blueprint.hosts) hostSeries.get(host.name)!.push(Math.round(((demandByHost.get(host.name) ?? 0) / host.cores) * 1000) / 10);
  }
  controller.stop();
  const vmService = new Map(options.blueprint.vms.map((vm) => [vm.name, vm.service]));
  const services = new Map(options.blueprint.services.map((service) => [service.name, service]));
  const vms: VmReady[] = [...ready.entries()]
    .map(([key, entry]) => {
      const vm = key.split('|')[0]!;
      const service = services.get(vmService.get(vm)!)!;
      return {
        vm,
        service: service.name,
        tier: service.tier,
        role: entry.role,
        maxReadyPercent: round(entry.max),
        meanReadyPercent: round(entry.sum / Math.max(1, entry.count)),
        minutesAbove2Percent: entry.above,
      };
    })
    .sort((a, b) => a.vm.localeCompare(b.vm) || a.role.localeCompare(b.role));
  const maxReadyPercentByTier: Record<string, number> = {};
  for (const vm of vms) maxReadyPercentByTier[vm.tier] = Math.max(maxReadyPercentByTier[vm.tier] ?? 0, vm.maxReadyPercent);
  return {
    scenario: options.scenario,
    description: scenario.description,
    seed: options.seed,
    rebalance: options.rebalance,
    placement: options.placement ?? 'balanced',
    samples,
    vms,
    hosts: [...hostSeries.entries()].map(([host, series]) => ({
      host,
      maxUtilisationPercent: Math.max(0, ...series),
      meanUtilisationPercent: round(series.reduce((sum, value) => sum + value, 0) / Math.max(1, series.length)),
      seriesPercent: series,
    })),
    maxReadyPercentByTier,
    migrations: controller.migrations,
    shareChanges: controller.shareChanges,
    invariantViolations: auditor.violations.length,
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
