/**
 * A real OpenLDAP server (Debian's slapd) for the directory-login tests: a throwaway database in a
 * temporary folder, plain LDAP and LDAPS (a certificate from a throwaway CA) on free ports, the
 * memberof overlay (so users carry memberOf as in Active Directory), and a small hospital directory:
 * people, groups, a search account.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SLAPD = '/usr/sbin/slapd';
export const HAS_SLAPD = existsSync(SLAPD) && existsSync('/usr/bin/ldapadd') && existsSync('/usr/bin/openssl');
export const BASE = 'dc=hospital,dc=example';
export const SEARCH_DN = `cn=tomaranai,ou=services,${BASE}`;
export const SEARCH_PASSWORD = 'search-account-secret';
export const USER_PASSWORD = 'ward-7-night-shift';

export interface Slapd {
  readonly url: string;
  readonly ldapsUrl: string;
  readonly caFile: string;
  readonly dir: string;
  /** Writes a file in the server's folder (a secret file for the configuration). */
  file(name: string, text: string): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

const PEOPLE = ['nurse', 'auditor1', 'fujitsu.se', 'nogroup', 'admin', 'twoentries'];

/** People and the search account: loaded offline (slapadd). */
function ldif(): string {
  const entries = [
    `dn: ${BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: hospital\no: Hospital`,
    `dn: ou=people,${BASE}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ou=staff,${BASE}\nobjectClass: organizationalUnit\nou: staff`,
    `dn: ou=groups,${BASE}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=services,${BASE}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${SEARCH_DN}\nobjectClass: person\ncn: tomaranai\nsn: service\nuserPassword: ${SEARCH_PASSWORD}`,
    ...PEOPLE.map((uid) => `dn: uid=${uid},ou=people,${BASE}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nuserPassword: ${USER_PASSWORD}`),
    // The same uid twice under the base: a search must not pick one of them.
    `dn: uid=twoentries,ou=staff,${BASE}\nobjectClass: inetOrgPerson\nuid: twoentries\ncn: twoentries\nsn: twoentries\nuserPassword: ${USER_PASSWORD}`,
  ];
  return `${entries.join('\n\n')}\n`;
}

/** Groups: added online (ldapadd), so that the memberof overlay writes each member's memberOf. */
function groupsLdif(): string {
  const entries = [
    `dn: cn=icu-operators,ou=groups,${BASE}\nobjectClass: groupOfNames\ncn: icu-operators\nmember: uid=nurse,ou=people,${BASE}\nmember: uid=admin,ou=people,${BASE}`,
    `dn: cn=auditors,ou=groups,${BASE}\nobjectClass: groupOfNames\ncn: auditors\nmember: uid=auditor1,ou=people,${BASE}`,
    `dn: cn=vendor-a,ou=groups,${BASE}\nobjectClass: groupOfNames\ncn: vendor-a\nmember: uid=fujitsu.se,ou=people,${BASE}`,
    `dn: cn=cafeteria,ou=groups,${BASE}\nobjectClass: groupOfNames\ncn: cafeteria\nmember: uid=nogroup,ou=people,${BASE}`,
  ];
  return `${entries.join('\n\n')}\n`;
}

export async function startSlapd(): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'tomaranai-slapd-'));
  mkdirSync(join(dir, 'db'));
  const [port, tlsPort] = [await freePort(), await freePort()];
  const run = (file: string, args: string[]) => execFileSync(file, args, { cwd: dir, stdio: 'pipe' });
  run('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.pem']);
  run('/usr/bin/openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  run('/usr/bin/openssl', ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.pem']);
  const config = [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((schema) => `include /etc/ldap/schema/${schema}.schema`),
    // Like many Active Directory servers: a DN with an empty password is an (unauthenticated) anonymous bind.
    'allow bind_anon_dn',
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'moduleload memberof',
    `pidfile ${join(dir, 'slapd.pid')}`,
    `TLSCACertificateFile ${join(dir, 'ca.pem')}`,
    `TLSCertificateFile ${join(dir, 'server.pem')}`,
    `TLSCertificateKeyFile ${join(dir, 'server.key')}`,
    'database mdb',
    `suffix "${BASE}"`,
    `rootdn "cn=root,${BASE}"`,
    'rootpw root-secret',
    `directory ${join(dir, 'db')}`,
    'maxsize 10485760',
    'overlay memberof',
    'access to attrs=userPassword by anonymous auth by self write by * none',
    'access to * by * read',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'slapd.conf'), config);
  run('/usr/sbin/slapadd', ['-f', 'slapd.conf', '-l', writeLdif(dir)]);
  let child: ChildProcess | null = null;
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${tlsPort}`;
  const start = async () => {
    child = spawn(SLAPD, ['-f', join(dir, 'slapd.conf'), '-h', `${url}/ ${ldapsUrl}/`, '-d', '0'], { cwd: dir, stdio: 'ignore' });
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        execFileSync('/usr/bin/ldapsearch', ['-x', '-H', url, '-b', BASE, '-s', 'base', 'dn'], { stdio: 'pipe' });
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw new Error('slapd did not start within 10 s');
  };
  const stop = async () => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGTERM');
    });
  };
  await start();
  const groups = join(dir, 'groups.ldif');
  writeFileSync(groups, groupsLdif());
  run('/usr/bin/ldapadd', ['-x', '-H', url, '-D', `cn=root,${BASE}`, '-w', 'root-secret', '-f', groups]);
  return {
    url,
    ldapsUrl,
    caFile: join(dir, 'ca.pem'),
    dir,
    file(name, text) {
      writeFileSync(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    },
    start,
    stop,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function writeLdif(dir: string): string {
  const path = join(dir, 'hospital.ldif');
  writeFileSync(path, ldif());
  return path;
}
