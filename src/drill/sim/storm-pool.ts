/**
 * Many storms at once: the seeds of a run are shared out over worker threads in batches (an idle
 * worker takes the next batch, so a slow seed holds up no other worker), and the outcomes are put
 * back in seed order. A storm is a pure function of its blueprint and seed, so how many workers run
 * it changes nothing but the wall time.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Violation } from './auditor.ts';

/** What a worker is started with: the blueprint's YAML (each worker reads it once). */
export interface StormWorkerData {
  readonly source: string;
}

export interface WorkerRequest {
  readonly batch: number;
  readonly seeds: readonly number[];
}

export interface SeedOutcome {
  readonly seed: number;
  readonly ok: boolean;
  readonly events: number;
  /** Settled points the optimum oracle judged, and how many needed a HiGHS solve. */
  readonly judged: number;
  readonly solved: number;
  /** The first few, for the report; the replay command gives them all. */
  readonly violations: readonly Violation[];
  readonly unconverged: readonly string[];
}

/** A batch's outcomes; batch -1 is the worker saying it is ready. */
export interface WorkerReply {
  readonly batch: number;
  readonly outcomes: readonly SeedOutcome[];
}

export interface StormBatchOptions {
  /** The blueprint's YAML, as read from its file. */
  readonly source: string;
  readonly seeds: readonly number[];
  readonly workers: number;
  /** Seeds per message: big enough that messages cost nothing, small enough to balance. */
  readonly batchSize?: number;
  /** Called as batches complete, with the seeds done so far. */
  readonly onProgress?: (done: number) => void;
}

export interface StormBatchResult {
  /** In the order of `seeds`. */
  readonly outcomes: readonly SeedOutcome[];
  readonly workers: number;
  readonly wallMs: number;
}

/** At most this many workers, whatever is asked: one per core is as fast as it gets. */
export const MAX_STORM_WORKERS = Math.max(1, availableParallelism());

export async function runStormBatch(options: StormBatchOptions): Promise<StormBatchResult> {
  const startedMs = performance.now();
  const batchSize = options.batchSize ?? 25;
  const batches: (readonly number[])[] = [];
  for (let index = 0; index < options.seeds.length; index += batchSize) batches.push(options.seeds.slice(index, index + batchSize));
  const workerCount = Math.max(1, Math.min(options.workers, MAX_STORM_WORKERS, batches.length));
  const results: (readonly SeedOutcome[] | undefined)[] = batches.map(() => undefined);
  let next = 0;
  let done = 0;
  const workers: Worker[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let finished = 0;
      const send = (worker: Worker) => {
        if (next >= batches.length) {
          if (++finished === workerCount) resolve();
          return;
        }
        const batch = next++;
        const request: WorkerRequest = { batch, seeds: batches[batch]! };
        worker.postMessage(request);
      };
      for (let index = 0; index < workerCount; index++) {
        const data: StormWorkerData = { source: options.source };
        const worker = new Worker(new URL('./storm-worker.mjs', import.meta.url), { workerData: data });
        workers.push(worker);
        worker.on('message', (reply: WorkerReply) => {
          if (reply.batch >= 0) {
            results[reply.batch] = reply.outcomes;
            done += reply.outcomes.length;
            options.onProgress?.(done);
          }
          send(worker);
        });
        worker.on('error', reject);
        worker.on('exit', (code) => {
          if (code !== 0) reject(new Error(`a storm worker stopped with exit code ${code}`));
        });
      }
    });
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
  return { outcomes: results.flatMap((outcomes) => outcomes ?? []), workers: workerCount, wallMs: performance.now() - startedMs };
}
