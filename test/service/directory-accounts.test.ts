/**
 * Directory accounts in both stores (SQLite and, with TOMARANAI_TEST_PG_URL, PostgreSQL): a
 * directory login creates its account, refreshes its role, never takes over a local account of the
 * same name, and a directory account has no password that works here.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../src/service/storage.ts';
import type { Storage } from '../../src/service/storage-types.ts';

const PG_URL = process.env.TOMARANAI_TEST_PG_URL;
const COST = { N: 1024, r: 8, p: 1 };
const opened: Storage[] = [];
afterAll(async () => {
  for (const storage of opened) await storage.close();
});

const stores: readonly [string, string | undefined][] = [
  ['SQLite', 'sqlite::memory:'],
  ['PostgreSQL', PG_URL],
];

describe.each(stores)('directory accounts on %s', (_name, url) => {
  it.skipIf(url === undefined)('are created, refreshed, kept apart from local accounts, and have no usable password', async () => {
    const storage = await openStorage(url!, { instanceId: 'directory-accounts-test', scryptCost: COST });
    opened.push(storage);
    const accounts = storage.accounts;
    const suffix = Math.random().toString(36).slice(2, 8);
    const [directoryUser, localUser] = [`dir-${suffix}`, `local-${suffix}`];
    await accounts.addUser(localUser, 'a local password of some length', 'admin');
    expect(await accounts.signInFromDirectory(localUser, 'viewer', 'ldap')).toBeNull();
    expect((await accounts.users()).find((account) => account.username === localUser)).toMatchObject({ role: 'admin', source: 'local' });
    expect((await accounts.signInFromDirectory(directoryUser, 'operator', 'oidc'))!.roleChanged).toBe(false);
    expect((await accounts.signInFromDirectory(directoryUser, 'auditor', 'oidc'))!.roleChanged).toBe(true);
    expect((await accounts.users()).find((account) => account.username === directoryUser)).toMatchObject({ role: 'auditor', source: 'oidc' });
    for (const guess of ['', 'directory:oidc', 'oidc']) expect(await accounts.authenticate(directoryUser, guess)).toBeNull();
    const { info } = await accounts.createToken(directoryUser, 'script', 90 * 86_400_000);
    expect(info.expiresAtMs! - info.createdAtMs).toBe(accounts.directoryTokenMaxMs);
  });
});
