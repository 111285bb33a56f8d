/**
 * The notifier: routes alerts to receivers and delivers them, durably and off the controller's path.
 *
 * - Each receiver has its own bounded queue and one delivery at a time, so a receiver that is down
 *   or hung delays only itself; nothing here is awaited by the controller or the journal.
 * - Every attempt is journaled (notify.sent / notify.failed / notify.dropped) with the alert's
 *   idempotency key. After a restart the notifier reads those back and sends only what no
 *   notify.sent or notify.dropped covers: at-least-once, and a receiver that deduplicates on the
 *   key sees each alert once.
 * - A receiver's cursor starts at the journal's end when it first appears (notify.cursor), so adding
 *   a receiver does not replay history to it.
 * - Failed attempts back off exponentially up to maxRetryMs; an alert older than maxAgeMin is given up.
 */
import { isEvent, type JournalEntry, type JournalEvents } from '../ports/index.ts';
import { TomaranaiError } from '../errors/index.ts';
import { severityRank, type Alert } from './alert.ts';
import type { NotifyConfig, ReceiverConfig } from './config.ts';
import { heldByQuietHours } from './quiet-hours.ts';
import type { Delivery, ReceiverPort } from './receivers/port.ts';
import { createReceiver } from './receivers/index.ts';

type NotifyEventType = 'notify.sent' | 'notify.failed' | 'notify.dropped' | 'notify.cursor';

export interface NotifierOptions {
  readonly config: Readonly<NotifyConfig>;
  /** Journals one attempt; may throw when this instance no longer leads (the notifier stops then). */
  readonly record: <T extends NotifyEventType>(type: T, subject: string, data: JournalEvents[T]) => void;
  /** Wall time: retries, timeouts and quiet hours run on the wall clock, whatever the controller's speed. */
  readonly wallNowMs?: () => number;
  readonly createReceiver?: (config: ReceiverConfig) => ReceiverPort;
}

interface Pending {
  alert: Alert;
  attempt: number;
  nextAtMs: number;
  readonly enqueuedAtMs: number;
  readonly repeatMs: number;
}

const QUEUE_LIMIT = 10_000;
const QUIET_RECHECK_MS = 60_000;

class Lane {
  readonly queue: Pending[] = [];
  readonly done = new Set<string>();
  busy = false;
  timer: NodeJS.Timeout | null = null;
  abort: AbortController | null = null;
  readonly repeats = new Map<string, NodeJS.Timeout>();
  cursor = 0;
  known = false;
  constructor(readonly port: ReceiverPort) {}
}

export class Notifier {
  private readonly lanes = new Map<string, Lane>();
  private readonly wallNowMs: () => number;
  private stopped = false;
  /** Deliveries per receiver and outcome since start (for /metrics). */
  readonly outcomes = new Map<string, { sent: number; failed: number; dropped: number }>();

  constructor(private readonly options: NotifierOptions) {
    this.wallNowMs = options.wallNowMs ?? Date.now;
    const make = options.createReceiver ?? createReceiver;
    for (const receiver of options.config.receivers) {
      this.lanes.set(receiver.name, new Lane(make(receiver)));
      this.outcomes.set(receiver.name, { sent: 0, failed: 0, dropped: 0 });
    }
  }

  /** Reads the notifier's own entries back: each receiver's cursor and the alerts already finished. */
  restore(entries: Iterable<JournalEntry>, endSeq: number): void {
    for (const entry of entries) {
      if (isEvent(entry, 'notify.cursor')) {
        const lane = this.lanes.get(entry.data.receiver);
        if (lane && !lane.known) {
          lane.known = true;
          lane.cursor = entry.data.seq;
        }
      } else if (isEvent(entry, 'notify.sent') || isEvent(entry, 'notify.dropped')) {
        this.lanes.get(entry.data.receiver)?.done.add(entry.data.key);
      }
    }
    for (const [name, lane] of this.lanes) {
      if (lane.known) continue;
      lane.known = true;
      lane.cursor = endSeq;
      this.journal('notify.cursor', name, { receiver: name, seq: endSeq, reason: 'a new receiver starts at the end of the journal' });
    }
  }

  /** Routes alerts to their receivers' queues and starts delivery; returns at once. */
  offer(alerts: readonly Alert[]): void {
    if (this.stopped) return;
    for (const alert of alerts) {
      for (const [name, lane] of this.lanes) {
        if (alert.sourceSeq <= lane.cursor || lane.done.has(alert.key)) continue;
        const routed = this.route(alert, lane.port.config);
        if (routed === null) continue;
        if (alert.resolved) this.cancelRepeat(lane, alert.groupKey);
        this.enqueue(name, lane, { alert: routed.alert, attempt: 0, nextAtMs: 0, enqueuedAtMs: this.wallNowMs(), repeatMs: routed.repeatMs });
      }
    }
  }

  /** The alert as this receiver gets it (a vendor's sees only its own systems), or null if no route carries it. */
  private route(alert: Alert, receiver: ReceiverConfig): { alert: Alert; repeatMs: number } | null {
    let matched = false;
    let repeatMs = 0;
    for (const route of this.options.config.routes) {
      if (!route.receivers.includes(receiver.name)) continue;
      if (route.events !== undefined && !route.events.includes(alert.kind)) continue;
      if (severityRank(alert.severity) < severityRank(route.minSeverity)) continue;
      matched = true;
      repeatMs = Math.max(repeatMs, route.repeatIntervalMin * 60_000);
    }
    if (!matched) return null;
    if (receiver.vendor === undefined) return { alert, repeatMs };
    const services = alert.services.filter((service) => service.vendor === receiver.vendor);
    return services.length === 0 ? null : { alert: { ...alert, services }, repeatMs };
  }

  private enqueue(name: string, lane: Lane, pending: Pending): void {
    if (lane.queue.some((item) => item.alert.key === pending.alert.key)) return;
    if (lane.queue.length >= QUEUE_LIMIT) {
      const oldest = lane.queue.shift()!;
      this.finish(name, lane, oldest, `the queue of ${QUEUE_LIMIT} is full: the oldest alert is given up`);
    }
    lane.queue.push(pending);
    this.pump(name, lane);
  }

  /**
   * The next alert to deliver: the oldest one that quiet hours do not hold and that no earlier
   * alert of its group is waiting before (a recovery never overtakes its incident).
   */
  private nextOf(lane: Lane, nowMs: number): Pending | null {
    const waitingGroups = new Set<string>();
    for (const item of lane.queue) {
      if (!waitingGroups.has(item.alert.groupKey) && !heldByQuietHours(lane.port.config.quietHours, item.alert, nowMs)) return item;
      waitingGroups.add(item.alert.groupKey);
    }
    return null;
  }

  private pump(name: string, lane: Lane): void {
    if (this.stopped || lane.busy || lane.queue.length === 0) return;
    if (lane.timer !== null) {
      clearTimeout(lane.timer);
      lane.timer = null;
    }
    const nowMs = this.wallNowMs();
    const next = this.nextOf(lane, nowMs);
    if (next === null) return this.wake(name, lane, QUIET_RECHECK_MS);
    if (next.nextAtMs > nowMs) return this.wake(name, lane, next.nextAtMs - nowMs);
    void this.attempt(name, lane, next);
  }

  private wake(name: string, lane: Lane, afterMs: number): void {
    lane.timer = setTimeout(() => {
      lane.timer = null;
      this.pump(name, lane);
    }, Math.max(1, afterMs));
    lane.timer.unref();
  }

  private async attempt(name: string, lane: Lane, pending: Pending): Promise<void> {
    const delivery = lane.port.config.delivery;
    lane.busy = true;
    pending.attempt++;
    const abort = new AbortController();
    lane.abort = abort;
    const timeout = setTimeout(() => abort.abort(), delivery.timeoutMs);
    const startedMs = performance.now();
    let result: Delivery | null = null;
    let failure: TomaranaiError | null = null;
    try {
      result = await lane.port.send(pending.alert, abort.signal);
    } catch (error) {
      failure = error instanceof TomaranaiError ? error : new TomaranaiError('TMR_NOTIFY_DELIVERY', error instanceof Error ? error.message : String(error));
    } finally {
      clearTimeout(timeout);
      lane.abort = null;
      lane.busy = false;
    }
    if (this.stopped) return;
    const durationMs = Math.round(performance.now() - startedMs);
    const base = { receiver: name, key: pending.alert.key, alert: pending.alert.kind, sourceSeq: pending.alert.sourceSeq, attempt: pending.attempt, durationMs };
    if (result !== null) {
      this.remove(lane, pending);
      lane.done.add(pending.alert.key);
      this.count(name, 'sent');
      this.journal('notify.sent', name, { ...base, detail: result.detail });
      if (pending.repeatMs > 0 && !pending.alert.resolved) this.scheduleRepeat(name, lane, pending);
    } else {
      const ageMs = this.wallNowMs() - pending.enqueuedAtMs;
      const retryInMs = Math.min(delivery.initialRetryMs * 2 ** (pending.attempt - 1), delivery.maxRetryMs);
      const givingUp = ageMs + retryInMs > delivery.maxAgeMin * 60_000;
      this.count(name, 'failed');
      this.journal('notify.failed', name, { ...base, error: `${failure!.code}: ${failure!.message}`.slice(0, 500), retryInMs: givingUp ? null : retryInMs });
      if (givingUp) {
        this.remove(lane, pending);
        this.finish(name, lane, pending, `not delivered within ${delivery.maxAgeMin} min`);
      } else {
        pending.nextAtMs = this.wallNowMs() + retryInMs;
      }
    }
    this.pump(name, lane);
  }

  private remove(lane: Lane, pending: Pending): void {
    const index = lane.queue.indexOf(pending);
    if (index >= 0) lane.queue.splice(index, 1);
  }

  /** Gives an alert up for this receiver, journaled, so a restart does not try it again. */
  private finish(name: string, lane: Lane, pending: Pending, reason: string): void {
    lane.done.add(pending.alert.key);
    this.count(name, 'dropped');
    this.journal('notify.dropped', name, { receiver: name, key: pending.alert.key, alert: pending.alert.kind, sourceSeq: pending.alert.sourceSeq, reason });
  }

  /** An open incident is repeated every repeatIntervalMin until its recovery is offered (not durable). */
  private scheduleRepeat(name: string, lane: Lane, pending: Pending): void {
    const group = pending.alert.groupKey;
    this.cancelRepeat(lane, group);
    const timer = setTimeout(() => {
      lane.repeats.delete(group);
      const round = Number(/:repeat:(\d+)$/.exec(pending.alert.key)?.[1] ?? 0) + 1;
      const key = `${pending.alert.key.replace(/:repeat:\d+$/, '')}:repeat:${round}`;
      this.enqueue(name, lane, { ...pending, alert: { ...pending.alert, key, facts: { ...pending.alert.facts, repeat: round } }, attempt: 0, nextAtMs: 0, enqueuedAtMs: this.wallNowMs() });
    }, pending.repeatMs);
    timer.unref();
    lane.repeats.set(group, timer);
  }

  private cancelRepeat(lane: Lane, group: string): void {
    const timer = lane.repeats.get(group);
    if (timer !== undefined) clearTimeout(timer);
    lane.repeats.delete(group);
  }

  private count(name: string, outcome: 'sent' | 'failed' | 'dropped'): void {
    const counts = this.outcomes.get(name);
    if (counts) counts[outcome]++;
  }

  private journal<T extends NotifyEventType>(type: T, subject: string, data: JournalEvents[T]): void {
    try {
      this.options.record(type, subject, data);
    } catch {
      // This instance no longer leads: its journal refuses writes, and the next leader's notifier
      // delivers from the journal; stop here rather than deliver without a record.
      this.stop();
    }
  }

  /** Alerts waiting per receiver (for /metrics). */
  queueDepths(): Map<string, number> {
    return new Map([...this.lanes].map(([name, lane]) => [name, lane.queue.length]));
  }

  receiverNames(): string[] {
    return [...this.lanes.keys()];
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const lane of this.lanes.values()) {
      if (lane.timer !== null) clearTimeout(lane.timer);
      for (const timer of lane.repeats.values()) clearTimeout(timer);
      lane.abort?.abort();
      lane.port.close();
    }
  }
}

/** Sends one alert to one receiver now, without a journal (`tomaranai notify test`). */
export async function deliverOnce(port: ReceiverPort, alert: Alert): Promise<Delivery> {
  const abort = new AbortController();
  const timeout = setTimeout(() => abort.abort(), port.config.delivery.timeoutMs);
  try {
    return await port.send(alert, abort.signal);
  } finally {
    clearTimeout(timeout);
    port.close();
  }
}
