/**
 * The capacity commands: `plan FILE` (placement, failure analysis, admission control, cost and the
 * availability estimate: DESIGN.md's plan contract), `availability FILE` (the Monte Carlo over
 * years of component failures, each failure's effect measured on the twin) and `size FILE
 * --host-model M` (the fewest hosts of a model, compared with the estate before virtualisation).
 * The lead registers them on the main program. This is the edge: it runs drills on the twin for
 * the availability estimate and passes their measurements to the pure core (plan/availability.ts).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { createRandom } from '../ports/random.ts';
import { runDrill } from '../drill/sim/run.ts';
import { faultsScenario } from '../drill/sim/scenarios.ts';
import type { Blueprint } from '../model/index.ts';
import { estimateAvailability, type AvailabilityReport, type OutageCase, type OutageMeasurer } from '../analysis/availability.ts';
import { planPlacementExact } from '../plan/exact.ts';
import { planPlacement } from '../capacity/placement.ts';
import { buildPlanReport, type PlanReport } from '../analysis/plan-report.ts';
import { SIZE_NO_FIT_CODE, sizeCluster, type EstateFigures, type SizingResult } from '../analysis/sizing.ts';
import type { Fault } from '../substrate/twin/twin.ts';
import { parseSeed } from './arguments.ts';
import { table } from './format.ts';
import { TomaranaiError } from '../errors/index.ts';

export interface PlanIo {
  out(text: string): void;
  err(text: string): void;
}

/** Simulated years of the availability estimate unless --years says otherwise. */
export const DEFAULT_AVAILABILITY_YEARS = 10_000;
const MAX_AVAILABILITY_YEARS = 1_000_000;
/** How long a measuring drill waits after the fault for recovery before it calls a service "not back". */
const MEASURE_HORIZON_S = 6 * 3600;

function parseYears(value: string): number {
  const years = Number(value);
  if (!/^\d{1,7}$/.test(value) || years < 1 || years > MAX_AVAILABILITY_YEARS) throw new InvalidArgumentError(`a whole number of years from 1 to ${MAX_AVAILABILITY_YEARS}`);
  return years;
}

function faultOf(failure: OutageCase): Fault {
  switch (failure.kind) {
    case 'host':
      return { kind: 'host-crash', host: failure.id };
    case 'rack':
      return { kind: 'rack-failure', rack: failure.id };
    case 'room':
      return { kind: 'room-failure', room: failure.id };
    case 'powerFeed':
      return { kind: 'power-feed-failure', feed: failure.id };
    case 'datastore':
      return { kind: 'datastore-failure', datastore: failure.id };
  }
}

/**
 * Measures failures on the twin: the hospital boots, runs, the failures strike together and are
 * not repaired; each service's outage is its measured RTO from the drill's journal, null when it
 * was shed or not back within the horizon (down until the repair), 0 when unaffected.
 */
export function twinOutageMeasurer(blueprint: Blueprint, seed: number, onCase?: (cases: readonly OutageCase[]) => void): OutageMeasurer {
  return (cases) => {
    onCase?.(cases);
    const label = cases.map((failure) => `${failure.kind} ${failure.id}`).join(' + ');
    const { report } = runDrill({
      blueprint,
      scenario: faultsScenario('availability-case', label, cases.map(faultOf)),
      seed,
      horizonAfterFaultS: MEASURE_HORIZON_S,
    });
    const outage = new Map<string, number | null>();
    for (const service of report.services) {
      if (service.shed === true) outage.set(service.name, null);
      else if (!service.affected) outage.set(service.name, 0);
      else outage.set(service.name, service.rtoMeasuredS);
    }
    return outage;
  };
}

export function measureAvailability(blueprint: Blueprint, options: { years: number; seed: number; progress?: (text: string) => void }): AvailabilityReport {
  let drills = 0;
  const measure = twinOutageMeasurer(blueprint, options.seed, () => {
    drills++;
    if (drills % 10 === 0) options.progress?.(`availability: ${drills} failure cases measured on the twin\n`);
  });
  return estimateAvailability(blueprint, { measure, years: options.years, random: createRandom(options.seed, 'availability') });
}

export function registerPlanCommands(
  program: Command,
  io: PlanIo,
  loadBlueprintOrReport: (file: string) => Blueprint | null,
  setExitCode: (code: number) => void,
): void {
  program
    .command('plan')
    .description('place every VM, analyse every failure, check admission control, cost and availability')
    .argument('<file>', 'blueprint YAML')
    .option('--json', 'print the plan as one JSON document on stdout')
    .option('--exact', 'solve the placement exactly (mixed-integer program; small clusters only)')
    .option('--years <n>', 'simulated years of the availability estimate', parseYears, DEFAULT_AVAILABILITY_YEARS)
    .option('--seed <n>', 'seed of the availability estimate and its drills', parseSeed, 1)
    .action(async (file: string, options: { json?: boolean; exact?: boolean; years: number; seed: number }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      let placement;
      try {
        placement = options.exact ? await planPlacementExact(blueprint, { objective: 'balanced' }) : planPlacement(blueprint, { objective: 'balanced' });
      } catch (error) {
        if (error instanceof TomaranaiError) {
          io.err(`${error.code}: ${error.message}\n`);
          return setExitCode(1);
        }
        throw error;
      }
      let availability: AvailabilityReport | null = null;
      try {
        availability = measureAvailability(blueprint, { years: options.years, seed: options.seed, progress: (text) => io.err(text) });
      } catch (error) {
        if (!(error instanceof TomaranaiError)) throw error;
        io.err(`${error.code}: ${error.message} (${error.hint}); the plan has no availability estimate\n`);
      }
      const report = buildPlanReport({ blueprint, placement, availability, availabilitySeed: options.seed });
      io.out(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatPlan(report)}\n`);
      setExitCode(report.valid && report.admission.holds ? 0 : 1);
    });

  program
    .command('availability')
    .description('expected annual downtime, its 95% confidence interval and nines per service, from component failure rates and outages measured on the twin')
    .argument('<file>', 'blueprint YAML')
    .option('--json', 'print the estimate as one JSON document on stdout')
    .option('--years <n>', 'simulated years', parseYears, DEFAULT_AVAILABILITY_YEARS)
    .option('--seed <n>', 'seed of the simulation and its drills (the same seed gives the same numbers)', parseSeed, 1)
    .action((file: string, options: { json?: boolean; years: number; seed: number }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      try {
        const report = measureAvailability(blueprint, { years: options.years, seed: options.seed, progress: (text) => io.err(text) });
        io.out(options.json ? `${JSON.stringify({ ...report, seed: options.seed }, null, 2)}\n` : `${formatAvailability(report, options.seed)}\n`);
        setExitCode(0);
      } catch (error) {
        if (!(error instanceof TomaranaiError)) throw error;
        io.err(`${error.code}: ${error.message} (${error.hint})\n`);
        setExitCode(1);
      }
    });

  program
    .command('size')
    .description('the fewest hosts of a model (per room) that place everything and pass admission control; cost, rack units and watts against the estate before')
    .argument('<file>', 'blueprint YAML')
    .requiredOption('--host-model <name>', 'a hostModels entry of the blueprint')
    .option('--json', 'print the result as one JSON document on stdout')
    .action((file: string, options: { hostModel: string; json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      let result: SizingResult;
      try {
        result = sizeCluster(blueprint, { hostModel: options.hostModel });
      } catch (error) {
        if (error instanceof TomaranaiError) {
          io.err(`${error.code}: ${error.message} (${error.hint})\n`);
          return setExitCode(1);
        }
        throw error;
      }
      io.out(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatSizing(result)}\n`);
      if (!result.found) {
        const why = result.impossible ?? `nothing up to ${result.attempts.at(-1)?.hostsPerRoom ?? 0} hosts per room passes: ${result.attempts.at(-1)?.reasons.join('; ') ?? ''}`;
        io.err(`${SIZE_NO_FIT_CODE}: no number of ${result.hostModel.name} hosts satisfies placement and admission control (survive ${result.survive.join(', ')}): ${why} (choose a larger host model, or ask less of protection.survive)\n`);
      }
      setExitCode(result.found ? 0 : 1);
    });
}

// ── Rendering ────────────────────────────────────────────────────────────────────────────────

const minutes = (value: number) => (value >= 600 ? `${(value / 60).toFixed(1)} h` : value >= 1 ? `${value.toFixed(1)} min` : `${(value * 60).toFixed(1)} s`);
const nines = (value: number | null) => (value === null ? '—' : value.toFixed(2));
const yen = (value: number | null) => (value === null ? '—' : `¥${Math.round(value).toLocaleString('en-US')}`);
const percent = (value: number) => `${(value * 100).toFixed(0)}%`;
/** Enough decimals to show the first digit that is not a 9. */
const percentAvailability = (availability: number, nines: number | null) =>
  `${(availability * 100).toFixed(nines === null ? 3 : Math.min(9, Math.max(3, Math.ceil(nines) - 1)))}%`;
const count = (value: number) => Math.round(value).toLocaleString('en-US');

export function formatPlan(report: PlanReport): string {
  const byHost = new Map<string, { primaries: number; secondaries: number }>();
  for (const entry of report.placements) {
    if (entry.host !== null) {
      const row = byHost.get(entry.host) ?? { primaries: 0, secondaries: 0 };
      row.primaries++;
      byHost.set(entry.host, row);
    }
    if (entry.secondary !== null) {
      const row = byHost.get(entry.secondary) ?? { primaries: 0, secondaries: 0 };
      row.secondaries++;
      byHost.set(entry.secondary, row);
    }
  }
  const kinds = ['host', 'rack', 'room', 'powerFeed', 'hostPair'] as const;
  const caseRows = kinds
    .map((kind) => {
      const cases = report.failureAnalysis.filter((entry) => entry.failed.kind === kind);
      if (cases.length === 0) return null;
      const failing = cases.filter((entry) => !entry.survivable);
      const shedding = cases.filter((entry) => entry.shed.length > 0);
      const worst = Math.max(...cases.map((entry) => entry.worstRtoEstimateS));
      return [
        kind,
        String(cases.length),
        String(cases.length - failing.length),
        String(shedding.length),
        `${worst.toFixed(0)} s`,
        cases.some((entry) => entry.required) ? 'yes' : 'no',
        failing.slice(0, 3).map((entry) => entry.failed.ids.join('+')).join(', ') + (failing.length > 3 ? ` (+${failing.length - 3})` : ''),
      ];
    })
    .filter((row): row is string[] => row !== null);
  const cost = report.cost;
  const lines = [
    `Plan for ${report.blueprint}: ${report.placements.length} VMs on ${cost.hostsUsed} of ${cost.hosts} hosts (${report.method}${report.exact ? `, ${report.exact.status}${report.exact.gap ? `, gap ${(report.exact.gap * 100).toFixed(1)}%` : ''}` : ''}, ${report.objective})`,
    report.valid ? 'Placement: every VM and every continuous secondary placed under every hard rule' : `Placement: ${report.unplaced.length} unplaced, ${report.violations.length} violations`,
    ...report.unplaced.map((entry) => `  unplaced ${entry.vm}: ${entry.reason}`),
    ...report.violations.map((violation) => `  violation: ${violation}`),
    '',
    table(
      ['host', 'primaries', 'secondaries'],
      [...byHost.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([host, row]) => [host, String(row.primaries), String(row.secondaries)]),
    ),
    '',
    'Failure analysis (survivable = every continuous and critical service keeps running or restarts within its RTO):',
    table(['failure', 'cases', 'survivable', 'shedding', 'worst RTO est.', 'required', 'not survivable'], caseRows),
    '',
    `Admission control (survive ${report.admission.required.join(', ')}): ${report.admission.holds ? 'HOLDS' : 'FAILS'} over ${report.admission.casesChecked} cases${report.admission.failing.length > 0 ? `: ${report.admission.failing.slice(0, 5).join('; ')}` : ''}`,
    `Cost: ${cost.hosts} hosts, ${yen(cost.hostsYen)}, ${cost.rackUnits} U, ${(cost.watts / 1000).toFixed(2)} kW (${count(cost.kWhPerYear)} kWh and ${yen(cost.energyYenPerYear)} a year with cooling); VMs use ${cost.coresUsed} of ${cost.cores} cores (${percent(cost.coreUtilisation)}) and ${count(cost.memoryGiBUsed)} of ${count(cost.memoryGiB)} GiB (${percent(cost.memoryUtilisation)})`,
  ];
  if (report.availabilityMethod !== null) {
    const tiers = new Map<string, PlanReport['availability'][number][]>();
    for (const entry of report.availability) tiers.set(entry.tier, [...(tiers.get(entry.tier) ?? []), entry]);
    lines.push(
      '',
      `Availability (${count(report.availabilityMethod.years)} simulated years, seed ${report.availabilityMethod.seed}; \`tomaranai availability\` for every service):`,
      table(
        ['tier', 'services', 'promise', 'worst service', 'downtime/yr', 'nines', 'meeting promise'],
        [...tiers.entries()].sort((a, b) => b[1][0]!.estimate.target - a[1][0]!.estimate.target).map(([tier, entries]) => {
          const worst = entries.reduce((a, b) => (b.estimate.downtimeMinPerYear > a.estimate.downtimeMinPerYear ? b : a));
          return [
            tier,
            String(entries.length),
            `${nines(worst.estimate.targetNines)} nines (${minutes(worst.estimate.targetDowntimeMinPerYear)}/yr)`,
            worst.service,
            minutes(worst.estimate.downtimeMinPerYear),
            nines(worst.estimate.nines),
            `${entries.filter((entry) => entry.estimate.meetsTarget).length}/${entries.length}`,
          ];
        }),
      ),
    );
  }
  return lines.join('\n');
}

export function formatAvailability(report: AvailabilityReport, seed: number): string {
  const lines = [
    `Availability of ${report.blueprint}: ${count(report.years)} simulated years (seed ${seed}), ${count(report.failures)} component failures, ${count(report.overlapping)} during another's repair; ${report.casesMeasured} failure cases measured on the twin`,
    '',
    table(
      ['component', 'count', 'failures/yr each', 'repair', 'drawn'],
      report.sources.map((source) => [
        source.component,
        String(source.count),
        source.failuresPerYear >= 0.001 ? source.failuresPerYear.toFixed(3) : source.failuresPerYear.toExponential(1),
        `${source.mttrHours} h`,
        count(source.drawn),
      ]),
    ),
    '',
    table(
      ['service', 'tier', 'downtime/yr', '95% CI', 'availability', 'nines', 'promise', 'result'],
      report.services.map((service) => [
        service.service,
        service.tier,
        minutes(service.downtimeMinPerYear),
        `${minutes(service.downtimeCi95MinPerYear[0])} – ${minutes(service.downtimeCi95MinPerYear[1])}`,
        percentAvailability(service.availability, service.nines),
        nines(service.nines),
        `${nines(service.targetNines)} (${minutes(service.targetDowntimeMinPerYear)})`,
        service.meetsTargetWithConfidence ? 'meets' : service.meetsTarget ? 'meets (CI spans)' : 'MISSES',
      ]),
    ),
    '',
    table(
      ['tier', 'services', 'promise', 'worst', 'worst downtime/yr', 'worst nines', 'mean downtime/yr', 'meeting'],
      report.tiers.map((tier) => [
        tier.tier,
        String(tier.services),
        `${nines(tier.targetNines)} nines`,
        tier.worstService,
        minutes(tier.worstDowntimeMinPerYear),
        nines(tier.worstNines),
        minutes(tier.meanDowntimeMinPerYear),
        `${tier.servicesMeetingTarget}/${tier.services}`,
      ]),
    ),
    '',
    'Each failure is drilled on the twin once (no repair) and its measured outage per service is reused; a failure during another\'s repair is drilled as a compound case and counted in full (conservative).',
  ];
  return lines.join('\n');
}

export function formatSizing(result: SizingResult): string {
  const model = result.hostModel;
  const lines = [
    `Sizing ${result.blueprint} on ${model.name} (${model.cores} cores, ${model.memoryGiB} GiB, ${model.watts} W, ${model.rackUnits} U, ${yen(model.costYen)}); must survive: ${result.survive.join(', ')}`,
    '',
    table(
      ['hosts/room', 'hosts', 'placed', 'admission', 'why not'],
      result.attempts.map((attempt) => [
        String(attempt.hostsPerRoom),
        String(attempt.hosts),
        attempt.placed ? 'yes' : `no (${attempt.unplaced} unplaced, ${attempt.violations} violations)`,
        attempt.admissionHolds === null ? '—' : attempt.admissionHolds ? 'holds' : 'fails',
        attempt.reasons.slice(0, 2).join('; '),
      ]),
    ),
    '',
  ];
  if (!result.found || result.sized === null) {
    lines.push(result.impossible ?? 'No number of hosts up to the limit satisfies placement and admission control.');
    return lines.join('\n');
  }
  lines.push(
    `Fewest hosts: ${result.hostsPerRoom} per room × ${result.rooms.length} room${result.rooms.length > 1 ? 's' : ''} = ${result.sized.hosts} hosts (${result.sized.cores} cores, ${count(result.sized.memoryGiB)} GiB)`,
    ...result.layout.map((rack) => `  ${rack.room} / ${rack.rack}: ${rack.hosts.join(', ')} (${rack.generatorHosts} on generator)`),
    '',
  );
  const economics = result.economics;
  const estates: [string, EstateFigures][] = [
    ['sized cluster', result.sized],
    ['blueprint now', result.current],
    ...(result.legacy === null ? [] : ([['before (physical)', result.legacy]] as [string, EstateFigures][])),
  ];
  lines.push(
    table(
      ['estate', 'servers', 'rack units', 'kW', `kWh/yr (PUE ${economics.pue})`, `energy ${economics.horizonYears} y`, 'hardware', 'life', `total ${economics.horizonYears} y`],
      estates.map(([name, figures]) => [
        name,
        String(figures.servers),
        `${figures.rackUnits} U`,
        (figures.watts / 1000).toFixed(1),
        count(figures.kWhPerYear),
        yen(figures.energyYenOverHorizon),
        yen(figures.hardwareYen),
        `${figures.lifeYears} y`,
        yen(figures.totalYenOverHorizon),
      ]),
    ),
  );
  const savings = result.savingsVersusLegacy;
  if (savings !== null) {
    lines.push(
      '',
      `Against the physical estate: ${savings.rackUnitsSaved} U less space (${percent(savings.rackUnitsSavedShare)}), ${(savings.wattsSaved / 1000).toFixed(1)} kW less power (${percent(savings.wattsSavedShare)}), ${yen(savings.energyYenSavedOverHorizon)} less electricity over ${economics.horizonYears} years at ¥${economics.electricityYenPerKWh}/kWh, hardware kept ${savings.lifeYearsGained} years longer${savings.totalYenSavedOverHorizon === null ? '' : `; ${yen(savings.totalYenSavedOverHorizon)} less in all over ${economics.horizonYears} years`}`,
    );
  } else if (result.legacy === null) {
    lines.push('', 'The blueprint has no legacyEstate section, so there is no comparison with the estate before virtualisation.');
  }
  return lines.join('\n');
}
