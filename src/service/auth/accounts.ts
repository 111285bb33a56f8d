/**
 * Accounts and API tokens. Passwords are stored only as scrypt hashes, tokens only as SHA-256
 * digests; neither is ever logged or returned after creation. The store interface is async so
 * that the SQLite (embedded) and PostgreSQL (shared) stores are interchangeable.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { decoyHash, DEFAULT_SCRYPT_COST, hashPassword, newToken, passwordProblem, tokenDigest, verifyPassword, type ScryptCost } from './passwords.ts';
import { isRole, type Role } from './roles.ts';
import { TomaranaiError } from '../../errors/index.ts';

export interface Account {
  readonly username: string;
  readonly role: Role;
  readonly createdAtMs: number;
  /** A disabled account cannot log in, and its tokens and sessions are refused until it is enabled. */
  readonly disabled: boolean;
  /** Where its password is checked: here (local), or the hospital's directory (ldap, oidc). */
  readonly source?: AccountSource;
}

export type AccountSource = 'local' | 'ldap' | 'oidc';
/**
 * A directory account has no local password: its hash field holds this marker and the source, which
 * no password verifies (like `!` in /etc/shadow). Its role is the directory's at its last login.
 */
const DIRECTORY_MARK = 'directory:';

export function sourceOfHash(passwordHash: string): AccountSource {
  if (passwordHash === `${DIRECTORY_MARK}ldap`) return 'ldap';
  if (passwordHash === `${DIRECTORY_MARK}oidc`) return 'oidc';
  return 'local';
}

export interface TokenInfo {
  readonly id: string;
  readonly username: string;
  readonly name: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number | null;
}

/** A token as an admin lists it: never its secret, which is stored only as a digest. */
export interface TokenListing extends TokenInfo {
  readonly revoked: boolean;
}

/** An account change waiting in the audit inbox (data as JSON text). */
export interface QueuedAudit {
  readonly atMs: number;
  readonly type: string;
  readonly subject: string;
  readonly actor: string;
  readonly data: string;
}

interface UserRow {
  readonly username: string;
  readonly role: string;
  readonly passwordHash: string;
  readonly createdAtMs: number;
  readonly disabled: boolean;
}

export interface AccountRows {
  insertUser(row: { username: string; role: string; passwordHash: string; createdAtMs: number }, replace: boolean): Promise<boolean>;
  user(username: string): Promise<UserRow | null>;
  users(): Promise<(Omit<UserRow, 'passwordHash'> & { readonly source: AccountSource })[]>;
  /**
   * Creates or updates a directory account (its marker as the hash, its role); never touches a
   * local account of the same name. False when a local account has the name.
   */
  upsertDirectoryUser(row: { username: string; role: string; passwordHash: string; createdAtMs: number }): Promise<boolean>;
  setDisabled(username: string, disabled: boolean): Promise<boolean>;
  setPasswordHash(username: string, passwordHash: string): Promise<boolean>;
  /** Deletes the account and revokes every token it had. */
  deleteUser(username: string): Promise<boolean>;
  tokens(username: string | null): Promise<TokenListing[]>;
  /** Revokes the account's sessions (`sessionsOnly`) or all its tokens; returns how many. */
  revokeTokensOf(username: string, sessionsOnly: boolean): Promise<number>;
  /** The audit inbox: account changes made where the journal cannot be written (the CLI), for the leader to journal. */
  queueAudit(entry: QueuedAudit): Promise<void>;
  pendingAudit(limit: number): Promise<(QueuedAudit & { readonly id: number })[]>;
  removeAudit(ids: readonly number[]): Promise<void>;
  insertToken(row: { id: string; digest: string; username: string; name: string; createdAtMs: number; expiresAtMs: number | null }): Promise<void>;
  tokenByDigest(digest: string): Promise<{ id: string; username: string; name: string; createdAtMs: number; expiresAtMs: number | null; revoked: boolean } | null>;
  revokeToken(id: string): Promise<boolean>;
  setting(key: string): Promise<string | null>;
  setSetting(key: string, value: string, onlyIfAbsent: boolean): Promise<void>;
  deleteSetting(key: string): Promise<void>;
  close(): Promise<void>;
}

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The longest a token or session lives: none is forever (a stolen one ends by itself). */
export const MAX_TOKEN_TTL_MS = 90 * 86_400_000;
/** The name sessions carry (POST /sessions); a password change revokes them. */
export const SESSION_TOKEN_NAME = 'session';
const TOKEN_CACHE_MS = 5_000;
const TOKEN_CACHE_LIMIT = 10_000;

export class AccountStore {
  private readonly cache = new Map<string, { atMs: number; value: { account: Account; token: TokenInfo } | null }>();
  /** The longest a directory account's session or token lives (serve --directory sets its sessionHours). */
  directoryTokenMaxMs = 8 * 3600_000;

  constructor(
    private readonly rows: AccountRows,
    private readonly cost: ScryptCost = DEFAULT_SCRYPT_COST,
    private readonly wallNowMs: () => number = Date.now,
  ) {}

  async addUser(username: string, password: string, role: string, replace = false): Promise<Account> {
    if (!USERNAME.test(username)) throw new TomaranaiError('TMR_ACCOUNT_BAD_NAME', `"${username}" is not a valid user name`, 'use 1–64 lower-case letters, digits, dot, dash or underscore');
    if (!isRole(role)) throw new TomaranaiError('TMR_ACCOUNT_BAD_ROLE', `unknown role "${role}"`, 'use admin, operator, auditor, viewer or vendor:NAME');
    const weak = passwordProblem(password);
    if (weak !== null) throw new TomaranaiError('TMR_ACCOUNT_WEAK_PASSWORD', weak, 'choose a longer passphrase; a password manager helps');
    const createdAtMs = this.wallNowMs();
    const inserted = await this.rows.insertUser({ username, role, passwordHash: await hashPassword(password, this.cost), createdAtMs }, replace);
    if (!inserted) throw new TomaranaiError('TMR_ACCOUNT_EXISTS', `user ${username} exists`, 'choose another name, or pass --force to replace its password and role');
    this.cache.clear();
    return { username, role, createdAtMs, disabled: false };
  }

  /** The account when the password is right; null otherwise, taking as long either way. */
  async authenticate(username: string, password: string): Promise<Account | null> {
    const row = await this.rows.user(username);
    if (row === null || !isRole(row.role)) {
      await verifyPassword(password, await decoyHash(this.cost));
      return null;
    }
    if (!(await verifyPassword(password, row.passwordHash)) || row.disabled) return null;
    return { username: row.username, role: row.role, createdAtMs: row.createdAtMs, disabled: false };
  }

  async users(): Promise<Account[]> {
    return (await this.rows.users()).filter((row) => isRole(row.role)).map((row) => ({ username: row.username, role: row.role as Role, createdAtMs: row.createdAtMs, disabled: row.disabled, source: row.source }));
  }

  /** Whether a local account (one with a password here) has this name: the directory may not take it over. */
  async isLocal(username: string): Promise<boolean> {
    const row = await this.rows.user(username);
    return row !== null && sourceOfHash(row.passwordHash) === 'local';
  }

  /**
   * Records a directory login: creates the account or updates its role to the directory's. Returns
   * the account, or null when a local account has the name (never taken over) or an admin
   * disabled this one here.
   */
  async signInFromDirectory(username: string, role: Role, source: Exclude<AccountSource, 'local'>): Promise<{ account: Account; roleChanged: boolean } | null> {
    const before = await this.rows.user(username);
    if (before !== null && sourceOfHash(before.passwordHash) === 'local') return null;
    if (!(await this.rows.upsertDirectoryUser({ username, role, passwordHash: `${DIRECTORY_MARK}${source}`, createdAtMs: this.wallNowMs() }))) return null;
    this.cache.clear();
    const row = (await this.rows.user(username))!;
    if (row.disabled) return null;
    return { account: { username, role, createdAtMs: row.createdAtMs, disabled: false, source }, roleChanged: before !== null && before.role !== role };
  }

  /** Disables (or enables) an account at once: its logins, tokens and sessions are refused. */
  async setDisabled(username: string, disabled: boolean): Promise<void> {
    if (!(await this.rows.setDisabled(username, disabled))) throw unknownUser(username);
    this.cache.clear();
  }

  /** Deletes an account and revokes every token and session it had. */
  async deleteUser(username: string): Promise<void> {
    if (!(await this.rows.deleteUser(username))) throw unknownUser(username);
    this.cache.clear();
  }

  /** Sets a new password and revokes the account's sessions (its API tokens stay; revoke them apart). */
  async setPassword(username: string, password: string): Promise<{ sessionsRevoked: number }> {
    const weak = passwordProblem(password);
    if (weak !== null) throw new TomaranaiError('TMR_ACCOUNT_WEAK_PASSWORD', weak, 'choose a longer passphrase; a password manager helps');
    if (!(await this.rows.setPasswordHash(username, await hashPassword(password, this.cost)))) throw unknownUser(username);
    const sessionsRevoked = await this.rows.revokeTokensOf(username, true);
    this.cache.clear();
    return { sessionsRevoked };
  }

  /** Every token (or one account's), newest last, without secrets. */
  tokens(username: string | null = null): Promise<TokenListing[]> {
    return this.rows.tokens(username);
  }

  async revokeTokensOf(username: string): Promise<number> {
    const revoked = await this.rows.revokeTokensOf(username, false);
    this.cache.clear();
    return revoked;
  }

  /**
   * Queues an account change for the journal. The CLI changes accounts in the database directly,
   * often while a service runs and owns the journal's head; appending there would fork the chain,
   * so the leader journals the inbox instead (drainAudit), in order, within seconds.
   */
  queueAudit(type: string, subject: string, actor: string, data: Readonly<Record<string, unknown>>): Promise<void> {
    return this.rows.queueAudit({ atMs: this.wallNowMs(), type, subject, actor, data: JSON.stringify(data) });
  }

  /** Journals what waits in the audit inbox (the leader), oldest first, then removes it. Returns how many. */
  async drainAudit(append: (entry: QueuedAudit) => void, limit = 500): Promise<number> {
    const pending = await this.rows.pendingAudit(limit);
    for (const entry of pending) append(entry);
    if (pending.length > 0) await this.rows.removeAudit(pending.map((entry) => entry.id));
    return pending.length;
  }

  /** How many account changes wait for a leader to journal them. */
  async pendingAuditCount(): Promise<number> {
    return (await this.rows.pendingAudit(1_000_000)).length;
  }

  async createToken(username: string, name: string, ttlMs: number | null): Promise<{ token: string; info: TokenInfo }> {
    const user = await this.rows.user(username);
    if (user === null) throw new TomaranaiError('TMR_ACCOUNT_UNKNOWN', `no user ${username}`, 'create it first with `tomaranai user add`');
    if (user.disabled) throw new TomaranaiError('TMR_ACCOUNT_DISABLED', `user ${username} is disabled`, 'an admin enables it again with `tomaranai user enable`');
    const token = newToken();
    const createdAtMs = this.wallNowMs();
    // No token lives forever: the longest is MAX_TOKEN_TTL_MS, and a directory account's is its
    // session's lifetime, so that leaving a directory group takes effect within it.
    const longestMs = sourceOfHash(user.passwordHash) === 'local' ? MAX_TOKEN_TTL_MS : this.directoryTokenMaxMs;
    const lifetimeMs = Math.min(ttlMs ?? longestMs, longestMs);
    const info: TokenInfo = { id: `tok-${randomUUID()}`, username, name, createdAtMs, expiresAtMs: createdAtMs + lifetimeMs };
    await this.rows.insertToken({ ...info, digest: tokenDigest(token) });
    return { token, info };
  }

  /** The account a token belongs to, or null. Cached for a few seconds (revocation takes ≤ 5 s). */
  async resolveToken(token: string): Promise<{ account: Account; token: TokenInfo } | null> {
    const digest = tokenDigest(token);
    const now = this.wallNowMs();
    const cached = this.cache.get(digest);
    if (cached !== undefined && now - cached.atMs < TOKEN_CACHE_MS && (cached.value === null || cached.value.token.expiresAtMs === null || cached.value.token.expiresAtMs > now)) {
      return cached.value;
    }
    const row = await this.rows.tokenByDigest(digest);
    let value: { account: Account; token: TokenInfo } | null = null;
    if (row !== null && !row.revoked && (row.expiresAtMs === null || row.expiresAtMs > now)) {
      const user = await this.rows.user(row.username);
      if (user !== null && isRole(user.role) && !user.disabled) {
        value = {
          account: { username: user.username, role: user.role, createdAtMs: user.createdAtMs, disabled: false },
          token: { id: row.id, username: row.username, name: row.name, createdAtMs: row.createdAtMs, expiresAtMs: row.expiresAtMs },
        };
      }
    }
    if (this.cache.size >= TOKEN_CACHE_LIMIT) this.cache.clear();
    this.cache.set(digest, { atMs: now, value });
    return value;
  }

  async revokeToken(id: string): Promise<boolean> {
    const revoked = await this.rows.revokeToken(id);
    this.cache.clear();
    return revoked;
  }

  setting(key: string): Promise<string | null> {
    return this.rows.setting(key);
  }

  /** Stores `value` unless the key has one already; returns whichever value is stored. */
  async settingOnce(key: string, value: string): Promise<string> {
    await this.rows.setSetting(key, value, true);
    return (await this.rows.setting(key))!;
  }

  deleteSetting(key: string): Promise<void> {
    return this.rows.deleteSetting(key);
  }

  close(): Promise<void> {
    return this.rows.close();
  }
}

function unknownUser(username: string): TomaranaiError {
  return new TomaranaiError('TMR_ACCOUNT_UNKNOWN', `no user ${username}`, 'list the accounts with `tomaranai user list`');
}

/** Account tables in SQLite (the embedded default; the same file as the journal). */
export class SqliteAccountRows implements AccountRows {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS accounts (username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at_ms INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS api_tokens (id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, username TEXT NOT NULL, name TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0);
      CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    // Added after the first release: a database made before gets the column once.
    this.db.exec('CREATE TABLE IF NOT EXISTS audit_inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL)');
    const columns = this.db.prepare('PRAGMA table_info(accounts)').all() as { name: string }[];
    if (!columns.some((column) => column.name === 'disabled')) this.db.exec('ALTER TABLE accounts ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0');
  }

  async insertUser(row: { username: string; role: string; passwordHash: string; createdAtMs: number }, replace: boolean): Promise<boolean> {
    const sql = replace
      ? 'INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT(username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash'
      : 'INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES (?, ?, ?, ?) ON CONFLICT(username) DO NOTHING';
    return this.db.prepare(sql).run(row.username, row.role, row.passwordHash, row.createdAtMs).changes > 0;
  }

  async user(username: string): Promise<UserRow | null> {
    const row = this.db.prepare('SELECT username, role, password_hash, created_at_ms, disabled FROM accounts WHERE username = ?').get(username) as
      | { username: string; role: string; password_hash: string; created_at_ms: number; disabled: number }
      | undefined;
    return row ? { username: row.username, role: row.role, passwordHash: row.password_hash, createdAtMs: row.created_at_ms, disabled: row.disabled !== 0 } : null;
  }

  async users() {
    const rows = this.db.prepare('SELECT username, role, created_at_ms, disabled, password_hash FROM accounts ORDER BY username').all() as { username: string; role: string; created_at_ms: number; disabled: number; password_hash: string }[];
    return rows.map((row) => ({ username: row.username, role: row.role, createdAtMs: row.created_at_ms, disabled: row.disabled !== 0, source: sourceOfHash(row.password_hash) }));
  }

  async upsertDirectoryUser(row: { username: string; role: string; passwordHash: string; createdAtMs: number }): Promise<boolean> {
    const sql = `INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES (?, ?, ?, ?)
      ON CONFLICT(username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash WHERE accounts.password_hash LIKE '${DIRECTORY_MARK}%'`;
    return this.db.prepare(sql).run(row.username, row.role, row.passwordHash, row.createdAtMs).changes > 0;
  }

  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    return this.db.prepare('UPDATE accounts SET disabled = ? WHERE username = ?').run(disabled ? 1 : 0, username).changes > 0;
  }

  async setPasswordHash(username: string, passwordHash: string): Promise<boolean> {
    return this.db.prepare('UPDATE accounts SET password_hash = ? WHERE username = ?').run(passwordHash, username).changes > 0;
  }

  async deleteUser(username: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.db.prepare('UPDATE api_tokens SET revoked = 1 WHERE username = ?').run(username);
      return this.db.prepare('DELETE FROM accounts WHERE username = ?').run(username).changes > 0;
    })();
  }

  async tokens(username: string | null): Promise<TokenListing[]> {
    const rows = (
      username === null
        ? this.db.prepare('SELECT id, username, name, created_at_ms, expires_at_ms, revoked FROM api_tokens ORDER BY created_at_ms, id').all()
        : this.db.prepare('SELECT id, username, name, created_at_ms, expires_at_ms, revoked FROM api_tokens WHERE username = ? ORDER BY created_at_ms, id').all(username)
    ) as { id: string; username: string; name: string; created_at_ms: number; expires_at_ms: number | null; revoked: number }[];
    return rows.map((row) => ({ id: row.id, username: row.username, name: row.name, createdAtMs: row.created_at_ms, expiresAtMs: row.expires_at_ms, revoked: row.revoked !== 0 }));
  }

  async queueAudit(entry: QueuedAudit): Promise<void> {
    this.db.prepare('INSERT INTO audit_inbox (at_ms, type, subject, actor, data) VALUES (?, ?, ?, ?, ?)').run(entry.atMs, entry.type, entry.subject, entry.actor, entry.data);
  }

  async pendingAudit(limit: number) {
    const rows = this.db.prepare('SELECT id, at_ms, type, subject, actor, data FROM audit_inbox ORDER BY id LIMIT ?').all(limit) as { id: number; at_ms: number; type: string; subject: string; actor: string; data: string }[];
    return rows.map((row) => ({ id: row.id, atMs: row.at_ms, type: row.type, subject: row.subject, actor: row.actor, data: row.data }));
  }

  async removeAudit(ids: readonly number[]): Promise<void> {
    const remove = this.db.prepare('DELETE FROM audit_inbox WHERE id = ?');
    this.db.transaction(() => {
      for (const id of ids) remove.run(id);
    })();
  }

  async revokeTokensOf(username: string, sessionsOnly: boolean): Promise<number> {
    const sql = sessionsOnly ? 'UPDATE api_tokens SET revoked = 1 WHERE username = ? AND revoked = 0 AND name = ?' : 'UPDATE api_tokens SET revoked = 1 WHERE username = ? AND revoked = 0';
    return (sessionsOnly ? this.db.prepare(sql).run(username, SESSION_TOKEN_NAME) : this.db.prepare(sql).run(username)).changes;
  }

  async insertToken(row: { id: string; digest: string; username: string; name: string; createdAtMs: number; expiresAtMs: number | null }): Promise<void> {
    this.db.prepare('INSERT INTO api_tokens (id, digest, username, name, created_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)').run(row.id, row.digest, row.username, row.name, row.createdAtMs, row.expiresAtMs);
  }

  async tokenByDigest(digest: string) {
    const row = this.db.prepare('SELECT id, username, name, created_at_ms, expires_at_ms, revoked FROM api_tokens WHERE digest = ?').get(digest) as
      | { id: string; username: string; name: string; created_at_ms: number; expires_at_ms: number | null; revoked: number }
      | undefined;
    return row ? { id: row.id, username: row.username, name: row.name, createdAtMs: row.created_at_ms, expiresAtMs: row.expires_at_ms, revoked: row.revoked !== 0 } : null;
  }

  async revokeToken(id: string): Promise<boolean> {
    return this.db.prepare('UPDATE api_tokens SET revoked = 1 WHERE id = ?').run(id).changes > 0;
  }

  async setting(key: string): Promise<string | null> {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  async deleteSetting(key: string): Promise<void> {
    this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
  }

  async setSetting(key: string, value: string, onlyIfAbsent: boolean): Promise<void> {
    this.db.prepare(onlyIfAbsent ? 'INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO NOTHING' : 'INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
