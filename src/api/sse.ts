/**
 * The live stream of journal events over server-sent events. Each journal entry is serialised
 * once and written to every client whose scope admits it; its `id` is the entry's sequence
 * number, so a client that reconnects with Last-Event-ID resumes exactly after the last entry it
 * saw. Bounded: a replay sends at most REPLAY_LIMIT entries, and a client that stops reading is
 * dropped once MAX_BUFFERED_BYTES wait for it (it may reconnect and resume).
 */
import type { ServerResponse } from 'node:http';
import type { JournalEntry } from '../ports/index.ts';
import type { JournalStore } from '../journal/store.ts';
import type { ControlPlane } from '../service/control-plane.ts';

export const REPLAY_LIMIT = 10_000;
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
export const CLIENT_LIMIT = 2_000;

interface Client {
  readonly response: ServerResponse;
  readonly admits: (entry: JournalEntry) => boolean;
}

export function formatEvent(entry: JournalEntry): string {
  return `id: ${entry.seq}\nevent: ${entry.kind}\ndata: ${JSON.stringify(entry)}\n\n`;
}

export class EventHub {
  private readonly clients = new Set<Client>();
  private readonly detach: () => void;
  private readonly heartbeat: NodeJS.Timeout;
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly journal: JournalStore,
    private readonly plane: ControlPlane,
    options: { heartbeatMs: number },
  ) {
    this.detach = journal.onAppend((entry) => this.publish(entry));
    // A comment line now and then keeps proxies from closing an idle stream.
    this.heartbeat = setInterval(() => {
      for (const client of this.clients) client.response.write(': keep-alive\n\n');
    }, options.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /** A filter that admits only entries about the vendor's own services and their VMs. */
  vendorFilter(vendor: string): (entry: JournalEntry) => boolean {
    return (entry) => {
      const service = this.plane.serviceOfVm(entry.subject) ?? entry.subject;
      return this.plane.vendorOfService(service) === vendor;
    };
  }

  /** Replays what the client missed, then streams; everything in one synchronous step, so no entry falls between. */
  attach(response: ServerResponse, lastEventId: number | null, admits: (entry: JournalEntry) => boolean): boolean {
    if (this.clients.size >= CLIENT_LIMIT) return false;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write('retry: 1000\n\n');
    if (lastEventId !== null) {
      const from = Math.max(lastEventId + 1, this.journal.length - REPLAY_LIMIT + 1);
      if (from > lastEventId + 1) response.write(`: ${from - lastEventId - 1} older entries skipped; read them from /api/v1/audit\n\n`);
      for (const entry of this.journal.entries(from)) if (admits(entry)) response.write(formatEvent(entry));
    }
    const client: Client = { response, admits };
    this.clients.add(client);
    response.on('close', () => this.clients.delete(client));
    return true;
  }

  private publish(entry: JournalEntry): void {
    if (this.clients.size === 0) return;
    let text: string | null = null;
    for (const client of this.clients) {
      if (!client.admits(entry)) continue;
      if (client.response.writableLength > MAX_BUFFERED_BYTES) {
        this.dropped++;
        this.clients.delete(client);
        client.response.destroy();
        continue;
      }
      text ??= formatEvent(entry);
      client.response.write(text);
      this.delivered++;
    }
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.detach();
    for (const client of this.clients) client.response.end();
    this.clients.clear();
  }
}
