/**
 * Directory login configuration (`tomaranai serve --directory FILE`): where the hospital's LDAP /
 * Active Directory and OpenID Connect provider are, and which of their groups map to which role.
 * It is service configuration like --notify, never part of the blueprint. Secrets (the search
 * account's password, the OIDC client secret) are read from files named here, never written in it,
 * so the file can be reviewed and versioned; neither is ever logged.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { TomaranaiError } from '../../errors/index.ts';
import { isRole, type Role } from './roles.ts';

const Mapping = z
  .object({
    /** A group's full DN (LDAP), its CN, or a value of the OIDC groups claim; compared case-insensitively. */
    group: z.string().min(1).max(1000),
    role: z.string().refine(isRole, 'admin, operator, auditor, viewer or vendor:NAME'),
  })
  .strict();

const Ldap = z
  .object({
    /** ldap://HOST:PORT (with startTls: true) or ldaps://HOST:PORT. */
    url: z.string().regex(/^ldaps?:\/\/[^\s/]+\/?$/, 'ldap://HOST:PORT or ldaps://HOST:PORT'),
    startTls: z.boolean().default(false),
    /** The CA (PEM) that signed the directory's certificate, for ldaps:// or startTls. */
    caFile: z.string().min(1).optional(),
    /** Each directory operation (connect, bind, search) gives up after this. */
    timeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Direct bind: the user's DN with {username} in it, e.g. uid={username},ou=people,dc=hospital,dc=example. */
    userDnTemplate: z.string().includes('{username}', { message: 'must contain {username}' }).optional(),
    /** Search bind: find the user under this base with userFilter, then bind as the entry found. */
    userSearchBase: z.string().min(1).optional(),
    /** {username} is escaped (RFC 4515). Active Directory: (sAMAccountName={username}). */
    userFilter: z.string().includes('{username}', { message: 'must contain {username}' }).default('(uid={username})'),
    /** The account that searches (omit for an anonymous search); its password in bindPasswordFile. */
    bindDn: z.string().min(1).optional(),
    bindPasswordFile: z.string().min(1).optional(),
    /** Where groups are searched with groupFilter ({dn} is the user's DN, escaped); omit to use only memberOfAttribute. */
    groupSearchBase: z.string().min(1).optional(),
    groupFilter: z.string().includes('{dn}', { message: 'must contain {dn}' }).default('(|(member={dn})(uniqueMember={dn}))'),
    /** The user entry's attribute listing its groups' DNs (Active Directory and OpenLDAP's memberof overlay). */
    memberOfAttribute: z.string().min(1).default('memberOf'),
  })
  .strict()
  .refine((ldap) => (ldap.userDnTemplate === undefined) !== (ldap.userSearchBase === undefined), { message: 'give either userDnTemplate (direct bind) or userSearchBase (search, then bind), not both', path: ['userDnTemplate'] })
  .refine((ldap) => (ldap.bindDn === undefined) === (ldap.bindPasswordFile === undefined), { message: 'bindDn and bindPasswordFile go together', path: ['bindPasswordFile'] })
  .refine((ldap) => !(ldap.startTls && ldap.url.startsWith('ldaps:')), { message: 'ldaps:// is TLS already; startTls is for ldap://', path: ['startTls'] });

const Oidc = z
  .object({
    /** The provider's issuer URL; its /.well-known/openid-configuration is read at start. */
    issuer: z.url(),
    clientId: z.string().min(1).max(200),
    /** A confidential client's secret, in a file; omit for a public client (PKCE only). */
    clientSecretFile: z.string().min(1).optional(),
    /** This service's callback as the provider knows it: https://HOST/api/v1/oidc/callback. */
    redirectUri: z.url().refine((url) => new URL(url).pathname.endsWith('/api/v1/oidc/callback'), 'must end in /api/v1/oidc/callback'),
    scopes: z.string().default('openid profile email'),
    /** The ID-token (or userinfo) claim that holds the user's groups. */
    groupsClaim: z.string().min(1).default('groups'),
    /** The claim that becomes the Tomaranai user name (lower-cased). */
    usernameClaim: z.string().min(1).default('preferred_username'),
    /** Allow an http:// issuer (a provider on the same host, or a test); https is required otherwise. */
    allowHttp: z.boolean().default(false),
  })
  .strict()
  .refine((oidc) => oidc.allowHttp || new URL(oidc.issuer).protocol === 'https:', { message: 'an https:// issuer (or allowHttp: true for a provider on this host)', path: ['issuer'] });

const DirectorySchema = z
  .object({
    ldap: Ldap.optional(),
    oidc: Oidc.optional(),
    /** In order: the first mapping whose group the user is in gives the role. List the most privileged first. */
    roles: z.array(Mapping).min(1),
    /** How long a directory login's session (and any token it makes) lives: directory changes take effect within this. */
    sessionHours: z.number().positive().max(24 * 7).default(8),
  })
  .strict()
  .refine((config) => config.ldap !== undefined || config.oidc !== undefined, { message: 'configure ldap, oidc or both', path: ['ldap'] });

export type LdapConfig = z.infer<typeof Ldap>;
export type OidcConfig = z.infer<typeof Oidc>;
export type DirectoryConfig = z.infer<typeof DirectorySchema>;

/** Parses the YAML of a directory configuration; throws TMR_SERVICE_DIRECTORY_CONFIG listing every field at fault. */
export function parseDirectoryConfig(source: string, origin = 'directory configuration'): DirectoryConfig {
  let document: unknown;
  try {
    document = parseYaml(source, { maxAliasCount: 100 }) ?? {};
  } catch (error) {
    throw new TomaranaiError('TMR_SERVICE_DIRECTORY_CONFIG', `${origin}: not YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = DirectorySchema.safeParse(document);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
    throw new TomaranaiError('TMR_SERVICE_DIRECTORY_CONFIG', `${origin}: ${issues.length} field(s) at fault: ${issues.join('; ')}`.slice(0, 2000));
  }
  return result.data;
}

/** Reads a secret file (trailing newline dropped); a missing or empty one is a configuration error naming the field. */
export function readSecretFile(path: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TomaranaiError('TMR_SERVICE_DIRECTORY_CONFIG', `${field}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret.length === 0) throw new TomaranaiError('TMR_SERVICE_DIRECTORY_CONFIG', `${field}: ${path} is empty`);
  return secret;
}

/**
 * The role a directory user gets: the first mapping (in file order) naming one of its groups. A
 * group matches a mapping by its full DN or, for LDAP DNs, by its first RDN's value (the CN),
 * case-insensitively. Null: no mapped group, no login.
 */
export function roleForGroups(groups: readonly string[], mappings: DirectoryConfig['roles']): { role: Role; group: string } | null {
  const names = new Set<string>();
  for (const group of groups) {
    names.add(normaliseDn(group));
    const cn = /^\s*[a-zA-Z0-9-]+\s*=\s*((?:\\.|[^,])+)/.exec(group);
    if (cn !== null && group.includes('=')) names.add(cn[1]!.replace(/\\(.)/g, '$1').trim().toLowerCase());
  }
  for (const mapping of mappings) {
    if (names.has(normaliseDn(mapping.group))) return { role: mapping.role as Role, group: mapping.group };
  }
  return null;
}

function normaliseDn(value: string): string {
  return value
    .split(/(?<!\\),/)
    .map((part) => part.trim())
    .join(',')
    .toLowerCase();
}

/** A directory user name as a Tomaranai account name: lower-cased, or null when it cannot be one. */
export function accountNameOf(name: string): string | null {
  const lower = name.trim().toLowerCase();
  return /^[a-z0-9][a-z0-9._-]{0,63}$/.test(lower) ? lower : null;
}
