/**
 * Loads candidate blueprints that arrive through the API in a worker thread with a time and a
 * memory budget. YAML parsing and validation are the costliest thing a caller can ask for (a
 * 40,000-key or an alias-heavy document once held the event loop for seconds to minutes); here a
 * document that exceeds the budget is refused with TMR_API_BLUEPRINT_BUDGET, the worker is ended
 * and replaced, and nothing else waits: the controller and /healthz run on the main thread.
 *
 * One worker, one candidate at a time (reviews are rare and human-paced); a request queued behind
 * a hostile one waits at most one budget.
 */
import { Worker } from 'node:worker_threads';
import { TomaranaiError } from '../errors/index.ts';
import type { LoadResult } from '../model/index.ts';

export interface BlueprintBudget {
  /** Wall time one load may take in the worker. */
  readonly timeoutMs: number;
  /** The worker's heap ceiling: a load that needs more ends the worker, not the service. */
  readonly memoryMb: number;
}

/** The reference hospital (52 systems, 74 VMs) loads in ~50 ms and a few MB: far inside both. */
export const DEFAULT_BLUEPRINT_BUDGET: BlueprintBudget = { timeoutMs: 2_000, memoryMb: 512 };

interface Pending {
  readonly id: number;
  readonly source: string;
  readonly resolve: (result: LoadResult) => void;
  readonly reject: (error: Error) => void;
}

export class BlueprintLoader {
  private worker: Worker | null = null;
  private ready = false;
  private readonly queue: Pending[] = [];
  private current: { pending: Pending; timer: NodeJS.Timeout } | null = null;
  private nextId = 1;
  private closed = false;

  constructor(private readonly budget: BlueprintBudget = DEFAULT_BLUEPRINT_BUDGET) {}

  load(source: string): Promise<LoadResult> {
    if (this.closed) return Promise.reject(new Error('BlueprintLoader: closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, source, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new Error('BlueprintLoader: closed'));
    if (this.current !== null) {
      clearTimeout(this.current.timer);
      this.current.pending.reject(new Error('BlueprintLoader: closed'));
      this.current = null;
    }
    const worker = this.worker;
    this.worker = null;
    if (worker !== null) await worker.terminate();
  }

  private pump(): void {
    if (this.current !== null || this.queue.length === 0 || this.closed) return;
    const worker = this.ensureWorker();
    if (!this.ready) return;
    const pending = this.queue.shift()!;
    const timer = setTimeout(() => this.fail(`the blueprint took longer than ${this.budget.timeoutMs} ms to read and validate`), this.budget.timeoutMs);
    this.current = { pending, timer };
    worker.postMessage({ id: pending.id, source: pending.source });
  }

  private ensureWorker(): Worker {
    if (this.worker !== null) return this.worker;
    // The entry is plain JavaScript that registers tsx, then loads blueprint-loader-worker.ts.
    const worker = new Worker(new URL('./blueprint-loader-worker.mjs', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: this.budget.memoryMb, maxYoungGenerationSizeMb: 64 },
      stdout: false,
      stderr: false,
    });
    worker.unref();
    worker.on('message', (message: { readonly ready: true } | { readonly id: number; readonly result: LoadResult }) => {
      if ('ready' in message) {
        this.ready = true;
        this.pump();
        return;
      }
      const current = this.current;
      if (current === null || current.pending.id !== message.id) return;
      clearTimeout(current.timer);
      this.current = null;
      current.pending.resolve(message.result);
      this.pump();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      this.fail(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `the blueprint needed more than ${this.budget.memoryMb} MB to read and validate` : `the blueprint reader failed: ${error.message}`);
    });
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.ready = false;
    });
    this.worker = worker;
    this.ready = false;
    return worker;
  }

  /** Refuses the current candidate, ends its worker (a fresh one serves the next) and goes on. */
  private fail(why: string): void {
    const current = this.current;
    const worker = this.worker;
    this.worker = null;
    this.ready = false;
    if (worker !== null) void worker.terminate();
    if (current === null) return;
    clearTimeout(current.timer);
    this.current = null;
    current.pending.reject(new TomaranaiError('TMR_API_BLUEPRINT_BUDGET', `${why}; nothing was changed`));
    this.pump();
  }
}
