/** An in-memory journal: the same chain as the SQLite one, for simulations that run thousands of times. */
import type { Journal, JournalEntry, JournalRecord } from '../ports/index.ts';
import { GENESIS_HASH, seal } from './chain.ts';

export class MemoryJournal implements Journal {
  private readonly list: JournalEntry[] = [];
  private lastHash = GENESIS_HASH;
  private readonly listeners = new Set<(entry: JournalEntry) => void>();

  constructor(private readonly hashed = true) {}

  append(record: JournalRecord): JournalEntry {
    const seq = this.list.length + 1;
    const entry: JournalEntry = this.hashed
      ? seal(seq, this.lastHash, record)
      : { atMs: record.atMs, kind: record.kind, type: record.type, subject: record.subject, actor: record.actor, data: record.data, seq, previousHash: '', hash: '' };
    this.lastHash = entry.hash;
    this.list.push(entry);
    for (const listener of this.listeners) listener(entry);
    return entry;
  }

  entries(fromSeq = 1, limit?: number): readonly JournalEntry[] {
    if (limit !== undefined) return this.list.slice(Math.max(0, fromSeq - 1), Math.max(0, fromSeq - 1) + limit);
    return fromSeq <= 1 ? this.list : this.list.slice(fromSeq - 1);
  }

  get length(): number {
    return this.list.length;
  }

  onAppend(listener: (entry: JournalEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
