/**
 * The hash chain that makes the journal tamper-evident: each entry's hash covers its content and
 * the previous entry's hash, so a changed, removed or reordered entry breaks every hash after it.
 */
import { createHash } from 'node:crypto';
import type { JournalEntry, JournalRecord } from '../ports/index.ts';

export const GENESIS_HASH = '0'.repeat(64);

export function canonicalRecord(seq: number, record: JournalRecord): string {
  return JSON.stringify([seq, record.atMs, record.kind, record.type, record.subject, record.actor, record.data]);
}

export function chainHash(previousHash: string, seq: number, record: JournalRecord): string {
  return createHash('sha256').update(previousHash).update(canonicalRecord(seq, record)).digest('hex');
}

export function seal(seq: number, previousHash: string, record: JournalRecord): JournalEntry {
  return { ...record, seq, previousHash, hash: chainHash(previousHash, seq, record) };
}

export interface ChainVerdict {
  readonly ok: boolean;
  readonly checked: number;
  /** The first entry whose hash or link does not hold, and why. */
  readonly firstBad: { readonly seq: number; readonly reason: string } | null;
}

export function verifyChain(entries: Iterable<JournalEntry>): ChainVerdict {
  let previousHash = GENESIS_HASH;
  let expectedSeq = 1;
  let checked = 0;
  for (const entry of entries) {
    if (entry.seq !== expectedSeq) {
      return { ok: false, checked, firstBad: { seq: entry.seq, reason: `expected entry ${expectedSeq}, found ${entry.seq} (removed or reordered)` } };
    }
    if (entry.previousHash !== previousHash) {
      return { ok: false, checked, firstBad: { seq: entry.seq, reason: 'does not link to the entry before it' } };
    }
    if (chainHash(previousHash, entry.seq, entry) !== entry.hash) {
      return { ok: false, checked, firstBad: { seq: entry.seq, reason: 'content does not match its hash (changed)' } };
    }
    previousHash = entry.hash;
    expectedSeq++;
    checked++;
  }
  return { ok: true, checked, firstBad: null };
}
