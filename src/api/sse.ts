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
/** A replay is written this many entries at a time, the event loop free between pages. */
export const REPLAY_PAGE = 500;
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
export const CLIENT_LIMIT = 2_000;
/** Streams one account (one token or session owner) may hold at once: one caller cannot take every slot. */
export const CLIENTS_PER_PRINCIPAL = 8;

interface Client {
  readonly response: ServerResponse;
  readonly admits: (entry: JournalEntry) => boolean;
  readonly principal: string;
  /** Live entries that arrived while the client's replay was still being written (null once live). */
  backlog: JournalEntry[] | null;
}

export type AttachResult = 'attached' | 'server-full' | 'principal-full';

export function formatEvent(entry: JournalEntry): string {
  return `id: ${entry.seq}\nevent: ${entry.kind}\ndata: ${JSON.stringify(entry)}\n\n`;
}

export class EventHub {
  private readonly clients = new Set<Client>();
  private readonly perPrincipal = new Map<string, number>();
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

  /**
   * Attaches a client: it receives every entry after `lastEventId` (at most REPLAY_LIMIT of the
   * newest), then the live stream, in order, each exactly once. The replay is written a page at a
   * time with the event loop free between pages; live entries that arrive meanwhile wait in the
   * client's backlog and follow the replay.
   */
  attach(response: ServerResponse, lastEventId: number | null, admits: (entry: JournalEntry) => boolean, principal: string): AttachResult {
    if (this.clients.size >= CLIENT_LIMIT) return 'server-full';
    if ((this.perPrincipal.get(principal) ?? 0) >= CLIENTS_PER_PRINCIPAL) return 'principal-full';
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    response.write('retry: 1000\n\n');
    const client: Client = { response, admits, principal, backlog: lastEventId === null ? null : [] };
    this.clients.add(client);
    this.perPrincipal.set(principal, (this.perPrincipal.get(principal) ?? 0) + 1);
    response.on('close', () => this.remove(client));
    if (lastEventId !== null) {
      const end = this.journal.length;
      const from = Math.max(lastEventId + 1, end - REPLAY_LIMIT + 1);
      if (from > lastEventId + 1) response.write(`: ${from - lastEventId - 1} older entries skipped; read them from /api/v1/audit\n\n`);
      this.replay(client, from, end);
    }
    return 'attached';
  }

  /** Writes one page of the replay, then yields; the last page hands over to the live stream. */
  private replay(client: Client, from: number, end: number): void {
    if (!this.clients.has(client)) return;
    const page = from <= end ? this.journal.entries(from, Math.min(REPLAY_PAGE, end - from + 1)) : [];
    for (const entry of page) if (client.admits(entry)) client.response.write(formatEvent(entry));
    const next = from + page.length;
    if (page.length > 0 && next <= end) {
      setImmediate(() => this.replay(client, next, end));
      return;
    }
    const backlog = client.backlog ?? [];
    client.backlog = null;
    for (const entry of backlog) if (entry.seq > end) this.write(client, entry);
  }

  private remove(client: Client): void {
    if (!this.clients.delete(client)) return;
    const count = (this.perPrincipal.get(client.principal) ?? 1) - 1;
    if (count <= 0) this.perPrincipal.delete(client.principal);
    else this.perPrincipal.set(client.principal, count);
  }

  private publish(entry: JournalEntry): void {
    if (this.clients.size === 0) return;
    for (const client of this.clients) {
      if (client.backlog !== null) client.backlog.push(entry);
      else this.write(client, entry);
    }
  }

  private write(client: Client, entry: JournalEntry): void {
    if (!client.admits(entry)) return;
    if (client.response.writableLength > MAX_BUFFERED_BYTES) {
      this.dropped++;
      this.remove(client);
      client.response.destroy();
      return;
    }
    client.response.write(formatEvent(entry));
    this.delivered++;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.detach();
    for (const client of this.clients) client.response.end();
    this.clients.clear();
    this.perPrincipal.clear();
  }
}
