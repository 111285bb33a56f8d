/**
 * Audit that leaves the database (issue 14, point 3). Before: deleting the newest rows passed
 * `audit verify`, so did editing a row and recomputing every later hash, and the key that signs
 * exports sat in the same database, so a forged database could be exported and signed. Now the key
 * is a 0600 file beside it (or where the operator says), signed checkpoints of the chain head are
 * appended to a file outside it, and `audit verify` holds the journal to them.
 */
import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/api/server.ts';
import { chainHash } from '../../src/journal/chain.ts';
import { readCheckpoints } from '../../src/service/audit-trail.ts';
import type { JournalRecord } from '../../src/ports/index.ts';
import { runCli } from './run-cli.ts';

const SMALL = readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'tomaranai-audit-'));
const file = join(dir, 'state.db');
const db = `sqlite:${file}`;

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

/** A copy of the database to tamper with; verify it with the real key and checkpoint files. */
function tamperedCopy(name: string, tamper: (raw: Database.Database) => void): string {
  const copy = join(dir, `${name}.db`);
  copyFileSync(file, copy);
  const raw = new Database(copy);
  tamper(raw);
  raw.close();
  return `sqlite:${copy}`;
}

const verifyArgs = (target: string) => ['audit', 'verify', '--db', target, '--audit-key', `${file}.audit-key`, '--checkpoints', `${file}.checkpoints.jsonl`];

describe('audit outside the database', () => {
  beforeAll(async () => {
    const service = await startService({ db, substrate: 'twin', blueprintSource: SMALL, port: 0, speed: 100, logger: false, scryptCost: { N: 1024, r: 8, p: 1 } });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await service.stop();
  }, 30_000);

  it('keeps the signing key in a 0600 file, not in the database; the database and checkpoints are 0600 too', () => {
    expect(statSync(`${file}.audit-key`).mode & 0o777).toBe(0o600);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(`${file}.checkpoints.jsonl`).mode & 0o777).toBe(0o600);
    const raw = new Database(file, { readonly: true });
    const settings = raw.prepare('SELECT key FROM settings').all() as { key: string }[];
    raw.close();
    expect(settings.map((row) => row.key)).not.toContain('audit.signing-key');
  });

  it('signs the head at shutdown: the last checkpoint is the last entry', () => {
    const raw = new Database(file, { readonly: true });
    const last = raw.prepare('SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string };
    raw.close();
    const checkpoints = readCheckpoints(`${file}.checkpoints.jsonl`);
    expect(checkpoints.at(-1)).toMatchObject({ seq: last.seq, hash: last.hash });
  });

  it('the untouched journal verifies against its checkpoints', async () => {
    const verdict = await runCli(verifyArgs(db));
    expect(verdict.code, verdict.out + verdict.err).toBe(0);
    expect(verdict.out).toMatch(/^ok: \d+ entries, the chain holds, and \d+ signed checkpoints agree/);
  });

  it('catches the newest 50 rows deleted (the chain alone still holds)', async () => {
    const target = tamperedCopy('truncated', (raw) => {
      const { max } = raw.prepare('SELECT MAX(seq) AS max FROM journal').get() as { max: number };
      raw.prepare('DELETE FROM journal WHERE seq > ?').run(max - 50);
    });
    expect((await runCli(['audit', 'verify', '--db', target, '--checkpoints', join(dir, 'none.jsonl')])).code).toBe(0);
    const verdict = await runCli(verifyArgs(target));
    expect(verdict.code).toBe(1);
    expect(verdict.out).toMatch(/TAMPERED: the journal ends at entry \d+, but entry \d+ was signed .*removed from its end/);
  });

  it('catches a row edited and every later hash recomputed', async () => {
    const target = tamperedCopy('rewritten', (raw) => {
      const rows = raw.prepare('SELECT * FROM journal ORDER BY seq').all() as Row[];
      let previous = rows[9]!.previous_hash;
      const update = raw.prepare('UPDATE journal SET actor = ?, previous_hash = ?, hash = ? WHERE seq = ?');
      for (const row of rows.slice(9)) {
        const actor = row.seq === 10 ? 'mallory' : row.actor;
        const record: JournalRecord = { atMs: row.at_ms, kind: row.kind as JournalRecord['kind'], type: row.type, subject: row.subject, actor, data: JSON.parse(row.data) };
        const hash = chainHash(previous, row.seq, record);
        update.run(actor, previous, hash, row.seq);
        previous = hash;
      }
    });
    expect((await runCli(['audit', 'verify', '--db', target, '--checkpoints', join(dir, 'none.jsonl')])).code).toBe(0);
    const verdict = await runCli(verifyArgs(target));
    expect(verdict.code).toBe(1);
    expect(verdict.out).toMatch(/TAMPERED: entry \d+ no longer has the hash signed at .*rewritten/);
  });

  it('refuses to start with a signing key others may read', async () => {
    const key = join(dir, 'loose.key');
    copyFileSync(`${file}.audit-key`, key);
    chmodSync(key, 0o644);
    await expect(
      startService({ db: `sqlite:${join(dir, 'other.db')}`, substrate: 'twin', blueprintSource: SMALL, port: 0, logger: false, auditKeyFile: key, scryptCost: { N: 1024, r: 8, p: 1 } }),
    ).rejects.toMatchObject({ code: 'TMR_AUDIT_KEY_MODE' });
  });
});
