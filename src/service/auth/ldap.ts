/**
 * LDAP / Active Directory login (ldapts): the user's password is checked by binding as the user,
 * never by reading or comparing a hash; the groups come from a group search and/or the user entry's
 * memberOf. Everything the user typed is escaped before it reaches a DN (RFC 4514) or a filter
 * (RFC 4515), and an empty password is refused before any bind: a simple bind with an empty
 * password is an unauthenticated bind that many servers accept (RFC 4513 §5.1.2).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, InvalidDNSyntaxError, NoSuchObjectError, SizeLimitExceededError } from 'ldapts';
import { TomaranaiError } from '../../errors/index.ts';
import { readSecretFile, type LdapConfig } from './directory-config.ts';

export interface DirectoryIdentity {
  /** The name the user typed (validated), not yet an account name. */
  readonly login: string;
  /** The user's DN (LDAP) or subject (OIDC). */
  readonly subject: string;
  readonly groups: readonly string[];
}

/** At most this many groups are read for one user: more is a misconfigured filter, not a person. */
const MAX_GROUPS = 1_000;
/** What a user may type as a directory login name (sAMAccountName, uid or a UPN). */
const LOGIN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

/** RFC 4515 §3: a value inside a search filter. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (char) => `\\${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** RFC 4514 §2.4: a value inside a DN's attribute. */
export function escapeDnValue(value: string): string {
  return value.replace(/[\\,+"<>;=#]/g, (char) => `\\${char}`).replace(/^ | $/g, (char) => `\\${char}`);
}

export class LdapDirectory {
  private readonly bindPassword: string | null;
  private readonly tls: ConnectionOptions;
  private readonly host: string;

  constructor(private readonly config: LdapConfig) {
    this.bindPassword = config.bindPasswordFile === undefined ? null : readSecretFile(config.bindPasswordFile, 'ldap.bindPasswordFile');
    let ca: string | undefined;
    if (config.caFile !== undefined) {
      try {
        ca = readFileSync(config.caFile, 'utf8');
      } catch (error) {
        throw new TomaranaiError('TMR_SERVICE_DIRECTORY_CONFIG', `ldap.caFile: cannot read ${config.caFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
    }
    this.tls = { ...(ca === undefined ? {} : { ca }), minVersion: 'TLSv1.2' };
    this.host = new URL(config.url).hostname.replace(/^\[|\]$/g, '');
  }

  /**
   * The user's identity when the directory accepts the password; null when it does not (unknown
   * user, wrong password, a name that cannot be one). Throws TMR_API_DIRECTORY_UNAVAILABLE when the
   * directory cannot be asked (down, timeout, TLS failure): that is not a wrong password.
   */
  async authenticate(login: string, password: string): Promise<DirectoryIdentity | null> {
    if (password.length === 0 || !LOGIN.test(login)) return null;
    // ldapts speaks TLS from the first byte whenever it is given TLS options: only for ldaps://.
    const client = new Client({ url: this.config.url, timeout: this.config.timeoutMs, connectTimeout: this.config.timeoutMs, ...(this.config.url.startsWith('ldaps:') ? { tlsOptions: this.tls } : {}) });
    try {
      // A fresh object each time (ldapts writes the socket into it), naming the host the certificate must match.
      if (this.config.startTls) await client.startTLS({ ...this.tls, host: this.host, ...(isIP(this.host) === 0 ? { servername: this.host } : {}) });
      const dn = await this.userDn(client, login);
      if (dn === null) return null;
      try {
        await client.bind(dn, password);
      } catch (error) {
        if (error instanceof InvalidCredentialsError || error instanceof InvalidDNSyntaxError) return null;
        throw error;
      }
      // Read groups as the search account where there is one (users may not read groups themselves).
      if (this.config.bindDn !== undefined) await client.bind(this.config.bindDn, this.bindPassword!);
      return { login, subject: dn, groups: await this.groupsOf(client, dn) };
    } catch (error) {
      if (error instanceof TomaranaiError) throw error;
      throw new TomaranaiError('TMR_API_DIRECTORY_UNAVAILABLE', `the directory at ${this.config.url} did not answer: ${describe(error)}`);
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  /** The DN to bind as: the template's, or the one entry the search finds (none or several: null). */
  private async userDn(client: Client, login: string): Promise<string | null> {
    if (this.config.userDnTemplate !== undefined) return this.config.userDnTemplate.replaceAll('{username}', escapeDnValue(login));
    if (this.config.bindDn !== undefined) {
      try {
        await client.bind(this.config.bindDn, this.bindPassword!);
      } catch (error) {
        if (error instanceof InvalidCredentialsError) {
          throw new TomaranaiError('TMR_API_DIRECTORY_UNAVAILABLE', `the directory refused the search account ${this.config.bindDn}`, 'check ldap.bindDn and the password in ldap.bindPasswordFile');
        }
        throw error;
      }
    }
    const filter = this.config.userFilter.replaceAll('{username}', escapeFilterValue(login));
    try {
      const { searchEntries } = await client.search(this.config.userSearchBase!, { scope: 'sub', filter, attributes: ['dn'], sizeLimit: 2 });
      return searchEntries.length === 1 ? searchEntries[0]!.dn : null;
    } catch (error) {
      // No such base, or several entries for one name: no one to log in as.
      if (error instanceof NoSuchObjectError || error instanceof SizeLimitExceededError) return null;
      throw error;
    }
  }

  private async groupsOf(client: Client, dn: string): Promise<string[]> {
    const groups = new Set<string>();
    const attribute = this.config.memberOfAttribute;
    const { searchEntries: self } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: [attribute] });
    for (const value of valuesOf(self[0]?.[attribute])) groups.add(value);
    if (this.config.groupSearchBase !== undefined) {
      const filter = this.config.groupFilter.replaceAll('{dn}', escapeFilterValue(dn));
      const { searchEntries } = await client.search(this.config.groupSearchBase, { scope: 'sub', filter, attributes: ['dn'], sizeLimit: MAX_GROUPS });
      for (const entry of searchEntries) groups.add(entry.dn);
    }
    return [...groups].slice(0, MAX_GROUPS);
  }
}

function valuesOf(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((item) => (Buffer.isBuffer(item) ? item.toString('utf8') : String(item)));
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}
