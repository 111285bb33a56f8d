/**
 * GET /api/v1/notifications: the notifier's journal entries as a delivery log, newest first,
 * filtered by receiver, and the notify.* entries in the plain audit log too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveriesDto } from '../../src/dto/index.ts';
import { harness, type Harness } from './harness.ts';

describe('the delivery log', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
    const base = { alert: 'incident.opened', sourceSeq: 40, durationMs: 12 };
    h.plane.record('audit', 'notify.cursor', 'mail', 'notifier', { receiver: 'mail', seq: 39, reason: 'a new receiver starts at the end of the journal' });
    h.plane.record('audit', 'notify.failed', 'mail', 'notifier', { ...base, receiver: 'mail', key: 'incident.opened:incident-40', attempt: 1, error: 'TMR_NOTIFY_DELIVERY: SMTP 127.0.0.1:25: connection refused', retryInMs: 1000 });
    h.plane.record('audit', 'notify.sent', 'mail', 'notifier', { ...base, receiver: 'mail', key: 'incident.opened:incident-40', attempt: 2, detail: '250 OK: queued' });
    h.plane.record('audit', 'notify.sent', 'chat', 'notifier', { ...base, receiver: 'chat', key: 'incident.opened:incident-40', attempt: 1, detail: 'HTTP 200' });
  });
  afterAll(async () => h.close());

  it('lists every attempt newest first, and one receiver on request', async () => {
    const all = (await h.app.inject({ method: 'GET', url: '/api/v1/notifications', headers: h.as('auditor') })).json() as DeliveriesDto;
    expect(all.deliveries.map((delivery) => [delivery.receiver, delivery.outcome, delivery.attempt])).toEqual([
      ['chat', 'sent', 1],
      ['mail', 'sent', 2],
      ['mail', 'failed', 1],
      ['mail', 'cursor', null],
    ]);
    expect(all.deliveries[2]!.detail).toBe('TMR_NOTIFY_DELIVERY: SMTP 127.0.0.1:25: connection refused (retry in 1000 ms)');
    const mail = (await h.app.inject({ method: 'GET', url: '/api/v1/notifications?receiver=mail&limit=1', headers: h.as('operator') })).json() as DeliveriesDto;
    expect(mail.deliveries.map((delivery) => delivery.detail)).toEqual(['250 OK: queued']);
  });

  it('refuses an unknown query field with the coded validation error', async () => {
    const refused = await h.app.inject({ method: 'GET', url: '/api/v1/notifications?since=1', headers: h.as('admin') });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.code).toBe('TMR_API_VALIDATION');
  });
});
