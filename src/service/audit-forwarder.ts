/**
 * Audit that leaves the host as it is written: every journal entry, in order, to a syslog server
 * (RFC 5424 lines, octet-counted over TCP or TLS, RFC 6587/5425) — the hospital's SIEM or log
 * archive. Delivery survives restarts: the sequence number of the last entry the server's socket
 * took is kept in a cursor file (0600) beside the database, and a restarted leader resumes after it
 * (at least once: an entry in flight at a crash is sent again; its seq and hash say so). A server
 * that is down is retried with backoff and never slows the controller: the journal's append hook
 * only wakes the forwarder.
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync, fsyncSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { connect as connectTls } from 'node:tls';
import { TomaranaiError } from '../errors/index.ts';
import type { JournalEntry } from '../ports/index.ts';
import type { JournalStore } from '../journal/store.ts';

export interface AuditForwardTarget {
  readonly protocol: 'tcp' | 'tls';
  readonly host: string;
  readonly port: number;
  /** TLS: the CA (PEM) that signed the server's certificate; without it the system's CAs. */
  readonly ca?: string;
}

const BATCH = 500;
/**
 * Syslog over TCP has no acknowledgement: what the kernel took may die with a server that goes
 * away. When a connection breaks, the entries sent on it within the last REWIND are sent again
 * (duplicates carry the same seq and hash; a gap in seq would show a loss).
 */
const REWIND = 2_000;
const BACKOFF_MS = [500, 1_000, 2_000, 5_000, 10_000] as const;
/** RFC 5424 facility local4 (20), severity informational (6): the audit trail. */
const PRIORITY = 20 * 8 + 6;

/** Parses `tcp://host:port` or `tls://host:port`. */
export function parseForwardTarget(url: string, ca?: string): AuditForwardTarget {
  const match = /^(tcp|tls):\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(url);
  if (match === null || Number(match[3]) > 65535) {
    throw new TomaranaiError('TMR_SERVICE_AUDIT_FORWARD', `"${url}" is not a syslog target`, 'use tcp://HOST:PORT or tls://HOST:PORT (RFC 5425, port 6514)');
  }
  return { protocol: match[1] as 'tcp' | 'tls', host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3]), ...(ca === undefined ? {} : { ca }) };
}

function escapeParam(value: string): string {
  return value.replace(/["\\\]]/g, (character) => `\\${character}`);
}

/** One entry as an RFC 5424 line; the structured data carries what an auditor matches on. */
export function auditLine(entry: JournalEntry, host = hostname()): string {
  const data = `[tomaranai-audit@32473 seq="${entry.seq}" hash="${entry.hash}" previous="${entry.previousHash}" kind="${entry.kind}" actor="${escapeParam(entry.actor)}" subject="${escapeParam(entry.subject)}"]`;
  return `<${PRIORITY}>1 ${new Date(entry.atMs).toISOString()} ${host.slice(0, 255) || '-'} tomaranai - ${entry.type.slice(0, 32)} ${data} ${JSON.stringify(entry.data)}`;
}

export class AuditForwarder {
  private socket: Socket | null = null;
  private connecting = false;
  private sending = false;
  private stopped = false;
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private readonly detach: () => void;
  /** Last seq the server's socket took. */
  forwarded: number;
  /** The first seq sent on the current connection. */
  private connectionStart = 0;

  constructor(
    private readonly journal: JournalStore,
    private readonly target: AuditForwardTarget,
    private readonly cursorFile: string | null,
  ) {
    this.forwarded = cursorFile !== null && existsSync(cursorFile) ? Number(readFileSync(cursorFile, 'utf8').trim()) || 0 : 0;
    this.detach = journal.onAppend(() => this.pump());
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    this.detach();
    if (this.retry !== null) clearTimeout(this.retry);
    this.socket?.end();
    this.socket = null;
  }

  private pump(): void {
    if (this.stopped || this.sending || this.forwarded >= this.journal.length) return;
    if (this.socket === null) {
      this.open();
      return;
    }
    const socket = this.socket;
    const batch = this.journal.entries(this.forwarded + 1, BATCH);
    if (batch.length === 0) return;
    this.sending = true;
    const frames = batch.map((entry) => {
      const line = Buffer.from(auditLine(entry), 'utf8');
      return Buffer.concat([Buffer.from(`${line.length} `), line]);
    });
    socket.write(Buffer.concat(frames), (error) => {
      this.sending = false;
      if (error) return this.broken();
      this.forwarded = batch.at(-1)!.seq;
      this.failures = 0;
      this.saveCursor();
      this.pump();
    });
  }

  private open(): void {
    if (this.connecting || this.stopped) return;
    this.connecting = true;
    const options = { host: this.target.host, port: this.target.port };
    const socket = this.target.protocol === 'tls' ? connectTls({ ...options, ...(this.target.ca ? { ca: this.target.ca } : {}), servername: this.target.host }) : connect(options);
    const ready = () => {
      this.connecting = false;
      this.socket = socket;
      this.connectionStart = this.forwarded + 1;
      this.pump();
    };
    socket.once(this.target.protocol === 'tls' ? 'secureConnect' : 'connect', ready);
    socket.on('error', () => this.broken(socket));
    socket.on('close', () => this.broken(socket));
  }

  /** The connection failed or dropped: forget it and try again after a backoff. */
  private broken(socket: Socket | null = this.socket): void {
    if (socket !== null && socket !== this.socket && !this.connecting) return;
    if (socket !== null && socket === this.socket) this.forwarded = Math.max(this.connectionStart - 1, this.forwarded - REWIND, 0);
    socket?.destroy();
    this.socket = null;
    this.connecting = false;
    this.sending = false;
    if (this.stopped || this.retry !== null) return;
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)]!;
    this.failures++;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.pump();
    }, delay);
    this.retry.unref();
  }

  /** The cursor, replaced atomically (0600): a crash leaves the old or the new value, never half. */
  private saveCursor(): void {
    if (this.cursorFile === null) return;
    const temporary = `${this.cursorFile}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, `${this.forwarded}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.cursorFile);
  }
}
