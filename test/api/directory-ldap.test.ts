/**
 * Directory login against a real OpenLDAP server (Debian's slapd, started here): LDAP bind with
 * groups mapped to roles, search-then-bind and direct bind, group search and memberOf (the Active
 * Directory way), LDAPS and StartTLS with a private CA, a directory that is down, a user taken out
 * of its group, and the ways a directory login must not work (a local account's name, an empty
 * password, a filter injected through the user name, a name that matches two entries).
 */
import { execFileSync } from 'node:child_process';
import { Client } from 'ldapts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryLogin } from '../../src/service/auth/directory.ts';
import { parseDirectoryConfig } from '../../src/service/auth/directory-config.ts';
import { LdapDirectory, escapeDnValue, escapeFilterValue } from '../../src/service/auth/ldap.ts';
import { TomaranaiError } from '../../src/errors/index.ts';
import { BASE, HAS_SLAPD, SEARCH_DN, SEARCH_PASSWORD, USER_PASSWORD, startSlapd, type Slapd } from '../support/slapd.ts';
import { harness, PASSWORD, type Harness } from './harness.ts';

let slapd: Slapd;
let h: Harness | null = null;

beforeAll(async () => {
  if (HAS_SLAPD) slapd = await startSlapd();
}, 60_000);
afterAll(async () => {
  if (HAS_SLAPD) await slapd.close();
});
afterEach(async () => {
  await h?.close();
  h = null;
});

const ROLES = `
roles:
  - { group: "cn=icu-operators,ou=groups,${BASE}", role: operator }
  - { group: auditors, role: auditor }
  - { group: vendor-a, role: "vendor:vendor-a" }
`;

function searchConfig(extra = ''): string {
  const secret = slapd.file('bind.secret', `${SEARCH_PASSWORD}\n`);
  return `
ldap:
  url: ${slapd.url}
  userSearchBase: "${BASE}"
  userFilter: "(uid={username})"
  bindDn: "${SEARCH_DN}"
  bindPasswordFile: ${secret}
  groupSearchBase: "ou=groups,${BASE}"
  timeoutMs: 2000
${extra}${ROLES}`;
}

const login = (h: Harness, username: string, password: string) => h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { username, password } });
const me = (h: Harness, token: string) => h.app.inject({ method: 'GET', url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } });

describe.skipIf(!HAS_SLAPD)('LDAP login against OpenLDAP', () => {
  it('a directory user logs in with its directory password and gets the role its group maps to; it is journaled', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    const response = await login(h, 'nurse', USER_PASSWORD);
    expect(response.statusCode, response.body).toBe(201);
    expect(response.json()).toMatchObject({ username: 'nurse', role: 'operator' });
    expect((await me(h, response.json().token)).json()).toMatchObject({ username: 'nurse', role: 'operator' });
    const users = await h.app.inject({ method: 'GET', url: '/api/v1/users', headers: h.as('admin') });
    expect(users.json().users).toContainEqual(expect.objectContaining({ username: 'nurse', role: 'operator', source: 'ldap' }));
    expect(h.journal.entries().find((entry) => entry.type === 'login.succeeded' && entry.subject === 'nurse')?.data).toMatchObject({ method: 'ldap', role: 'operator' });
    // Its session lives the directory's sessionHours (8 h), and so does any token it makes.
    expect(response.json().expiresAtMs - Date.now()).toBeLessThanOrEqual(8 * 3600_000 + 1000);
    const token = await h.app.inject({ method: 'POST', url: '/api/v1/tokens', headers: { authorization: `Bearer ${response.json().token}` }, payload: { name: 'script', ttlHours: 24 * 60 } });
    expect(token.json().expiresAtMs - Date.now()).toBeLessThanOrEqual(8 * 3600_000 + 1000);
  });

  it('roles follow the mappings in order: auditors by CN, a vendor group to its vendor role', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    expect((await login(h, 'auditor1', USER_PASSWORD)).json()).toMatchObject({ role: 'auditor' });
    expect((await login(h, 'fujitsu.se', USER_PASSWORD)).json()).toMatchObject({ role: 'vendor:vendor-a' });
  });

  it('a wrong password, an unmapped group, two entries for one name and injected filters are refused and journaled', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    expect((await login(h, 'nurse', 'not-the-password')).statusCode).toBe(401);
    expect((await login(h, 'nogroup', USER_PASSWORD)).statusCode).toBe(401);
    expect((await login(h, 'twoentries', USER_PASSWORD)).statusCode).toBe(401);
    for (const name of ['*', 'nurse)(uid=*', 'nurse*', '*)(|(uid=*']) expect((await login(h, name, USER_PASSWORD)).statusCode, name).toBe(401);
    const failed = h.journal.entries().filter((entry) => entry.type === 'login.failed');
    expect(failed.map((entry) => [entry.subject, entry.data.method, entry.data.reason])).toEqual(
      expect.arrayContaining([
        ['nurse', 'ldap', 'the directory refused the name or password'],
        ['nogroup', 'ldap', 'none of its 1 directory group(s) maps to a role'],
        ['twoentries', 'ldap', 'the directory refused the name or password'],
      ]),
    );
    expect((await h.accounts.users()).map((account) => account.username)).not.toContain('nogroup');
  });

  it("a local account's name is never looked up in the directory: the directory cannot log in as the local admin", async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    // uid=admin exists in the directory, in the operators' group, with USER_PASSWORD.
    expect((await login(h, 'admin', USER_PASSWORD)).statusCode).toBe(401);
    expect((await login(h, 'admin', PASSWORD)).json()).toMatchObject({ username: 'admin', role: 'admin' });
    expect((await h.accounts.users()).find((account) => account.username === 'admin')).toMatchObject({ role: 'admin', source: 'local' });
  });

  it('taken out of its group in the directory, a user cannot log in again and its sessions are revoked', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    const first = (await login(h, 'nurse', USER_PASSWORD)).json().token as string;
    const change = slapd.file('remove.ldif', `dn: cn=icu-operators,ou=groups,${BASE}\nchangetype: modify\ndelete: member\nmember: uid=nurse,ou=people,${BASE}\n`);
    execFileSync('/usr/bin/ldapmodify', ['-x', '-H', slapd.url, '-D', `cn=root,${BASE}`, '-w', 'root-secret', '-f', change]);
    try {
      expect((await login(h, 'nurse', USER_PASSWORD)).statusCode).toBe(401);
      expect((await me(h, first)).statusCode).toBe(401);
    } finally {
      const restore = slapd.file('restore.ldif', `dn: cn=icu-operators,ou=groups,${BASE}\nchangetype: modify\nadd: member\nmember: uid=nurse,ou=people,${BASE}\n`);
      execFileSync('/usr/bin/ldapmodify', ['-x', '-H', slapd.url, '-D', `cn=root,${BASE}`, '-w', 'root-secret', '-f', restore]);
    }
  });

  it('an admin who disables a directory account here keeps it out even though the directory would let it in', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    expect((await login(h, 'nurse', USER_PASSWORD)).statusCode).toBe(201);
    await h.accounts.setDisabled('nurse', true);
    expect((await login(h, 'nurse', USER_PASSWORD)).statusCode).toBe(401);
  });

  it('a directory that is down answers 503 TMR_API_DIRECTORY_UNAVAILABLE, not "wrong password"; local accounts keep working', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig())) });
    await slapd.stop();
    try {
      const down = await login(h, 'nurse', USER_PASSWORD);
      expect(down.statusCode).toBe(503);
      expect(down.json().error.code).toBe('TMR_API_DIRECTORY_UNAVAILABLE');
      expect((await login(h, 'operator', PASSWORD)).statusCode).toBe(201);
    } finally {
      await slapd.start();
    }
    expect((await login(h, 'nurse', USER_PASSWORD)).statusCode).toBe(201);
  });

  it('LDAPS with the private CA and a direct bind reads groups from memberOf (the Active Directory way); without the CA it is refused as unavailable', async () => {
    const ldaps = (caLine: string) =>
      parseDirectoryConfig(`
ldap:
  url: ${slapd.ldapsUrl}
  ${caLine}
  userDnTemplate: "uid={username},ou=people,${BASE}"
  memberOfAttribute: memberOf
  timeoutMs: 2000
${ROLES}`);
    h = await harness({ directory: new DirectoryLogin(ldaps(`caFile: ${slapd.caFile}`)) });
    expect((await login(h, 'nurse', USER_PASSWORD)).json()).toMatchObject({ role: 'operator' });
    await h.close();
    h = await harness({ directory: new DirectoryLogin(ldaps('# no caFile: the system CAs do not know this one')) });
    const refused = await login(h, 'nurse', USER_PASSWORD);
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.message).toMatch(/certificate/i);
  });

  it('StartTLS on ldap:// with the CA', async () => {
    h = await harness({ directory: new DirectoryLogin(parseDirectoryConfig(searchConfig(`  startTls: true\n  caFile: ${slapd.caFile}\n`))) });
    expect((await login(h, 'auditor1', USER_PASSWORD)).json()).toMatchObject({ role: 'auditor' });
  });

  it('an empty password is refused before any bind (the server itself would take it as an anonymous bind)', async () => {
    const dn = `uid=nurse,ou=people,${BASE}`;
    const raw = new Client({ url: slapd.url });
    await expect(raw.bind(dn, '')).resolves.toBeUndefined();
    await raw.unbind();
    const directory = new LdapDirectory(parseDirectoryConfig(searchConfig()).ldap!);
    expect(await directory.authenticate('nurse', '')).toBeNull();
    expect(await directory.authenticate('nurse', USER_PASSWORD)).toMatchObject({ subject: dn, groups: [`cn=icu-operators,ou=groups,${BASE}`] });
  });
});

describe('directory configuration and escaping', () => {
  it('escapes user input for filters (RFC 4515) and DNs (RFC 4514)', () => {
    expect(escapeFilterValue('a*)(uid=*\\')).toBe('a\\2a\\29\\28uid=\\2a\\5c');
    expect(escapeDnValue('a,b+c=d ')).toBe('a\\,b\\+c\\=d\\ ');
  });

  it('a configuration at fault names every field and starts nothing', () => {
    const wrong = () =>
      parseDirectoryConfig(`
ldap:
  url: http://directory
  userDnTemplate: "uid=x"
  userSearchBase: "dc=x"
oidc:
  issuer: http://idp.example
  clientId: tomaranai
  redirectUri: https://tomaranai.example/wrong
roles:
  - { group: g, role: superuser }
`);
    expect(wrong).toThrow(TomaranaiError);
    try {
      wrong();
    } catch (error) {
      const message = (error as TomaranaiError).message;
      for (const field of ['ldap.url', 'ldap.userDnTemplate', 'oidc.issuer', 'oidc.redirectUri', 'roles.0.role']) expect(message).toContain(field);
    }
    expect(() => parseDirectoryConfig('roles: []')).toThrow(/roles/);
    expect(() => new LdapDirectory(parseDirectoryConfig(`ldap: { url: "ldap://x:389", userSearchBase: "dc=x", bindDn: "cn=a", bindPasswordFile: /nonexistent/secret }\nroles: [{ group: g, role: viewer }]`).ldap!)).toThrow(/bindPasswordFile: cannot read \/nonexistent\/secret: ENOENT/);
  });
});
