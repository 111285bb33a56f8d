/**
 * Runs a drill: the reference hospital (or any blueprint) on the twin, warmed up until everything
 * runs, then a scenario's faults and repairs, the controller recovering, and the report computed
 * from the journal. Same blueprint + scenario + seed ⇒ the same journal, byte for byte.
 */
import { Controller } from '../../control/controller.ts';
import type { ControllerTimings } from '../../control/decide.ts';
import { strikesController, type Fault, type Journal, type JournalEntry, type JournalEvents, type JournalEventType } from '../../ports/index.ts';
import { createRandom, type Random } from '../../ports/random.ts';
import { MemoryJournal } from '../../journal/memory.ts';
import { tierOf, type Blueprint } from '../../model/index.ts';
import { buildDrillReport, type DrillReport } from '../../report/drill-report.ts';
import { Scheduler } from '../../substrate/twin/scheduler.ts';
import { DEFAULT_TWIN_PARAMETERS, faultTarget, Twin, type TwinParameters } from '../../substrate/twin/twin.ts';
import { InvariantAuditor } from './auditor.ts';
import { ALL_SCENARIOS, findScenario, type Scenario, type ScenarioPlan, type ScenarioStep } from './scenarios.ts';
import type { Attacker } from './attacker.ts';
import type { AttackVariant } from './variants.ts';
import { TomaranaiError } from '../../errors/index.ts';

export interface DrillOptions {
  readonly blueprint: Blueprint;
  /** A named scenario, or a custom one (faults at the fault time, no repair): used to replay plan cases. */
  readonly scenario: string | Scenario;
  readonly seed: number;
  readonly journal?: Journal & { onAppend?: (listener: (entry: JournalEntry) => void) => () => void };
  readonly twinParameters?: Partial<TwinParameters>;
  /** The controller's timings (the lab's real drills run shorter heartbeats than a hospital's). */
  readonly controllerTimings?: Partial<ControllerTimings>;
  /** Called for each journal entry as it is written (live progress). */
  readonly onEntry?: (entry: JournalEntry) => void;
  /** Longest the drill runs after the fault before it stops waiting for convergence. */
  readonly horizonAfterFaultS?: number;
  /** Cyber drills: the system (or VM) to attack; by default the seed picks a non-continuous one. */
  readonly target?: string;
  /** Cyber drills: how the attacker destroys the data (default `full`, whole-file encryption). */
  readonly variant?: AttackVariant;
}

export interface DrillRun {
  readonly report: DrillReport;
  readonly journal: Journal;
  readonly twin: Twin;
  readonly controller: Controller;
  readonly scheduler: Scheduler;
  readonly auditor: InvariantAuditor;
  readonly unconverged: readonly string[];
}

const WARMUP_LIMIT_MS = 2 * 3600 * 1000;
const STEADY_MS = 10 * 60 * 1000;
const CHUNK_MS = 10_000;
const LIVE_CHUNK_MS = 1_000;
const LIVE_WINDOW_MS = 15 * 60 * 1000;
const SECURITY_WATCH_MS = 15 * 60 * 1000;

/** Runs a drill to its end at full speed. */
export function runDrill(options: DrillOptions): DrillRun {
  const steps = drillSteps(options);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * Runs a drill paced for people: `pace` is awaited after every chunk of simulated time with the
 * simulated time reached and whether the drill is in its interesting part (after the fault).
 */
export async function runDrillPaced(options: DrillOptions, pace: (simulatedMs: number, live: boolean) => Promise<void>): Promise<DrillRun> {
  const steps = drillSteps(options);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
    await pace(next.value.atMs, next.value.live);
  }
}

/** What a drill runs on: one seeded world of twin, controller, auditor and journal. */
interface DrillWorld {
  readonly options: DrillOptions;
  readonly scenario: Scenario;
  readonly random: Random;
  readonly scheduler: Scheduler;
  readonly journal: DrillJournal;
  readonly twin: Twin;
  readonly controller: Controller;
  readonly auditor: InvariantAuditor;
  readonly record: DrillRecorder;
}

type DrillJournal = NonNullable<DrillOptions['journal']>;

type DrillRecorder = <T extends JournalEventType>(kind: 'drill' | 'fault', type: T, subject: string, data: JournalEvents[T]) => void;

/** Simulated time reached after a chunk of the drill, and whether it is in its interesting part. */
type DrillProgress = { atMs: number; live: boolean };

/**
 * The drill, one chunk of simulated time per step: warm-up, steady running, the scenario's steps
 * from the fault time on, and the run until the hospital has settled; returns the run and its report.
 */
export function* drillSteps(options: DrillOptions): Generator<DrillProgress, DrillRun, void> {
  const world = buildWorld(options, resolveScenario(options));
  const { scenario, scheduler, controller, auditor, record } = world;
  const detach = options.onEntry && world.journal.onAppend ? world.journal.onAppend(options.onEntry) : null;
  record('drill', 'drill.started', scenario.name, { seed: options.seed, blueprint: options.blueprint.name, substrate: 'twin' });
  controller.start();
  yield* warmUp(world);
  record('drill', 'drill.warm', scenario.name, { vms: options.blueprint.vms.length });
  auditor.checkSnapshots();

  // Steady running, then the fault at a seeded moment (so replication phases differ by seed).
  const faultAtMs = scheduler.nowMs() + STEADY_MS + world.random.fork('fault-time').int(15 * 60) * 1000;
  runChecked(scheduler, auditor, faultAtMs);
  yield { atMs: scheduler.nowMs(), live: false };
  const plan = scenario.plan({
    blueprint: options.blueprint,
    faults: world.twin,
    ...(scenario.security === true ? { random: world.random.fork('scenario') } : {}),
    ...(options.target === undefined ? {} : { target: options.target }),
    ...(options.variant === undefined ? {} : { variant: options.variant }),
  });
  record('drill', 'scenario.planned', scenario.name, { description: plan.description, steps: plan.steps.length });
  const steps = [...plan.steps].sort((a, b) => a.afterS - b.afterS);
  const progress = { done: 0 };
  for (const step of steps) {
    scheduler.at(faultAtMs + step.afterS * 1000, () => {
      applyStep(world, step);
      progress.done++;
    });
  }
  yield* runUntilSettled(world, steps, faultAtMs, () => progress.done === steps.length);
  return finish(world, plan, detach);
}

function resolveScenario(options: DrillOptions): Scenario {
  const scenario = typeof options.scenario === 'string' ? findScenario(options.scenario) : options.scenario;
  if (scenario === undefined) {
    throw new TomaranaiError(
      'TMR_DRILL_UNKNOWN_SCENARIO',
      `unknown scenario "${String(options.scenario)}"`,
      `use one of: ${ALL_SCENARIOS.map((candidate) => candidate.name).join(', ')}`,
    );
  }
  return scenario;
}

function buildWorld(options: DrillOptions, scenario: Scenario): DrillWorld {
  const random = createRandom(options.seed, 'drill');
  const scheduler = new Scheduler();
  const journal: DrillJournal = options.journal ?? new MemoryJournal();
  const twin = new Twin(options.blueprint, scheduler, random.fork('twin'), { ...DEFAULT_TWIN_PARAMETERS, ...options.twinParameters });
  const controller = new Controller({
    blueprint: options.blueprint,
    substrate: twin,
    clock: scheduler,
    journal,
    ...(options.controllerTimings === undefined ? {} : { timings: options.controllerTimings }),
    ...(scenario.security === true ? { security: true } : {}),
  });
  const auditor = new InvariantAuditor(options.blueprint, twin, controller, scheduler);
  const record: DrillRecorder = (kind, type, subject, data) => journal.append({ atMs: scheduler.nowMs(), kind, type, subject, actor: 'drill', data });
  return { options, scenario, random, scheduler, journal, twin, controller, auditor, record };
}

/** Warm-up: the whole hospital boots in dependency order and every continuous VM gets its secondary. */
function* warmUp({ scheduler, auditor, controller }: DrillWorld): Generator<DrillProgress, void, void> {
  while (scheduler.nowMs() < WARMUP_LIMIT_MS) {
    scheduler.runUntil(scheduler.nowMs() + CHUNK_MS);
    auditor.check();
    yield { atMs: scheduler.nowMs(), live: false };
    if (auditor.unconverged().length === 0 && allProtected(controller)) return;
  }
  throw new TomaranaiError(
    'TMR_DRILL_WARMUP',
    `the hospital did not come up within ${WARMUP_LIMIT_MS / 3600000} h of simulated time: ${auditor.unconverged().slice(0, 5).join(', ')} not running`,
    'the blueprint may not fit its hosts; run `tomaranai validate` and check the sizing',
  );
}

/** One step of the scenario, at its time: faults through the twin, operator requests through the controller. */
function applyStep({ twin, controller, scheduler, options, record }: DrillWorld, step: ScenarioStep): void {
  if (step.kind === 'inject' && step.fault) {
    strike(twin, controller, step.fault, true);
    record('fault', 'fault.injected', faultTarget(step.fault), { kind: step.fault.kind, target: faultTarget(step.fault) });
  } else if (step.kind === 'heal' && step.fault) {
    strike(twin, controller, step.fault, false);
    record('fault', 'fault.repaired', faultTarget(step.fault), { kind: step.fault.kind, target: faultTarget(step.fault) });
  } else if (step.kind === 'power-on' && step.host) {
    controller.powerOnHost(step.host, 'operator');
  } else if (step.kind === 'evacuate' && step.host) {
    controller.evacuateHost(step.host, 'drill');
  } else if (step.kind === 'release' && step.host) {
    controller.releaseHost(step.host, 'drill');
  } else if (step.kind === 'attack' && step.run) {
    step.run({ twin, clock: scheduler, blueprint: options.blueprint, record });
  }
}

/** Strikes (or repairs) a fault: the substrate's through the twin, the control plane's (a pause) on the controller. */
export function strike(twin: Twin, controller: Controller, fault: Fault, on: boolean): void {
  if (strikesController(fault)) {
    if (on) controller.pause('drill: the leader stops (controller-pause)');
    else controller.resume();
  } else if (on) twin.inject(fault);
  else twin.heal(fault);
}

/**
 * Runs after the fault until every step has run and the hospital has settled (converged, quiet,
 * repaired hosts back, cyber drills watched long enough) for a minute of simulated time, or until
 * the horizon.
 */
function* runUntilSettled(world: DrillWorld, steps: readonly ScenarioStep[], faultAtMs: number, allStepsDone: () => boolean): Generator<DrillProgress, void, void> {
  const { scheduler, auditor, controller, scenario } = world;
  const horizonMs = faultAtMs + (world.options.horizonAfterFaultS ?? 30 * 3600) * 1000;
  const repairs = steps.some((step) => step.kind === 'power-on');
  let stableSinceMs: number | null = null;
  while (scheduler.nowMs() < horizonMs) {
    const live = scheduler.nowMs() - faultAtMs < LIVE_WINDOW_MS;
    runChecked(scheduler, auditor, scheduler.nowMs() + (live ? LIVE_CHUNK_MS : CHUNK_MS));
    yield { atMs: scheduler.nowMs(), live };
    const settled =
      allStepsDone() &&
      // A cyber drill watches on after the last attack step: detection must have had its chance.
      (scenario.security !== true || scheduler.nowMs() >= faultAtMs + (steps[steps.length - 1]?.afterS ?? 0) * 1000 + SECURITY_WATCH_MS) &&
      controller.state.inFlight.size === 0 &&
      (!repairs || allHostsUp(controller)) &&
      auditor.unconverged().length === 0 &&
      allProtected(controller);
    if (!settled) stableSinceMs = null;
    else if (stableSinceMs === null) stableSinceMs = scheduler.nowMs();
    // Converged and quiet for a minute of simulated time: nothing more will happen.
    else if (scheduler.nowMs() - stableSinceMs >= 60_000) return;
  }
}

/** The drill's end: the last checks, the ground truth journaled, the controller stopped, the report. */
function finish(world: DrillWorld, plan: ScenarioPlan, detach: (() => void) | null): DrillRun {
  const { options, scenario, journal, twin, controller, scheduler, auditor, record } = world;
  auditor.checkSnapshots();
  const unconverged = auditor.unconverged();
  if (plan.attacker !== undefined) recordAttackTruth(twin, plan.attacker, record);
  record('drill', 'drill.ended', scenario.name, { unconverged });
  detach?.();
  controller.stop();
  const report = buildDrillReport({
    blueprint: options.blueprint,
    entries: journal.entries(),
    scenario: scenario.name,
    description: plan.description,
    seed: options.seed,
    substrate: 'twin',
    invariants: { splitBrain: auditor.splitBrain, lostVms: auditor.lostVms, immutableViolations: auditor.immutableViolations },
    ...(scenario.security === true ? { quarantineViolations: auditor.quarantineViolations } : {}),
  });
  return { report, journal, twin, controller, scheduler, auditor, unconverged };
}

/** Ground truth of the attack, for the report: journaled by the drill, never seen by the controller. */
function recordAttackTruth(twin: Twin, attacker: Attacker, record: DrillRecorder): void {
  for (const [vm, compromisedAtMs] of [...attacker.footholds].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]))) {
    const truth = twin.securityTruth(vm);
    const reached = twin.attackedFiles(vm, truth.quarantinedAtMs ?? Number.MAX_SAFE_INTEGER);
    record('drill', 'security.truth', vm, { ...truth, compromisedAtMs, filesTouched: reached.files, canariesTouched: reached.canaries });
  }
  const denied = [...twin.deniedFlowsByPair()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  record('drill', 'security.denied-flows', 'policy', {
    pairs: denied.length,
    attempts: denied.reduce((sum, [, count]) => sum + count, 0),
    top: denied.slice(0, 10).map(([pair, count]) => ({ pair, count })),
  });
}

/** Advances the clock event by event, checking the invariants after each. */
export function runChecked(scheduler: Scheduler, auditor: InvariantAuditor, untilMs: number): void {
  scheduler.runWhile(untilMs, () => {
    // Check once an instant is complete: every event of that moment, and the pass it triggers, ran.
    if (scheduler.nextAtMs() !== scheduler.nowMs()) auditor.check();
    return false;
  });
}

function allProtected(controller: Controller): boolean {
  const secondaries = new Set<string>();
  for (const instance of controller.state.instances.values()) {
    if (instance.role === 'secondary' && instance.synced) secondaries.add(instance.vm);
  }
  for (const service of controller.blueprint.services) {
    if (tierOf(controller.blueprint, service).mechanism !== 'failover') continue;
    for (const vm of service.vms) {
      const view = controller.state.vms.get(vm.name)!;
      if (!secondaries.has(vm.name) && !(view.waitReason ?? '').startsWith('unprotected')) return false;
    }
  }
  return true;
}

function allHostsUp(controller: Controller): boolean {
  for (const status of controller.state.hostStatus.values()) if (status !== 'up') return false;
  return true;
}
