/**
 * The one executor: every action of every loop (recovery, rebalancing, security, and the
 * controller's own lifecycle) is carried out here, the same way. It builds the fencing token
 * (this term's epoch, and the VM's generation for an action that changes a VM, which advances with
 * the call: compare-and-set), holds the action's work-queue key until the substrate shows the
 * result or the deadline passes, journals the action with its outcome, and after a refusal
 * repairs the VM's generation and backs off. Synchronous on a simulated substrate; answers that
 * arrive after stop() are dropped.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import { isPromise, type ActionOutcome, type Clock, type FencingToken, type Journal, type MaybePromise, type Substrate, type SubstrateSnapshot } from '../ports/index.ts';
import { operationOf, type ControlAction } from './operations.ts';
import type { ControllerTimings } from './timings.ts';
import type { WorkQueue } from './work-queue.ts';

export interface ExecutorOptions {
  readonly substrate: Substrate;
  readonly clock: Clock;
  readonly journal: Journal;
  readonly queue: WorkQueue;
  readonly model: CapacityModel;
  readonly timings: ControllerTimings;
  readonly epoch: number;
  readonly actor: string;
  /** Asks for a decision pass at `atMs` (when a backoff ends). */
  readonly wakeAt: (atMs: number) => void;
}

export class Executor {
  /** Each VM's generation as this controller last knew it: the compare-and-set half of its tokens. */
  readonly generations = new Map<string, number>();
  private stopped = false;

  constructor(private readonly options: ExecutorOptions) {}

  stop(): void {
    this.stopped = true;
  }

  /**
   * Carries out `action`; `then` sees the outcome once it is journaled. Returns false, doing
   * nothing, when the action's key is exclusive and already in flight.
   */
  execute(action: ControlAction, then: (outcome: ActionOutcome) => void = () => {}): boolean {
    const { queue, clock, epoch } = this.options;
    const operation = operationOf(action, this.options);
    const work = operation.work;
    if (work !== null && work.exclusive && queue.has(work.key)) return false;
    const nowMs = clock.nowMs();
    const vm = operation.vm;
    const token: FencingToken = vm === null ? { epoch } : { epoch, vmGeneration: this.generations.get(vm) ?? 0 };
    // In flight from the moment it is sent; events the call itself causes may settle it.
    if (work !== null) queue.begin(work.key, nowMs, nowMs + work.timeoutMs, workHost(action));
    if (vm !== null) this.generations.set(vm, (token.vmGeneration ?? 0) + 1);
    this.whenDone(operation.call(this.options.substrate, token), (outcome) => {
      this.record(operation.subject, action.type, operation.journal(outcome, token, epoch), operation.actor ?? this.options.actor);
      if (!outcome.ok) {
        if (vm !== null) this.repairGeneration(vm, token, outcome.reason, operation.repair);
        if (work?.onRefusal === 'release') queue.settle(work.key);
        if (work?.onRefusal === 'backoff') {
          // A refused action is retried, but with per-key exponential backoff.
          const refusedAtMs = clock.nowMs();
          this.options.wakeAt(refusedAtMs + queue.refused(work.key, refusedAtMs));
        }
      } else if (work !== null) queue.accepted(work.key);
      then(outcome);
    });
    return true;
  }

  /** Runs `then` on a substrate answer: at once when it is synchronous, later when it is not. */
  private whenDone<T extends ActionOutcome>(answer: MaybePromise<T>, then: (outcome: ActionOutcome) => void): void {
    if (!isPromise(answer)) {
      then(answer);
      return;
    }
    answer.then(
      (outcome) => {
        if (!this.stopped) then(outcome);
      },
      (error: unknown) => {
        if (!this.stopped) then({ ok: false, reason: `substrate error: ${error instanceof Error ? error.message : String(error)}` });
      },
    );
  }

  /** A refused call left the VM as it was; if someone else changed it, its generation is re-read. */
  private repairGeneration(vm: string, token: FencingToken, reason: string, repair: 'rollback' | 'reread' | 'reread-if-named'): void {
    if (repair === 'rollback' || (repair === 'reread-if-named' && !reason.includes('generation'))) {
      this.generations.set(vm, token.vmGeneration ?? 0);
      return;
    }
    const snapshot = this.options.substrate.snapshot();
    const reread = (value: SubstrateSnapshot) => this.generations.set(vm, value.vmGenerations.get(vm) ?? 0);
    if (isPromise(snapshot)) void snapshot.then(reread);
    else reread(snapshot);
  }

  private record(subject: string, type: string, data: Record<string, unknown>, actor: string): void {
    this.options.journal.append({ atMs: this.options.clock.nowMs(), kind: 'action', type, subject, actor, data });
  }
}

/** The host a unit of work lands on: its fence ends a start or promotion, and a migration's room is held there while it runs. */
function workHost(action: ControlAction): string | undefined {
  switch (action.type) {
    case 'startVm':
    case 'promoteSecondary':
      return action.host;
    case 'migrateVm':
      return action.toHost;
    default:
      return undefined;
  }
}
