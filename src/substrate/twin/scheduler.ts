/**
 * The twin's discrete-event scheduler: a Clock whose time advances only from event to event.
 * Ties are broken by insertion order, so a run is a pure function of its inputs.
 */
import type { Clock, TimerHandle } from '../../ports/index.ts';

interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

export class Scheduler implements Clock {
  private heap: Timer[] = [];
  private byId = new Map<number, Timer>();
  private seq = 0;
  private now = 0;
  private executed = 0;

  nowMs(): number {
    return this.now;
  }

  get eventsExecuted(): number {
    return this.executed;
  }

  get pending(): number {
    return this.byId.size;
  }

  at(atMs: number, callback: () => void): TimerHandle {
    if (!Number.isFinite(atMs)) throw new Error(`scheduler: time ${atMs} is not finite`);
    const timer: Timer = { atMs: Math.max(atMs, this.now), seq: this.seq++, callback, cancelled: false };
    this.push(timer);
    this.byId.set(timer.seq, timer);
    return { id: timer.seq };
  }

  after(delayMs: number, callback: () => void): TimerHandle {
    return this.at(this.now + delayMs, callback);
  }

  cancel(handle: TimerHandle): void {
    const timer = this.byId.get(handle.id);
    if (timer === undefined) return;
    timer.cancelled = true;
    this.byId.delete(handle.id);
  }

  /** Time of the next live event, or null when none is scheduled. */
  nextAtMs(): number | null {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap.length > 0 ? this.heap[0]!.atMs : null;
  }

  /** Runs every event due at or before `untilMs`, then sets the clock to `untilMs`. */
  runUntil(untilMs: number, maxEvents = 50_000_000): void {
    let budget = maxEvents;
    while (this.heap.length > 0 && this.heap[0]!.atMs <= untilMs) {
      if (budget-- <= 0) throw new Error(`scheduler: more than ${maxEvents} events before ${untilMs} ms (a livelock?)`);
      const timer = this.pop();
      if (timer.cancelled) continue;
      this.byId.delete(timer.seq);
      this.now = timer.atMs;
      this.executed++;
      timer.callback();
    }
    this.now = Math.max(this.now, untilMs);
  }

  /** Runs events until `predicate` holds after one, or time passes `untilMs`; returns whether it held. */
  runWhile(untilMs: number, done: () => boolean): boolean {
    while (this.heap.length > 0 && this.heap[0]!.atMs <= untilMs) {
      const timer = this.pop();
      if (timer.cancelled) continue;
      this.byId.delete(timer.seq);
      this.now = timer.atMs;
      this.executed++;
      timer.callback();
      if (done()) return true;
    }
    this.now = Math.max(this.now, untilMs);
    return done();
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(heap[index]!, heap[parent]!)) break;
      [heap[index], heap[parent]] = [heap[parent]!, heap[index]!];
      index = parent;
    }
  }

  private pop(): Timer {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let smallest = index;
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left;
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right;
        if (smallest === index) break;
        [heap[index], heap[smallest]] = [heap[smallest]!, heap[index]!];
        index = smallest;
      }
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
