/**
 * The security loop's bookkeeping and timers: it enforces the blueprint's segmentation through the
 * substrate, reads the substrate's security telemetry on the Clock, feeds the ransomware detector,
 * opens a case per alert (or per operator's restore request), and steps every open case with the
 * pure securityStep(); the executor carries out each step's action. While a case runs, its
 * custody keys hold decide() away from the VM.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import { RansomwareDetector, type MetricAnomaly, type RansomwareDetectorOptions } from '../detect/ransomware.ts';
import type { Blueprint } from '../model/index.ts';
import { compileSegmentation } from '../model/segmentation.ts';
import { isPromise, type Clock, type JournalEvents, type JournalEventType, type JournalRecord, type RestoreObservation, type SnapshotObservation, type Substrate, type TimerHandle, type VmSecuritySample } from '../ports/index.ts';
import type { Executor } from './executor.ts';
import { causeAtMs, custodyKeys, openCase, securityStep, type OperatorRestore, type SecurityAction, type SecurityCase, type SecurityCause } from './security.ts';
import type { ControllerState } from './state.ts';
import type { ControllerTimings } from './timings.ts';
import type { WorkQueue } from './work-queue.ts';

export interface SecurityLoopOptions {
  readonly blueprint: Blueprint;
  readonly model: CapacityModel;
  readonly substrate: Substrate;
  readonly clock: Clock;
  readonly state: ControllerState;
  readonly queue: WorkQueue;
  readonly executor: Executor;
  readonly timings: ControllerTimings;
  readonly actor: string;
  readonly intervalMs: number;
  readonly caseStepMs: number;
  readonly detector?: Partial<RansomwareDetectorOptions>;
  /** Per-metric anomalies of one VM are journaled at most once per this long (default 15 min). */
  readonly anomalyQuietMs?: number;
  /** The cases, by VM: the controller's, shown to its callers. */
  readonly cases: Map<string, SecurityCase>;
  readonly record: <T extends JournalEventType>(kind: JournalRecord['kind'], type: T, subject: string, data: JournalEvents[T], actor?: string) => void;
  /** Asks for a decision pass (a recovered VM is the ordinary controller's again). */
  readonly schedulePass: () => void;
}

export class SecurityLoop {
  private readonly detector: RansomwareDetector;
  private timer: TimerHandle | null = null;
  private caseTimer: TimerHandle | null = null;
  private stopped = false;

  constructor(private readonly options: SecurityLoopOptions) {
    this.detector = new RansomwareDetector(options.detector);
  }

  start(): void {
    const { substrate, blueprint, executor } = this.options;
    if (substrate.applyNetworkPolicy === undefined || substrate.securityTelemetry === undefined) {
      this.options.record('decision', 'security.unsupported', this.options.actor, { substrate: substrate.name, reason: 'the substrate offers no network policy or security telemetry' });
      return;
    }
    executor.execute({ type: 'applyNetworkPolicy', name: blueprint.name, policy: compileSegmentation(blueprint) });
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.options.clock.cancel(this.timer);
    if (this.caseTimer) this.options.clock.cancel(this.caseTimer);
  }

  /** An operator's restore of one VM from a chosen snapshot; refused while the VM's case runs. */
  requestRestore(request: OperatorRestore): { ok: true } | { ok: false; reason: string } {
    const open = this.options.cases.get(request.vm);
    if (open !== undefined && open.phase !== 'recovered' && open.phase !== 'unrecoverable') return { ok: false, reason: `${request.vm} is already being recovered` };
    this.options.record('decision', 'restore.started', request.vm, { snapshotId: request.snapshotId, reason: request.reason, requestedBy: request.requestedBy }, request.requestedBy);
    this.open({ kind: 'restore', request }, request.atMs);
    this.advance();
    return { ok: true };
  }

  /** Renews the custody keys of every case: decide() neither restarts the VM from its encrypted disk nor stops the quarantined copy (evidence). */
  holdCustody(nowMs: number): void {
    for (const securityCase of this.options.cases.values()) {
      for (const key of custodyKeys(securityCase)) this.options.queue.hold(key, nowMs, nowMs + this.options.timings.custodyMs);
    }
  }

  private schedule(): void {
    const { clock, substrate } = this.options;
    this.timer = clock.at(clock.nowMs() + this.options.intervalMs, () => {
      this.timer = null;
      if (this.stopped) return;
      const telemetry = substrate.securityTelemetry!();
      const run = (samples: readonly VmSecuritySample[]) => {
        if (this.stopped) return;
        this.observe(samples);
        this.schedule();
      };
      if (isPromise(telemetry)) void telemetry.then(run);
      else run(telemetry);
    });
  }

  private observe(samples: readonly VmSecuritySample[]): void {
    const { record, cases } = this.options;
    for (const sample of samples) {
      if (sample.snapshotDeletionsRefused > 0) {
        record('observation', 'security.snapshot-deletion-refused', sample.vm, {
          count: sample.snapshotDeletionsRefused,
          reason: 'immutable snapshots cannot be deleted before their retention ends, whoever asks',
        });
      }
      const open = cases.get(sample.vm);
      // A quarantined or restoring VM's telemetry is the attack's; the detector resumes after recovery.
      if (open !== undefined && open.phase !== 'recovered') continue;
      const { alert, anomalies } = this.detector.update(sample);
      this.journalAnomalies(anomalies, alert !== null);
      if (alert === null) continue;
      record('decision', 'security.alert', alert.vm, {
        detector: 'ransomware',
        score: Math.round(alert.score * 1000) / 1000,
        z: { writeEntropy: round1(alert.z.writeEntropy), diskWrite: round1(alert.z.diskWrite), snapshotChange: round1(alert.z.snapshotChange) },
        anomalousWritesSinceMs: alert.anomalousWritesSinceMs,
        estimatedIntrusionAtMs: alert.estimatedIntrusionAtMs,
        evidence: alert.evidence.slice(0, 8).map((item) => ({ atMs: item.atMs, kind: item.kind, detail: item.detail })),
        evidenceCount: alert.evidence.length,
        rule: alert.rule,
        files: alert.files === null ? null : { joint: round1(alert.files.joint), canariesTouched: alert.files.canariesTouched },
      });
      this.open({ kind: 'alert', alert }, this.options.clock.nowMs());
    }
    this.advance();
  }

  /**
   * Per-metric anomalies go to the journal even below the alert, so an investigation sees them;
   * one entry per VM and metric per quiet period (`anomalyQuietMs`), counting those folded in.
   */
  private journalAnomalies(anomalies: readonly MetricAnomaly[], alerted: boolean): void {
    const quietMs = this.options.anomalyQuietMs ?? 15 * 60_000;
    for (const anomaly of anomalies) {
      const key = `${anomaly.vm}\u0000${anomaly.metric}`;
      const last = this.anomalyLog.get(key);
      if (last !== undefined && !alerted && anomaly.atMs - last.atMs < quietMs) {
        last.suppressed += 1;
        continue;
      }
      this.options.record('observation', 'security.anomaly', anomaly.vm, { metric: anomaly.metric, value: round1(anomaly.z), score: Math.round(anomaly.score * 1000) / 1000, suppressed: last?.suppressed ?? 0 });
      this.anomalyLog.set(key, { atMs: anomaly.atMs, suppressed: 0 });
    }
  }

  private readonly anomalyLog = new Map<string, { atMs: number; suppressed: number }>();

  private open(cause: SecurityCause, nowMs: number): void {
    const securityCase = openCase(cause, this.options.state, nowMs);
    this.options.cases.set(securityCase.vm, securityCase);
    for (const key of custodyKeys(securityCase)) this.options.queue.hold(key, nowMs, nowMs + this.options.timings.custodyMs);
  }

  /** Steps every open case whose worker is free, reading what its phase needs; again after caseStepMs while any is open. */
  private advance(): void {
    const { cases, substrate, queue, clock } = this.options;
    let active = false;
    for (const securityCase of [...cases.values()]) {
      if (securityCase.phase === 'recovered' || securityCase.phase === 'unrecoverable') continue;
      active = true;
      const worker = `security:${securityCase.vm}` as const;
      if (!queue.startWork(worker)) continue;
      const snapshots = securityCase.phase === 'quarantined' ? substrate.listSnapshots(securityCase.vm) : [];
      const restore = securityCase.phase === 'restoring' && securityCase.restore !== null && substrate.restoreStatus !== undefined ? substrate.restoreStatus(securityCase.restore.id) : null;
      const proceed = (list: readonly SnapshotObservation[], observed: RestoreObservation | null) => {
        queue.endWork(worker);
        if (this.stopped) return;
        this.step(securityCase.vm, list, observed);
      };
      if (isPromise(snapshots) || isPromise(restore)) void Promise.all([snapshots, restore]).then(([list, observed]) => proceed(list, observed));
      else proceed(snapshots, restore);
    }
    if (active && this.caseTimer === null) {
      this.caseTimer = clock.at(clock.nowMs() + this.options.caseStepMs, () => {
        this.caseTimer = null;
        if (!this.stopped) this.advance();
      });
    }
  }

  private step(vm: string, snapshots: readonly SnapshotObservation[], restore: RestoreObservation | null): void {
    const { cases, clock, model, state, timings } = this.options;
    const current = cases.get(vm)!;
    const { action, next } = securityStep({ securityCase: current, nowMs: clock.nowMs(), model, state, snapshots, restore, timings });
    if (action !== null) this.execute(action, current, next);
    else if (next.phase !== current.phase) this.changed(current, next);
  }

  private execute(action: SecurityAction, current: SecurityCase, next: SecurityCase): void {
    const { queue, executor } = this.options;
    const worker = `security:${action.vm}` as const;
    queue.startWork(worker);
    executor.execute(action, (outcome) => {
      queue.endWork(worker);
      if (!outcome.ok) return;
      const updated = action.type === 'restoreSnapshot' && next.restore !== null ? { ...next, restore: { ...next.restore, id: outcome.detail ?? '' } } : next;
      this.changed(current, updated);
      // The infected copies are stopping and the clean one takes the VM's name: lift the quarantine.
      if (action.type === 'promoteRestored') this.execute({ type: 'releaseVm', vm: action.vm, reason: 'the restored, verified copy replaces the infected one' }, updated, updated);
    });
  }

  private changed(before: SecurityCase, after: SecurityCase): void {
    const { cases, queue, record } = this.options;
    cases.set(after.vm, after);
    if (after.phase === 'recovered') {
      for (const key of custodyKeys(before)) queue.settle(key);
      this.detector.reset(after.vm);
      record('decision', 'security.recovered', after.vm, {
        restorePointMs: before.restore?.restorePointMs ?? null,
        snapshotId: before.restore?.snapshotId ?? null,
        alertAtMs: causeAtMs(after.cause),
        reason: after.reason ?? 'the restored copy serves in production and passes its health check',
      });
      this.options.schedulePass();
    } else if (after.phase === 'unrecoverable') {
      record('decision', 'security.unrecoverable', after.vm, { reason: after.reason ?? 'unknown', remains: 'quarantined' });
    } else if (before.phase === 'restoring' && after.phase === 'quarantined') {
      record('decision', 'security.restore-rejected', after.vm, { restore: before.restore?.id ?? null, snapshotId: before.restore?.snapshotId ?? null, reason: after.reason ?? '' });
    }
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}
