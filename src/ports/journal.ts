/** The journal port: an append-only, hash-chained event log (adapters under journal/). */
export type JournalKind = 'fault' | 'observation' | 'decision' | 'action' | 'outcome' | 'drill' | 'audit';

export interface JournalRecord {
  readonly atMs: number;
  readonly kind: JournalKind;
  readonly type: string;
  readonly subject: string;
  readonly actor: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface JournalEntry extends JournalRecord {
  readonly seq: number;
  readonly hash: string;
  readonly previousHash: string;
}

/** Append-only, hash-chained event log. */
export interface Journal {
  append(record: JournalRecord): JournalEntry;
  /** Entries from `fromSeq` on, in order; at most `limit` of them (a store reads no more than that). */
  entries(fromSeq?: number, limit?: number): readonly JournalEntry[];
  readonly length: number;
}
