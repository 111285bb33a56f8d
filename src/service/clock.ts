/**
 * The service's Clock: wall time in Unix milliseconds, so journal times mean the same across
 * restarts and instances. `speed` > 1 (tests, demos) runs it faster from `originMs` on, together
 * with a twin on the same clock.
 */
import { RealClock } from '../runtime/real-clock.ts';

export class WallClock extends RealClock {
  constructor(speed = 1, wallNowMs: () => number = Date.now, originMs = wallNowMs()) {
    super(speed, wallNowMs, originMs);
  }
}
