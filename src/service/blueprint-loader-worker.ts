/**
 * The worker side of BlueprintLoader: loads and validates one candidate blueprint per message, off
 * the service's event loop. A hostile document costs this thread, within its time and memory
 * budget, never the controller or /healthz.
 */
import { parentPort } from 'node:worker_threads';
import { loadBlueprint } from '../model/index.ts';

parentPort?.on('message', (message: { readonly id: number; readonly source: string }) => {
  parentPort?.postMessage({ id: message.id, result: loadBlueprint(message.source) });
});
// Loaded: the budget of a candidate starts now, not while the worker boots.
parentPort?.postMessage({ ready: true });
