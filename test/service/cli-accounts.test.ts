/**
 * Account changes made with the CLI are journaled (issue 14, point 4): they wait in the audit
 * inbox of the database and the leader journals them with the OS user who made them — before the
 * service starts, and while it runs (the CLI cannot append to a journal whose head the service owns).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/api/server.ts';
import { runCli } from './run-cli.ts';

const SMALL = readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8');
const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'tomaranai-cli-accounts-')), 'state.db')}`;

async function until<T>(what: string, probe: () => T | undefined | null, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== null) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('account changes from the CLI', () => {
  let service: RunningService | null = null;
  afterAll(async () => service?.stop());

  it('journals changes made before the service started, and while it runs, with the OS user', async () => {
    expect((await runCli(['user', 'add', 'admin', '--role', 'admin', '--db', db])).code).toBe(0);
    expect((await runCli(['user', 'add', 'bob', '--role', 'viewer', '--db', db])).code).toBe(0);
    const created = await runCli(['token', 'create', 'bob', '--db', db]);
    expect(created.code, created.err).toBe(0);
    const token = created.out.trim();

    service = await startService({ db, substrate: 'twin', blueprintSource: SMALL, port: 0, logger: false, scryptCost: { N: 1024, r: 8, p: 1 } });
    const running = service;
    const added = await until('the queued changes in the journal', () => {
      const entries = running.storage.journal.entries().filter((entry) => entry.type === 'user.added' || entry.type === 'token.created');
      return entries.length >= 3 ? entries : null;
    });
    expect(added.map((entry) => `${entry.type} ${entry.subject}`)).toEqual(['user.added admin', 'user.added bob', 'token.created bob']);
    expect(added[0]!.actor).toMatch(new RegExp(`^cli:${userInfo().username}@`));

    const me = () => fetch(`${running.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then((response) => response.status);
    expect(await me()).toBe(200);
    expect((await runCli(['user', 'disable', 'bob', '--reason', 'left the ward', '--db', db])).code).toBe(0);
    // Refused within the token cache's few seconds.
    const deadline = performance.now() + 10_000;
    while ((await me()) !== 401 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await me()).toBe(401);
    const disabled = await until('user.disabled in the journal', () => running.storage.journal.entries().find((entry) => entry.type === 'user.disabled'));
    expect(disabled).toMatchObject({ subject: 'bob', data: { reason: 'left the ward', address: 'local' } });

    const listed = await runCli(['token', 'list', '--user', 'bob', '--db', db]);
    expect(listed.out).toMatch(/^tok-\S+\tbob\tcli\tactive\t/);
    expect(listed.out).not.toContain(token);
    expect((await runCli(['token', 'revoke', '--user', 'bob', '--reason', 'rotate', '--db', db])).code).toBe(0);
    expect((await runCli(['token', 'list', '--user', 'bob', '--db', db])).out).toMatch(/\trevoked\t/);
  }, 60_000);
});
