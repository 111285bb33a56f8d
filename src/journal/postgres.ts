/**
 * The shared journal in PostgreSQL, for several control-plane instances. The core appends
 * synchronously, so the leader seals each entry in memory at once and writes behind in ordered
 * batches; every batch is fenced in the database — it is inserted only while the writer's lease
 * token is still the current one — so a deposed leader's late entries are refused, and a crash
 * leaves a prefix of the chain, never a hole. Followers tail the table.
 */
import type pg from 'pg';
import type { JournalEntry, JournalKind, JournalRecord } from '../ports/index.ts';
import { GENESIS_HASH, seal } from './chain.ts';
import type { JournalStore } from './store.ts';
import { TomaranaiError } from '../errors/index.ts';

export const JOURNAL_MIGRATION = `
  CREATE TABLE IF NOT EXISTS journal (
    seq BIGINT PRIMARY KEY,
    at_ms DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT NOT NULL,
    actor TEXT NOT NULL,
    data TEXT NOT NULL,
    previous_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    epoch BIGINT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS journal_type ON journal(type);
`;

const BATCH_LIMIT = 500;
const TAIL_LIMIT = 5000;

interface Row {
  seq: string;
  at_ms: number;
  kind: string;
  type: string;
  subject: string;
  actor: string;
  data: string;
  previous_hash: string;
  hash: string;
}

function fromRow(row: Row): JournalEntry {
  return {
    seq: Number(row.seq),
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

export class PostgresJournal implements JournalStore {
  private readonly list: JournalEntry[] = [];
  private lastHash = GENESIS_HASH;
  private durable = 0;
  private readonly listeners = new Set<(entry: JournalEntry) => void>();
  private writing: Promise<void> | null = null;
  private writerEpoch: number | null = null;
  private tailTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private flushWaiters: (() => void)[] = [];
  /** Called when a write was refused because this instance no longer holds the lease. */
  onFenced: (() => void) | null = null;
  writeErrors = 0;

  private constructor(private readonly pool: pg.Pool) {}

  static async open(pool: pg.Pool): Promise<PostgresJournal> {
    const journal = new PostgresJournal(pool);
    await journal.catchUp();
    return journal;
  }

  get length(): number {
    return this.list.length;
  }

  get lagEntries(): number {
    return this.list.length - this.durable;
  }

  entries(fromSeq = 1, limit?: number): readonly JournalEntry[] {
    if (limit !== undefined) return this.list.slice(Math.max(0, fromSeq - 1), Math.max(0, fromSeq - 1) + limit);
    return fromSeq <= 1 ? this.list : this.list.slice(fromSeq - 1);
  }

  onAppend(listener: (entry: JournalEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Only the leader appends; its lease token fences every batch it writes. */
  append(record: JournalRecord): JournalEntry {
    if (this.writerEpoch === null) throw new TomaranaiError('TMR_JOURNAL_FENCED');
    const entry = seal(this.list.length + 1, this.lastHash, record);
    this.list.push(entry);
    this.lastHash = entry.hash;
    for (const listener of this.listeners) listener(entry);
    this.scheduleWrite();
    return entry;
  }

  /** Reads every entry the table has beyond ours (a follower's tail, and a new leader's catch-up). */
  async catchUp(): Promise<number> {
    let added = 0;
    for (;;) {
      const result = await this.pool.query<Row>('SELECT * FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2', [this.list.length, TAIL_LIMIT]);
      for (const row of result.rows) {
        const entry = fromRow(row);
        if (entry.seq !== this.list.length + 1) throw new Error(`journal: expected entry ${this.list.length + 1}, read ${entry.seq}`);
        this.list.push(entry);
        this.lastHash = entry.hash;
        this.durable = this.list.length;
        added++;
        for (const listener of this.listeners) listener(entry);
      }
      if (result.rows.length < TAIL_LIMIT) return added;
    }
  }

  /** Follows the table every `intervalMs` until `becomeWriter`. */
  follow(intervalMs: number): void {
    this.writerEpoch = null;
    // Entries sealed in memory but never made durable were refused: the table is the truth.
    if (this.durable < this.list.length) {
      this.list.length = this.durable;
      this.lastHash = this.list.at(-1)?.hash ?? GENESIS_HASH;
    }
    if (this.tailTimer !== null) return;
    const tick = () => {
      this.tailTimer = null;
      if (this.closed || this.writerEpoch !== null) return;
      this.catchUp()
        .catch(() => undefined)
        .finally(() => {
          if (!this.closed && this.writerEpoch === null) this.tailTimer = setTimeout(tick, intervalMs);
        });
    };
    this.tailTimer = setTimeout(tick, intervalMs);
  }

  /** Becomes the writer for lease `epoch`, after reading everything the previous leader wrote. */
  async becomeWriter(epoch: number): Promise<void> {
    if (this.tailTimer !== null) clearTimeout(this.tailTimer);
    this.tailTimer = null;
    await this.catchUp();
    this.writerEpoch = epoch;
  }

  private scheduleWrite(): void {
    if (this.writing !== null) return;
    this.writing = (async () => {
      try {
        while (this.durable < this.list.length && this.writerEpoch !== null && !this.closed) await this.writeBatch(this.writerEpoch);
      } finally {
        this.writing = null;
        if (this.durable === this.list.length || this.writerEpoch === null) {
          for (const waiter of this.flushWaiters.splice(0)) waiter();
        } else if (!this.closed) this.scheduleWrite();
      }
    })();
  }

  private async writeBatch(epoch: number): Promise<void> {
    const batch = this.list.slice(this.durable, this.durable + BATCH_LIMIT);
    const columns: unknown[][] = [[], [], [], [], [], [], [], [], []];
    for (const entry of batch) {
      const values = [entry.seq, entry.atMs, entry.kind, entry.type, entry.subject, entry.actor, JSON.stringify(entry.data), entry.previousHash, entry.hash];
      values.forEach((value, index) => columns[index]!.push(value));
    }
    try {
      const result = await this.pool.query(
        `INSERT INTO journal (seq, at_ms, kind, type, subject, actor, data, previous_hash, hash, epoch)
         SELECT s, a, k, t, su, ac, d, p, h, $10::bigint
           FROM unnest($1::bigint[], $2::float8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS x(s, a, k, t, su, ac, d, p, h)
          WHERE EXISTS (SELECT 1 FROM leader_lease WHERE id = 1 AND token = $10::bigint AND expires_at > now())`,
        [...columns, epoch],
      );
      if (result.rowCount === batch.length) {
        this.durable += batch.length;
        return;
      }
      this.fenced();
    } catch (error) {
      // A duplicate sequence number means another leader wrote first: we were deposed.
      if ((error as { code?: string }).code === '23505') {
        this.fenced();
        return;
      }
      this.writeErrors++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private fenced(): void {
    this.writerEpoch = null;
    this.onFenced?.();
  }

  flush(): Promise<void> {
    if (this.durable === this.list.length || this.writerEpoch === null) return Promise.resolve();
    return new Promise((resolve) => {
      this.flushWaiters.push(resolve);
      this.scheduleWrite();
    });
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.tailTimer !== null) clearTimeout(this.tailTimer);
  }
}
