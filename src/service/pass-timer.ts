/**
 * A Clock that times the controller's passes for /metrics without touching the controller: it
 * wraps each scheduled callback and, when the controller's pass count moved during it, reports the
 * callback's wall time. Callbacks that are not passes (action timeouts) are not reported.
 */
import type { Clock, TimerHandle } from '../ports/index.ts';

export function passTimingClock(clock: Clock, passes: () => number, observeSeconds: (seconds: number) => void): Clock {
  return {
    nowMs: () => clock.nowMs(),
    cancel: (handle: TimerHandle) => clock.cancel(handle),
    at(atMs: number, callback: () => void): TimerHandle {
      return clock.at(atMs, () => {
        const before = passes();
        const startedMs = performance.now();
        try {
          callback();
        } finally {
          if (passes() !== before) observeSeconds((performance.now() - startedMs) / 1000);
        }
      });
    },
  };
}
