/** The notifier's delivery log: every attempt to reach a receiver, newest first, from the journal. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { DeliveriesSchema, type DeliveryDto } from '../../dto/index.ts';
import { asEvent, type JournalEntry } from '../../ports/index.ts';
import { route } from '../route.ts';
import type { PluginOptions } from './types.ts';

/** How many of the newest journal entries one request reads at most. */
const SCAN_LIMIT = 20_000;

export function deliveryOf(entry: JournalEntry): DeliveryDto | null {
  const event = asEvent(entry);
  const base = { seq: entry.seq, atMs: entry.atMs };
  switch (event.type) {
    case 'notify.sent':
      return { ...base, outcome: 'sent', receiver: event.data.receiver, key: event.data.key, alert: event.data.alert, attempt: event.data.attempt, durationMs: event.data.durationMs, detail: event.data.detail };
    case 'notify.failed':
      return { ...base, outcome: 'failed', receiver: event.data.receiver, key: event.data.key, alert: event.data.alert, attempt: event.data.attempt, durationMs: event.data.durationMs, detail: `${event.data.error}${event.data.retryInMs === null ? '' : ` (retry in ${event.data.retryInMs} ms)`}` };
    case 'notify.dropped':
      return { ...base, outcome: 'dropped', receiver: event.data.receiver, key: event.data.key, alert: event.data.alert, attempt: null, durationMs: null, detail: event.data.reason };
    case 'notify.cursor':
      return { ...base, outcome: 'cursor', receiver: event.data.receiver, key: null, alert: null, attempt: null, durationMs: null, detail: `${event.data.reason} (#${event.data.seq})` };
    default:
      return null;
  }
}

export const notificationsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  route(
    app,
    {
      method: 'GET',
      url: '/notifications',
      summary: "The notifier's delivery log: each attempt to reach a receiver, newest first",
      tag: 'audit',
      permission: 'audit.read',
      query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(200), receiver: z.string().max(63).optional() }).strict(),
      response: DeliveriesSchema,
    },
    async ({ query }) => {
      const scannedFromSeq = Math.max(1, deps.journal.length - SCAN_LIMIT + 1);
      const deliveries: DeliveryDto[] = [];
      for (const entry of deps.journal.entries(scannedFromSeq)) {
        const delivery = deliveryOf(entry);
        if (delivery !== null && (query.receiver === undefined || delivery.receiver === query.receiver)) deliveries.push(delivery);
      }
      return { deliveries: deliveries.reverse().slice(0, query.limit), scannedFromSeq };
    },
  );
};
