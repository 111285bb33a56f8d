/**
 * The service on its embedded default: SQLite, the in-process twin on a sped-up clock, a real
 * loopback listener. The first admin comes from the command line; audit verify catches an entry
 * changed, removed or reordered in the database behind the service's back.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/api/server.ts';
import { verifyExport, type AuditExport } from '../../src/service/audit.ts';
import { runCli } from './run-cli.ts';

const SMALL = readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'tomaranai-service-'));
const file = join(dir, 'state.db');
const db = `sqlite:${file}`;

async function waitFor<T>(what: string, probe: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('tomaranai serve on SQLite', () => {
  let service: RunningService;
  let token: string;

  beforeAll(async () => {
    const added = await runCli(['user', 'add', 'admin', '--role', 'admin', '--db', db]);
    expect(added.code, added.err).toBe(0);
    const password = added.out.trim();
    expect(password.length).toBeGreaterThanOrEqual(20);
    const created = await runCli(['token', 'create', 'admin', '--db', db]);
    expect(created.code, created.err).toBe(0);
    token = created.out.trim();
    service = await startService({ db, substrate: 'twin', blueprintSource: SMALL, port: 0, speed: 100, logger: false });
  });
  afterAll(async () => {
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a weak password and an unknown role on the command line', async () => {
    expect((await runCli(['user', 'add', 'x', '--role', 'root', '--db', db])).err).toContain('TMR_ACCOUNT_BAD_ROLE');
    const exists = await runCli(['user', 'add', 'admin', '--role', 'admin', '--db', db]);
    expect(exists.code).toBe(1);
    expect(exists.err).toContain('TMR_ACCOUNT_EXISTS');
  });

  it('serves the API with a token from the command line, and brings the hospital up', async () => {
    const ready = await fetch(`${service.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { role: string }).role).toBe('leader');
    const summary = await waitFor('every service up', async () => {
      const response = await fetch(`${service.url}/api/v1/services`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await response.json()) as { summary: { up: number } };
      return body.summary.up === 4 ? body.summary : null;
    });
    expect(summary.up).toBe(4);
    expect((await fetch(`${service.url}/api/v1/services`)).status).toBe(401);
    expect((await fetch(`${service.url}/metrics`)).status).toBe(401);
    const metrics = await (await fetch(`${service.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
    expect(metrics).toContain('tomaranai_leader{instance=');
    expect(metrics).toContain('tomaranai_services_up{tier="continuous"} 2');
  });

  it('exports a signed audit range from the command line that an auditor can verify', async () => {
    await service.storage.journal.flush?.();
    const exported = await runCli(['audit', 'export', '--from', '0', '--to', String(Date.now() + 10 ** 9), '--db', db]);
    expect(exported.code, exported.err).toBe(0);
    const document = JSON.parse(exported.out) as AuditExport;
    expect(document.entries.length).toBeGreaterThan(10);
    expect(verifyExport(document).ok).toBe(true);
  });

  it('refuses a second instance on the same SQLite file while the first runs', async () => {
    await expect(startService({ db, substrate: 'twin', blueprintSource: SMALL, port: 0, speed: 100, logger: false, leaseMs: 300 })).rejects.toMatchObject({ code: 'TMR_SERVICE_DB_BUSY' });
  });

  it('stops gracefully and a restart reads the same journal in a newer term', async () => {
    const before = service.storage.journal.length;
    await service.stop();
    service = await startService({ db, substrate: 'twin', blueprintSource: SMALL, port: 0, speed: 100, logger: false });
    expect(service.storage.journal.length).toBeGreaterThanOrEqual(before);
    const started = service.storage.journal.entries().filter((entry) => entry.type === 'controller.started').map((entry) => entry.data.epoch);
    expect(started).toEqual([1, 2]);
    await service.stop();
  });

  it('audit verify names the first changed, removed or reordered entry after the database is edited behind its back', async () => {
    expect((await runCli(['audit', 'verify', '--db', db])).out).toMatch(/^ok: \d+ entries/);
    const raw = new Database(file);
    const original = raw.prepare('SELECT * FROM journal WHERE seq = 5').get() as Record<string, unknown>;

    raw.prepare('UPDATE journal SET actor = ? WHERE seq = 5').run('mallory');
    let verdict = await runCli(['audit', 'verify', '--db', db]);
    expect(verdict.code).toBe(1);
    expect(verdict.out).toContain('first bad entry 5: content does not match its hash (changed)');
    raw.prepare('UPDATE journal SET actor = ? WHERE seq = 5').run(original.actor);

    const removed = raw.prepare('SELECT * FROM journal WHERE seq = 7').get() as Record<string, unknown>;
    raw.prepare('DELETE FROM journal WHERE seq = 7').run();
    verdict = await runCli(['audit', 'verify', '--db', db]);
    expect(verdict.out).toContain('first bad entry 8: expected entry 7, found 8 (removed or reordered)');
    const columns = ['seq', 'at_ms', 'kind', 'type', 'subject', 'actor', 'data', 'previous_hash', 'hash'];
    raw.prepare(`INSERT INTO journal (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`).run(...columns.map((column) => removed[column]));
    expect((await runCli(['audit', 'verify', '--db', db])).code).toBe(0);

    // Reorder: the contents of entries 9 and 10 swap places.
    const row9 = raw.prepare('SELECT * FROM journal WHERE seq = 9').get() as Record<string, unknown>;
    const row10 = raw.prepare('SELECT * FROM journal WHERE seq = 10').get() as Record<string, unknown>;
    const put = raw.prepare('UPDATE journal SET at_ms = ?, kind = ?, type = ?, subject = ?, actor = ?, data = ?, previous_hash = ?, hash = ? WHERE seq = ?');
    put.run(...columns.slice(1).map((column) => row10[column]), 9);
    put.run(...columns.slice(1).map((column) => row9[column]), 10);
    verdict = await runCli(['audit', 'verify', '--db', db, '--json']);
    expect(verdict.code).toBe(1);
    expect((JSON.parse(verdict.out) as { firstBad: { seq: number } }).firstBad.seq).toBe(9);
    raw.close();
  });
});
