/**
 * The notifier against fake receivers that record what they were given: routing by event and
 * severity, vendor routing, quiet hours, retries with backoff, and no duplicate after a restart
 * (the journal says what was already sent).
 */
import { describe, expect, it } from 'vitest';
import { Notifier, parseNotifyConfig, type Alert, type ReceiverConfig, type ReceiverPort } from '../../src/notify/index.ts';
import type { JournalEntry } from '../../src/ports/index.ts';

function alertOf(partial: Partial<Alert> & Pick<Alert, 'key' | 'kind'>): Alert {
  return { severity: 'critical', resolved: false, groupKey: partial.key, subject: 'r1-h1', sourceSeq: 10, atMs: 1_000, services: [], facts: {}, ...partial };
}

const LIS = { name: 'lis', title: 'LIS', vendor: 'vendor-a', tier: 'critical', rtoTargetS: 300, rtoS: null };
const PACS = { name: 'pacs', title: 'PACS', vendor: 'vendor-b', tier: 'critical', rtoTargetS: 300, rtoS: null };

class FakeReceiver implements ReceiverPort {
  readonly got: Alert[] = [];
  failures = 0;
  constructor(readonly config: ReceiverConfig) {}
  async send(alert: Alert): Promise<{ detail: string }> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('connection refused');
    }
    this.got.push(alert);
    return { detail: 'ok' };
  }
  close(): void {}
}

function setup(yaml: string, options: { wallNowMs?: () => number; journal?: JournalEntry[] } = {}) {
  const config = parseNotifyConfig(yaml);
  const receivers = new Map<string, FakeReceiver>();
  const journal: JournalEntry[] = options.journal ?? [];
  const notifier = new Notifier({
    config,
    record: (type, subject, data) => journal.push({ seq: journal.length + 1, atMs: 0, kind: 'audit', type, subject, actor: 'notifier', data, hash: '', previousHash: '' }),
    createReceiver: (receiver) => {
      const fake = new FakeReceiver(receiver);
      receivers.set(receiver.name, fake);
      return fake;
    },
    ...(options.wallNowMs ? { wallNowMs: options.wallNowMs } : {}),
  });
  notifier.restore(journal, 0);
  return { notifier, receivers, journal };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('the notifier', () => {
  it('sends each alert only to the receivers whose routes carry its kind and severity', async () => {
    const { notifier, receivers } = setup(`
receivers:
  - { name: mail, type: webhook, url: "http://127.0.0.1:9/a" }
  - { name: chat, type: webhook, url: "http://127.0.0.1:9/b" }
routes:
  - { events: [incident.opened, incident.closed], receivers: [mail] }
  - { minSeverity: critical, receivers: [chat] }
`);
    notifier.offer([alertOf({ key: 'incident.opened:incident-3', kind: 'incident.opened' }), alertOf({ key: 'drill.finished:9', kind: 'drill.finished', severity: 'info' })]);
    await settle();
    expect(receivers.get('mail')!.got.map((alert) => alert.kind)).toEqual(['incident.opened']);
    expect(receivers.get('chat')!.got.map((alert) => alert.kind)).toEqual(['incident.opened']);
    notifier.stop();
  });

  it("tells a vendor's receiver only about that vendor's systems", async () => {
    const { notifier, receivers } = setup(`
receivers:
  - { name: vendor-a-desk, type: webhook, url: "http://127.0.0.1:9/a", vendor: vendor-a }
routes:
  - { receivers: [vendor-a-desk] }
`);
    notifier.offer([
      alertOf({ key: 'incident.opened:incident-1', kind: 'incident.opened', services: [LIS, PACS] }),
      alertOf({ key: 'incident.opened:incident-2', kind: 'incident.opened', services: [PACS] }),
      alertOf({ key: 'leader.changed:5', kind: 'leader.changed' }),
    ]);
    await settle();
    const got = receivers.get('vendor-a-desk')!.got;
    expect(got.map((alert) => alert.key)).toEqual(['incident.opened:incident-1']);
    expect(got[0]!.services.map((service) => service.name)).toEqual(['lis']);
    notifier.stop();
  });

  it('holds a warning back in quiet hours, but not a critical alert, and never lets a recovery overtake its incident', async () => {
    // 23:30 in Tokyo: inside 22:00–07:00.
    const night = Date.parse('2026-12-01T14:30:00Z');
    const { notifier, receivers } = setup(
      `
receivers:
  - { name: mail, type: webhook, url: "http://127.0.0.1:9/a", quietHours: { from: "22:00", to: "07:00", timeZone: Asia/Tokyo, minSeverity: critical } }
routes:
  - { receivers: [mail] }
`,
      { wallNowMs: () => night },
    );
    notifier.offer([
      alertOf({ key: 'host.degraded:4', kind: 'host.degraded', severity: 'warning', sourceSeq: 4 }),
      alertOf({ key: 'incident.opened:incident-5', kind: 'incident.opened', sourceSeq: 5 }),
      alertOf({ key: 'incident.closed:incident-5', kind: 'incident.closed', resolved: true, groupKey: 'incident.opened:incident-5', sourceSeq: 9 }),
    ]);
    await settle();
    expect(receivers.get('mail')!.got.map((alert) => alert.key)).toEqual(['incident.opened:incident-5', 'incident.closed:incident-5']);
    expect(notifier.queueDepths().get('mail')).toBe(1);
    notifier.stop();
  });

  it('retries a refused delivery with growing backoff, journaling each attempt, until it is taken', async () => {
    const { notifier, receivers, journal } = setup(`
receivers:
  - { name: hook, type: webhook, url: "http://127.0.0.1:9/a", delivery: { initialRetryMs: 20, maxRetryMs: 40 } }
routes:
  - { receivers: [hook] }
`);
    receivers.get('hook')!.failures = 3;
    notifier.offer([alertOf({ key: 'fence.failed:7', kind: 'fence.failed' })]);
    const deadline = performance.now() + 2_000;
    while (receivers.get('hook')!.got.length === 0 && performance.now() < deadline) await settle();
    const attempts = journal.filter((entry) => entry.type.startsWith('notify.') && entry.type !== 'notify.cursor');
    expect(attempts.map((entry) => [entry.type, entry.data.attempt, entry.data.retryInMs ?? null])).toEqual([
      ['notify.failed', 1, 20],
      ['notify.failed', 2, 40],
      ['notify.failed', 3, 40],
      ['notify.sent', 4, null],
    ]);
    notifier.stop();
  });

  it('sends nothing twice after a restart: what the journal says was sent is skipped, the rest is delivered', async () => {
    const yaml = `
receivers:
  - { name: hook, type: webhook, url: "http://127.0.0.1:9/a" }
routes:
  - { receivers: [hook] }
`;
    const first = setup(yaml);
    const opened = alertOf({ key: 'incident.opened:incident-3', kind: 'incident.opened', sourceSeq: 3 });
    const closed = alertOf({ key: 'incident.closed:incident-3', kind: 'incident.closed', sourceSeq: 8, resolved: true, groupKey: opened.key });
    first.notifier.offer([opened]);
    await settle();
    first.notifier.stop();
    // The new leader replays every alert from the journal; only the closing is new to the receiver.
    const second = setup(yaml, { journal: first.journal });
    second.notifier.offer([opened, closed]);
    await settle();
    expect(first.receivers.get('hook')!.got.map((alert) => alert.key)).toEqual([opened.key]);
    expect(second.receivers.get('hook')!.got.map((alert) => alert.key)).toEqual([closed.key]);
    second.notifier.stop();
  });

  it('starts a new receiver at the end of the journal instead of replaying history to it', async () => {
    const config = parseNotifyConfig('receivers: [{ name: hook, type: webhook, url: "http://127.0.0.1:9/a" }]\nroutes: [{ receivers: [hook] }]');
    const journal: JournalEntry[] = [];
    let fake: FakeReceiver | null = null;
    const notifier = new Notifier({ config, record: (type, subject, data) => journal.push({ seq: 100 + journal.length, atMs: 0, kind: 'audit', type, subject, actor: 'n', data, hash: '', previousHash: '' }), createReceiver: (receiver) => (fake = new FakeReceiver(receiver)) });
    notifier.restore([], 50);
    notifier.offer([alertOf({ key: 'old', kind: 'fence.failed', sourceSeq: 40 }), alertOf({ key: 'new', kind: 'fence.failed', sourceSeq: 51 })]);
    await settle();
    expect(journal[0]!.type).toBe('notify.cursor');
    expect(fake!.got.map((alert) => alert.key)).toEqual(['new']);
    notifier.stop();
  });

  it('refuses a configuration with every fault listed', () => {
    expect(() =>
      parseNotifyConfig(`
receivers:
  - { name: mail, type: email, host: smtp.example, from: a@b.c, to: [] }
  - { name: nms, type: snmp, host: 10.0.0.1, version: "3" }
routes:
  - { events: [incident.exploded], receivers: [pager] }
`),
    ).toThrow(/TMR_NOTIFY_CONFIG|field\(s\) at fault/);
    try {
      parseNotifyConfig('receivers:\n  - { name: mail, type: email, host: smtp.example, from: a@b.c, to: [] }\n  - { name: nms, type: snmp, host: 10.0.0.1, version: "3" }\nroutes:\n  - { events: [incident.exploded], receivers: [pager] }\n');
    } catch (error) {
      const message = (error as Error).message;
      expect((error as { code: string }).code).toBe('TMR_NOTIFY_CONFIG');
      for (const path of ['receivers.0.to', 'receivers.1.user', 'routes.0.events.0']) expect(message).toContain(path);
    }
  });
});
