/** The live event stream over loopback: live delivery, resuming with Last-Event-ID, vendor scope. */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { harness, type Harness, type TestRole } from './harness.ts';

let h: Harness;
afterEach(async () => h?.close());

interface SseEvent {
  id: number;
  event: string;
  data: { seq: number; type: string; subject: string };
}

/** Reads events from a stream until `until` says enough, or the deadline passes. */
async function readEvents(port: number, role: TestRole, headers: Record<string, string>, until: (events: SseEvent[]) => boolean, act?: () => void): Promise<SseEvent[]> {
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), 5000);
  const events: SseEvent[] = [];
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: { ...h.as(role), ...headers }, signal: controller.signal });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    act?.();
    while (!until(events)) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let split: number;
      while ((split = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, split);
        buffer = buffer.slice(split + 2);
        const fields = Object.fromEntries(block.split('\n').filter((line) => !line.startsWith(':') && line.includes(': ')).map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]));
        if (fields.id !== undefined) events.push({ id: Number(fields.id), event: fields.event!, data: JSON.parse(fields.data!) });
      }
    }
  } finally {
    clearTimeout(deadline);
    controller.abort();
  }
  return events;
}

describe('event stream', () => {
  it('delivers new journal entries live, and resumes exactly after Last-Event-ID', async () => {
    h = await harness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    const start = h.journal.length;
    const live = await readEvents(port, 'operator', {}, (events) => events.length >= 3, () => {
      setTimeout(() => {
        for (let index = 0; index < 3; index++) h.plane.record('audit', 'host.maintenance.started', `subject-${index}`, 'test', { reason: `test ${index}` });
      }, 50);
    });
    expect(live.map((event) => event.id)).toEqual([start + 1, start + 2, start + 3]);
    expect(live[0]!.data.type).toBe('host.maintenance.started');

    const resumed = await readEvents(port, 'operator', { 'last-event-id': String(start + 1) }, (events) => events.length >= 2);
    expect(resumed.map((event) => event.id)).toEqual([start + 2, start + 3]);
  });

  it('shows a vendor only the events of its own systems', async () => {
    h = await harness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    h.plane.record('audit', 'host.maintenance.started', 'ehr-db-1', 'test', { reason: 'test' });
    h.plane.record('audit', 'host.maintenance.started', 'lis', 'test', { reason: 'test' });
    h.plane.record('audit', 'host.maintenance.started', 'lis-1', 'test', { reason: 'test' });
    const all = await readEvents(port, 'vendor:vendor-b', { 'last-event-id': '0' }, (list) => list.some((event) => event.data.subject === 'lis-1' && event.data.type === 'host.maintenance.started'));
    const subjects = new Set(all.map((event) => event.data.subject));
    for (const subject of subjects) expect(['lis', 'lis-1', 'dwh', 'dwh-1']).toContain(subject);
    expect(subjects.has('lis-1')).toBe(true);
  });

  it('lets one account hold at most 8 streams; another account still gets one (coded 429, not a conflict)', async () => {
    h = await harness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    const open: AbortController[] = [];
    try {
      for (let index = 0; index < 8; index++) {
        const controller = new AbortController();
        open.push(controller);
        const response = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: h.as('vendor:vendor-a'), signal: controller.signal });
        expect(response.status).toBe(200);
      }
      const refused = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: h.as('vendor:vendor-a') });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('TMR_API_TOO_MANY_STREAMS');
      const other = new AbortController();
      open.push(other);
      const fine = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: h.as('operator'), signal: other.signal });
      expect(fine.status).toBe(200);
    } finally {
      for (const controller of open) controller.abort();
    }
  });

  it('replays 10,000 entries a page at a time, in order, each once, with entries appended meanwhile after them', async () => {
    h = await harness();
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    for (let index = 0; index < 12_000; index++) h.plane.record('audit', 'host.maintenance.started', `bulk-${index}`, 'test', { reason: 'bulk' });
    const length = h.journal.length;
    let appendedDuringReplay = 0;
    const events = await readEvents(
      port,
      'operator',
      { 'last-event-id': '0' },
      (list) => list.length >= 10_000 + 3,
      () => {
        // Appended while the replay pages are still being written: they must follow it, in order.
        setImmediate(() => {
          for (let index = 0; index < 3; index++) h.plane.record('audit', 'host.maintenance.started', `live-${index}`, 'test', { reason: 'live' });
          appendedDuringReplay = 3;
        });
      },
    );
    expect(appendedDuringReplay).toBe(3);
    const ids = events.map((event) => event.id);
    expect(ids[0]).toBe(length - 10_000 + 1);
    expect(ids.slice(0, 10_000).at(-1)).toBe(length);
    for (let index = 1; index < ids.length; index++) expect(ids[index]).toBe(ids[index - 1]! + 1);
    expect(events.slice(-3).map((event) => event.data.subject)).toEqual(['live-0', 'live-1', 'live-2']);
  }, 30_000);
});
