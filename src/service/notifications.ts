/**
 * Notifications while this instance leads: the journal's entries, as they are appended, become
 * alerts (AlertFeed) that the notifier delivers. The journal's append listener only queues the
 * entry; the fold and every delivery run later on the event loop, so neither a slow fold nor a
 * hung receiver can hold up the controller's journal writes.
 */
import { Notifier, type NotifyConfig, type ReceiverConfig, type ReceiverPort } from '../notify/index.ts';
import type { JournalEntry } from '../ports/index.ts';
import { AlertFeed } from './alert-feed.ts';
import type { ControlPlane } from './control-plane.ts';

export interface Notifications {
  readonly notifier: Notifier;
  stop(): void;
}

/** Entries folded per turn of the event loop before yielding (a long backlog never blocks requests). */
const FOLD_BATCH = 500;

export function startNotifications(plane: ControlPlane, config: Readonly<NotifyConfig>, options: { createReceiver?: (config: ReceiverConfig) => ReceiverPort } = {}): Notifications {
  const notifier = new Notifier({
    config,
    record: (type, subject, data) => {
      plane.record('audit', type, subject, 'notifier', data);
    },
    ...(options.createReceiver ? { createReceiver: options.createReceiver } : {}),
  });
  const feed = new AlertFeed(plane.blueprint);
  let backlog: JournalEntry[] = [];
  let head = 0;
  let scheduled: NodeJS.Immediate | null = null;
  let stopped = false;

  const drain = () => {
    scheduled = null;
    if (stopped) return;
    const end = Math.min(backlog.length, head + FOLD_BATCH);
    for (; head < end; head++) notifier.offer(feed.next(backlog[head]!));
    if (head === backlog.length) {
      backlog = [];
      head = 0;
    } else {
      scheduled = setImmediate(drain);
    }
  };
  const detach = plane.journal.onAppend((entry) => {
    backlog.push(entry);
    scheduled ??= setImmediate(drain);
  });

  // The whole journal is folded once (incidents span entries); only what no receiver has had yet is sent.
  const existing = plane.journal.entries();
  notifier.restore(existing, existing.at(-1)?.seq ?? 0);
  const appendedMeanwhile = backlog;
  backlog = existing.filter((entry) => entry.seq < (appendedMeanwhile[0]?.seq ?? Number.POSITIVE_INFINITY));
  for (const entry of appendedMeanwhile) backlog.push(entry);
  scheduled ??= setImmediate(drain);

  return {
    notifier,
    stop() {
      stopped = true;
      detach();
      if (scheduled !== null) clearImmediate(scheduled);
      notifier.stop();
    },
  };
}
