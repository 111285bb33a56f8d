/**
 * Directory login: who the hospital's directory says a user is becomes a Tomaranai account with
 * the role its groups map to. The account row is refreshed at every login (a role taken away in the
 * directory is taken away here at the next login, and sessions live only `sessionHours`); a local
 * account of the same name is never taken over; an account an admin disabled here stays disabled.
 */
import type { Role } from './roles.ts';
import { accountNameOf, roleForGroups, type DirectoryConfig } from './directory-config.ts';
import type { Account, AccountStore } from './accounts.ts';
import { LdapDirectory, type DirectoryIdentity } from './ldap.ts';
import { OidcLogin } from './oidc.ts';

/** What an OpenID login hands to the browser that started it. */
export interface HandedSession {
  readonly token: string;
  readonly id: string;
  readonly username: string;
  readonly role: Role;
  readonly expiresAtMs: number | null;
}

export type Admission =
  | { readonly ok: true; readonly account: Account; readonly group: string; readonly roleChanged: boolean }
  | { readonly ok: false; readonly username: string; readonly reason: string };

export class DirectoryLogin {
  readonly ldap: LdapDirectory | null;
  readonly oidc: OidcLogin<HandedSession> | null;
  readonly sessionTtlMs: number;

  constructor(
    readonly config: DirectoryConfig,
    wallNowMs: () => number = Date.now,
  ) {
    this.ldap = config.ldap === undefined ? null : new LdapDirectory(config.ldap);
    this.oidc = config.oidc === undefined ? null : new OidcLogin<HandedSession>(config.oidc, wallNowMs);
    this.sessionTtlMs = config.sessionHours * 3600_000;
  }

  /**
   * Admits a user the directory vouched for: its account name, its role from the mappings. When the
   * directory maps none of its groups, its earlier sessions and tokens are revoked too: it was
   * taken out of the groups that let it in.
   */
  async admit(identity: DirectoryIdentity, source: 'ldap' | 'oidc', accounts: AccountStore): Promise<Admission> {
    const username = accountNameOf(identity.login);
    if (username === null) return { ok: false, username: identity.login.slice(0, 64), reason: `"${identity.login.slice(0, 64)}" cannot be an account name (letters, digits, dot, dash, underscore)` };
    const mapped = roleForGroups(identity.groups, this.config.roles);
    if (mapped === null) {
      if (!(await accounts.isLocal(username)) && (await accounts.users()).some((account) => account.username === username)) await accounts.revokeTokensOf(username);
      return { ok: false, username, reason: `none of its ${identity.groups.length} directory group(s) maps to a role` };
    }
    const signed = await accounts.signInFromDirectory(username, mapped.role, source);
    if (signed === null) {
      return { ok: false, username, reason: (await accounts.isLocal(username)) ? 'a local account has this name; the directory may not log in as it' : 'the account is disabled here' };
    }
    return { ok: true, account: signed.account, group: mapped.group, roleChanged: signed.roleChanged };
  }
}
