/**
 * The embedded default journal: SQLite through better-sqlite3 (12.x; 13.x crashes on Node 20).
 * Append-only by use: the store offers no update or delete. Entries are written in a transaction
 * per batch so a crash leaves a prefix of the chain, never a hole.
 */
import Database from 'better-sqlite3';
import type { Journal, JournalEntry, JournalKind, JournalRecord } from '../ports/index.ts';
import { GENESIS_HASH, seal } from './chain.ts';

interface Row {
  seq: number;
  at_ms: number;
  kind: string;
  type: string;
  subject: string;
  actor: string;
  data: string;
  previous_hash: string;
  hash: string;
}

export class SqliteJournal implements Journal {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private lastHash: string;
  private count: number;
  private readonly listeners = new Set<(entry: JournalEntry) => void>();

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS journal (
        seq INTEGER PRIMARY KEY,
        at_ms REAL NOT NULL,
        kind TEXT NOT NULL,
        type TEXT NOT NULL,
        subject TEXT NOT NULL,
        actor TEXT NOT NULL,
        data TEXT NOT NULL,
        previous_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS journal_type ON journal(type);
    `);
    this.insert = this.db.prepare(
      'INSERT INTO journal (seq, at_ms, kind, type, subject, actor, data, previous_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const last = this.db.prepare('SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string } | undefined;
    this.count = last?.seq ?? 0;
    this.lastHash = last?.hash ?? GENESIS_HASH;
  }

  append(record: JournalRecord): JournalEntry {
    const entry = seal(this.count + 1, this.lastHash, record);
    this.insert.run(entry.seq, entry.atMs, entry.kind, entry.type, entry.subject, entry.actor, JSON.stringify(entry.data), entry.previousHash, entry.hash);
    this.count = entry.seq;
    this.lastHash = entry.hash;
    for (const listener of this.listeners) listener(entry);
    return entry;
  }

  /** Runs `work` in one transaction: many appends, one fsync. */
  batch<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  entries(fromSeq = 1, limit?: number): readonly JournalEntry[] {
    const rows = (
      limit === undefined
        ? this.db.prepare('SELECT * FROM journal WHERE seq >= ? ORDER BY seq').all(fromSeq)
        : this.db.prepare('SELECT * FROM journal WHERE seq >= ? ORDER BY seq LIMIT ?').all(fromSeq, Math.max(0, Math.floor(limit)))
    ) as Row[];
    return rows.map(fromRow);
  }

  get length(): number {
    return this.count;
  }

  onAppend(listener: (entry: JournalEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.db.close();
  }
}

function fromRow(row: Row): JournalEntry {
  return {
    seq: row.seq,
    atMs: row.at_ms,
    kind: row.kind as JournalKind,
    type: row.type,
    subject: row.subject,
    actor: row.actor,
    data: JSON.parse(row.data) as Record<string, unknown>,
    previousHash: row.previous_hash,
    hash: row.hash,
  };
}
