import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDrill } from '../../src/drill/sim/run.ts';
import { canonicalRecord, verifyChain } from '../../src/journal/chain.ts';
import { SqliteJournal } from '../../src/journal/sqlite.ts';
import { shipped } from '../support/blueprints.ts';

function journalText(entries: readonly { seq: number; hash: string }[]): string {
  return entries.map((entry) => `${entry.seq} ${entry.hash}`).join('\n');
}

describe('replay', () => {
  const blueprint = shipped('university-hospital');

  it('the same blueprint, scenario and seed give the same journal, byte for byte', () => {
    const first = runDrill({ blueprint, scenario: 'room-failure', seed: 9 });
    const second = runDrill({ blueprint, scenario: 'room-failure', seed: 9 });
    const a = first.journal.entries();
    const b = second.journal.entries();
    expect(a.length).toBeGreaterThan(500);
    expect(b.map((entry) => canonicalRecord(entry.seq, entry))).toEqual(a.map((entry) => canonicalRecord(entry.seq, entry)));
    expect(journalText(b)).toBe(journalText(a));
    expect(second.report).toEqual(first.report);
  });

  it('another seed gives another run', () => {
    const first = runDrill({ blueprint, scenario: 'room-failure', seed: 9 });
    const other = runDrill({ blueprint, scenario: 'room-failure', seed: 10 });
    expect(journalText(other.journal.entries())).not.toBe(journalText(first.journal.entries()));
  });

  it('the SQLite journal holds the same chain as the in-memory one, and it verifies', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'tomaranai-')), 'journal.db');
    const sqlite = new SqliteJournal(path);
    const viaSqlite = runDrill({ blueprint, scenario: 'host-failure', seed: 3, journal: sqlite });
    const inMemory = runDrill({ blueprint, scenario: 'host-failure', seed: 3 });
    sqlite.close();
    const reopened = new SqliteJournal(path);
    const stored = reopened.entries();
    expect(journalText(stored)).toBe(journalText(inMemory.journal.entries()));
    expect(verifyChain(stored).ok).toBe(true);
    expect(viaSqlite.report).toEqual(inMemory.report);
    reopened.close();
  });
});
