/**
 * The 10,000-VM estate (src/drill/sim/estate.ts: 500 hosts, 10,000 VMs, 5 rooms) on the twin.
 * Prints numbers; asserts nothing.
 *   - the estate generated and validated, planned (the controller's initial placement);
 *   - a host, a rack and a room failure, each on a fresh twin: the controller's decision time per
 *     pass (decide() alone, p50/p99/max, target < 50 ms), the wall time of whole passes (p50/p99/max,
 *     which include any recovery planning), and the time to plan the recovery — the pass in which
 *     the controller simulates the whole recovery once the failure is known (target < 1 s for a host);
 *   - memory (heap used and RSS) with the estate loaded and a controller running;
 *   - a simulated week of twin and controller with routine background failures and repairs
 *     (runSoak: one every 6 h on average, repaired in about an hour; target < 60 s), the invariants
 *     audited once per simulated minute (after every instant, the audit alone reads 10,000 VMs and
 *     their copies some 70,000 times a week).
 * Run alone with `node --import tsx bench/estate.ts`, or with every benchmark by `npm run bench`.
 */
import { Controller } from '../src/control/controller.ts';
import { decide, type DecideInput } from '../src/control/decide.ts';
import { generateEstate } from '../src/drill/sim/estate.ts';
import { runSoak } from '../src/drill/sim/soak.ts';
import { MemoryJournal } from '../src/journal/memory.ts';
import type { Blueprint } from '../src/model/index.ts';
import { passTimingClock } from '../src/service/pass-timer.ts';
import { Scheduler } from '../src/substrate/twin/scheduler.ts';
import { Twin, type Fault } from '../src/substrate/twin/twin.ts';
import { createRandom } from '../src/ports/random.ts';

export interface EstateBenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function spread(values: readonly number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN };
}

interface FailureRun {
  readonly decideMs: number[];
  readonly passMs: number[];
  /** Wall time of each pass that planned a recovery (simulated it whole). */
  readonly planningPassMs: number[];
  readonly simulationPasses: number;
  readonly recovered: boolean;
}

/** One failure on a fresh twin of the estate, adopted as planned: inject, recover, measure. */
function runFailure(blueprint: Blueprint, fault: Fault): FailureRun {
  const scheduler = new Scheduler();
  const decideMs: number[] = [];
  const passMs: number[] = [];
  const planningPassMs: number[] = [];
  let simulationDecideCalls = 0;
  let simulationInPass = 0;
  // The controller's own passes give `target` (null or a target); simulateRecovery's greedy passes
  // give none: that tells the recovery planning apart from the pass's own decision.
  const timedDecide = (input: DecideInput) => {
    const startedMs = performance.now();
    const decision = decide(input);
    if ('target' in input) decideMs.push(performance.now() - startedMs);
    else {
      simulationDecideCalls++;
      simulationInPass++;
    }
    return decision;
  };
  let controller: Controller | null = null;
  const clock = passTimingClock(scheduler, () => controller?.passes ?? 0, (seconds) => {
    passMs.push(seconds * 1000);
    if (simulationInPass > 0) planningPassMs.push(seconds * 1000);
    simulationInPass = 0;
  });
  const twin = new Twin(blueprint, scheduler, createRandom(1, 'estate-bench'));
  controller = new Controller({ blueprint, substrate: twin, clock, journal: new MemoryJournal(), decide: timedDecide });
  twin.adopt(controller.plan);
  controller.start();
  scheduler.runUntil(60_000);
  decideMs.length = 0;
  passMs.length = 0;
  planningPassMs.length = 0;
  twin.inject(fault);
  scheduler.runUntil(scheduler.nowMs() + 30 * 60_000);
  const recovered = blueprint.vms.every((vm) => twin.healthyPrimaries().has(vm.name) || controller!.state.vms.get(vm.name)!.shedReason !== null);
  controller.stop();
  return { decideMs, passMs, planningPassMs, simulationPasses: simulationDecideCalls, recovered };
}

export async function benchEstate(): Promise<EstateBenchResult[]> {
  const results: EstateBenchResult[] = [];
  const generatedAt = performance.now();
  const blueprint = generateEstate();
  results.push({ name: 'estate generated and validated (500 hosts, 10,000 VMs, 5 rooms)', value: performance.now() - generatedAt, unit: 'ms', note: 'YAML written, then loadBlueprint: schema and semantic checks' });
  const plannedAt = performance.now();
  const scheduler = new Scheduler();
  const twin = new Twin(blueprint, scheduler, createRandom(1, 'estate-bench'));
  const controller = new Controller({ blueprint, substrate: twin, clock: scheduler, journal: new MemoryJournal() });
  results.push({ name: 'initial placement of the estate (the controller\'s plan)', value: performance.now() - plannedAt, unit: 'ms' });
  twin.adopt(controller.plan);
  controller.start();
  scheduler.runUntil(60_000);
  const memory = process.memoryUsage();
  results.push({ name: 'memory with the estate, its twin and a controller', value: memory.heapUsed / 2 ** 20, unit: 'MiB heap used', note: `RSS ${(memory.rss / 2 ** 20).toFixed(0)} MiB` });
  controller.stop();

  const host = blueprint.hosts[0]!;
  const failures: readonly [string, Fault][] = [
    ['host', { kind: 'host-crash', host: host.name }],
    ['rack', { kind: 'rack-failure', rack: host.rack }],
    ['room', { kind: 'room-failure', room: host.room }],
  ];
  // A warm-up failure first, so that the numbers below are of compiled code, not of the JIT's first look.
  runFailure(blueprint, { kind: 'host-crash', host: blueprint.hosts[1]!.name });
  for (const [label, fault] of failures) {
    const run = runFailure(blueprint, fault);
    const decideSpread = spread(run.decideMs);
    const passSpread = spread(run.passMs);
    results.push({ name: `${label} failure: decide() per controller pass`, value: decideSpread.p50, unit: 'ms p50', note: `p99 ${decideSpread.p99.toFixed(1)} ms, max ${decideSpread.max.toFixed(1)} ms over ${run.decideMs.length} passes; target < 50 ms` });
    results.push({ name: `${label} failure: whole controller pass`, value: passSpread.p50, unit: 'ms p50', note: `p99 ${passSpread.p99.toFixed(1)} ms, max ${passSpread.max.toFixed(1)} ms (includes recovery planning)` });
    results.push({
      name: `${label} failure: recovery planned`,
      value: Math.max(...run.planningPassMs),
      unit: 'ms (the planning pass, max)',
      note: `${run.planningPassMs.length} planning pass(es), ${run.simulationPasses} simulated decide() passes; ${run.recovered ? 'every VM runs or is shed' : 'NOT RECOVERED in 30 simulated min'}${label === 'host' ? '; target < 1 s' : ''}`,
    });
  }
  const peak = process.memoryUsage();
  results.push({ name: 'memory after the three failures', value: peak.heapUsed / 2 ** 20, unit: 'MiB heap used', note: `RSS ${(peak.rss / 2 ** 20).toFixed(0)} MiB` });

  const weekAt = performance.now();
  const weekCpu = process.cpuUsage();
  const week = runSoak({ blueprint, seed: 1, days: 7, auditEveryMs: 60_000 });
  // CPU time too: on a machine that other work keeps busy, wall time grows and CPU time much less.
  const cpu = process.cpuUsage(weekCpu);
  results.push({
    name: 'simulated week of the estate, background failures, invariants audited each simulated minute',
    value: (performance.now() - weekAt) / 1000,
    unit: 's wall',
    note: `target < 60 s; ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU; ${week.faults} faults, ${week.events} events, ${week.journalEntries} journal entries, ${week.violations} invariant violations, ${week.unconverged.length} unconverged`,
  });
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const result of await benchEstate()) console.log(`${result.name}: ${result.value.toFixed(2)} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
}
