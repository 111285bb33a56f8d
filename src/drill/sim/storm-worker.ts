/**
 * A storm worker thread: it reads the blueprint it is given once, then runs the storms of every
 * batch of seeds the pool sends and answers with one line per seed (the failing ones in full).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadBlueprint } from '../../model/index.ts';
import { runStorm } from './storm.ts';
import type { SeedOutcome, StormWorkerData, WorkerReply, WorkerRequest } from './storm-pool.ts';

const port = parentPort;
if (port === null) throw new Error('storm-worker: not started as a worker thread');
const data = workerData as StormWorkerData;
const loaded = loadBlueprint(data.source);
if (!loaded.ok) throw new Error(`storm-worker: the blueprint is not valid: ${loaded.problems.map((problem) => problem.message).join('; ')}`);
const blueprint = loaded.blueprint;

port.on('message', (request: WorkerRequest) => {
  const outcomes: SeedOutcome[] = request.seeds.map((seed) => {
    const result = runStorm({ blueprint, seed });
    return {
      seed,
      ok: result.ok,
      events: result.events,
      judged: result.oracle.judged,
      solved: result.oracle.solved,
      violations: result.violations.slice(0, 5),
      unconverged: result.unconverged.slice(0, 10),
    };
  });
  const reply: WorkerReply = { batch: request.batch, outcomes };
  port.postMessage(reply);
});
const ready: WorkerReply = { batch: -1, outcomes: [] };
port.postMessage(ready);
