/**
 * The drift watch as a long-running loop (for `tomaranai serve --vsphere-drift FILE`): connects,
 * watches, records every report through `record` (the service's audit inbox, which the leader
 * journals), and after a lost connection or a fault connects again with a growing pause (1 s to 60 s).
 */
import type { Blueprint } from '../model/index.ts';
import type { VsphereClient } from '../substrate/vsphere/client.ts';
import { watchDrift, type DriftReport } from './drift.ts';
import { compileSettings } from './settings.ts';

export interface DriftLoopOptions {
  readonly blueprint: Blueprint;
  readonly connect: () => Promise<VsphereClient>;
  readonly record: (report: DriftReport) => Promise<void>;
  readonly log: (line: string) => void;
  readonly nowMs: () => number;
}

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 60_000;

export function startDriftLoop(options: DriftLoopOptions): { stop(): Promise<void> } {
  const controller = new AbortController();
  const desired = compileSettings(options.blueprint);
  const pause = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    controller.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
  const running = (async () => {
    let retryMs = RETRY_FIRST_MS;
    while (!controller.signal.aborted) {
      let client: VsphereClient | null = null;
      try {
        client = await options.connect();
        retryMs = RETRY_FIRST_MS;
        await watchDrift({
          client,
          blueprint: options.blueprint,
          desired,
          nowMs: options.nowMs,
          signal: controller.signal,
          onReport: (report) => void options.record(report).catch((error: unknown) => options.log(`vsphere drift: could not record a report: ${String(error)}\n`)),
        });
      } catch (error) {
        options.log(`vsphere drift: ${error instanceof Error ? error.message : String(error)}; again in ${retryMs / 1000} s\n`);
        await pause(retryMs);
        retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
      } finally {
        await client?.logout().catch(() => undefined);
      }
    }
  })();
  return {
    stop: async () => {
      controller.abort();
      await running;
    },
  };
}
