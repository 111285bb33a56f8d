import { describe, expect, it } from 'vitest';
import { verifyChain } from '../src/journal/chain.ts';
import { MemoryJournal } from '../src/journal/memory.ts';

function sample(): MemoryJournal {
  const journal = new MemoryJournal();
  for (let index = 0; index < 10; index++) {
    journal.append({ atMs: index * 1000, kind: 'action', type: 'startVm', subject: `vm-${index}`, actor: 'controller', data: { host: 'h1' } });
  }
  return journal;
}

describe('hash-chained journal', () => {
  it('verifies an untouched chain', () => {
    expect(verifyChain(sample().entries())).toEqual({ ok: true, checked: 10, firstBad: null });
  });

  it('names the first changed entry', () => {
    const entries = sample().entries().map((entry) => ({ ...entry }));
    entries[4] = { ...entries[4]!, data: { host: 'h2' } };
    expect(verifyChain(entries).firstBad).toEqual({ seq: 5, reason: 'content does not match its hash (changed)' });
  });

  it('names a removed entry', () => {
    const entries = [...sample().entries()];
    entries.splice(6, 1);
    expect(verifyChain(entries).firstBad?.seq).toBe(8);
  });

  it('names reordered entries', () => {
    const entries = [...sample().entries()];
    [entries[2], entries[3]] = [entries[3]!, entries[2]!];
    expect(verifyChain(entries).ok).toBe(false);
    expect(verifyChain(entries).firstBad?.seq).toBe(4);
  });
});
