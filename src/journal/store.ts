/**
 * What the service needs of a journal beyond the core's port: reading in order, being told of new
 * entries (the event stream), how far durable storage lags behind, and closing. The SQLite,
 * PostgreSQL and in-memory journals all offer it.
 */
import type { Journal, JournalEntry } from '../ports/index.ts';

export interface JournalStore extends Journal {
  onAppend(listener: (entry: JournalEntry) => void): () => void;
  /** Entries appended but not yet durable (0 for a synchronous store). */
  readonly lagEntries?: number;
  /** Resolves once every entry appended so far is durable. */
  flush?(): Promise<void>;
  close?(): void | Promise<void>;
}

/** Reads entries [fromSeq, toSeq] without copying the whole journal when the store can avoid it. */
export function entriesBetween(journal: Journal, fromSeq: number, toSeq: number, limit: number): JournalEntry[] {
  const from = Math.max(1, fromSeq);
  const count = Math.max(0, Math.min(limit, toSeq - from + 1));
  return count === 0 ? [] : [...journal.entries(from, count)];
}
