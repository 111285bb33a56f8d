/**
 * PostgreSQL storage for several instances: schema migrations on open (serialised by an advisory
 * lock), the shared journal, accounts, and leadership through a lease row whose token only grows.
 * Lease times are the database's own `now()`, so the instances' clocks need not agree.
 */
import pg from 'pg';
import { AccountStore, SESSION_TOKEN_NAME, sourceOfHash, type AccountRows, type QueuedAudit, type TokenListing } from './auth/accounts.ts';
import { JOURNAL_MIGRATION, PostgresJournal } from '../journal/postgres.ts';
import type { Leadership, LeadershipState, Storage, StorageOptions } from './storage-types.ts';

const MIGRATIONS: readonly { version: number; sql: string }[] = [
  { version: 1, sql: JOURNAL_MIGRATION },
  {
    version: 2,
    sql: `
      CREATE TABLE IF NOT EXISTS leader_lease (id INT PRIMARY KEY, holder TEXT NOT NULL, token BIGINT NOT NULL, expires_at TIMESTAMPTZ NOT NULL);
      INSERT INTO leader_lease VALUES (1, '', 0, 'epoch') ON CONFLICT (id) DO NOTHING;
    `,
  },
  {
    version: 3,
    sql: `
      CREATE TABLE IF NOT EXISTS accounts (username TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, created_at_ms BIGINT NOT NULL);
      CREATE TABLE IF NOT EXISTS api_tokens (id TEXT PRIMARY KEY, digest TEXT NOT NULL UNIQUE, username TEXT NOT NULL, name TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL, expires_at_ms BIGINT, revoked BOOLEAN NOT NULL DEFAULT false);
      CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    version: 4,
    sql: 'ALTER TABLE accounts ADD COLUMN IF NOT EXISTS disabled BOOLEAN NOT NULL DEFAULT false;',
  },
  {
    version: 5,
    sql: 'CREATE TABLE IF NOT EXISTS audit_inbox (id BIGSERIAL PRIMARY KEY, at_ms BIGINT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL, actor TEXT NOT NULL, data TEXT NOT NULL);',
  },
];

export async function migrate(pool: pg.Pool): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(727274)');
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((row) => row.version));
    let count = 0;
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [migration.version]);
      count++;
    }
    await client.query('COMMIT');
    return count;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

class PostgresAccountRows implements AccountRows {
  constructor(private readonly pool: pg.Pool) {}

  async insertUser(row: { username: string; role: string; passwordHash: string; createdAtMs: number }, replace: boolean): Promise<boolean> {
    const sql = replace
      ? 'INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash'
      : 'INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING';
    return ((await this.pool.query(sql, [row.username, row.role, row.passwordHash, row.createdAtMs])).rowCount ?? 0) > 0;
  }

  async user(username: string) {
    const row = (await this.pool.query<{ username: string; role: string; password_hash: string; created_at_ms: string; disabled: boolean }>('SELECT * FROM accounts WHERE username = $1', [username])).rows[0];
    return row ? { username: row.username, role: row.role, passwordHash: row.password_hash, createdAtMs: Number(row.created_at_ms), disabled: row.disabled } : null;
  }

  async users() {
    const rows = (await this.pool.query<{ username: string; role: string; created_at_ms: string; disabled: boolean; password_hash: string }>('SELECT username, role, created_at_ms, disabled, password_hash FROM accounts ORDER BY username')).rows;
    return rows.map((row) => ({ username: row.username, role: row.role, createdAtMs: Number(row.created_at_ms), disabled: row.disabled, source: sourceOfHash(row.password_hash) }));
  }

  async upsertDirectoryUser(row: { username: string; role: string; passwordHash: string; createdAtMs: number }): Promise<boolean> {
    const sql = `INSERT INTO accounts (username, role, password_hash, created_at_ms) VALUES ($1, $2, $3, $4)
      ON CONFLICT (username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash WHERE accounts.password_hash LIKE 'directory:%'`;
    return ((await this.pool.query(sql, [row.username, row.role, row.passwordHash, row.createdAtMs])).rowCount ?? 0) > 0;
  }

  async setDisabled(username: string, disabled: boolean): Promise<boolean> {
    return ((await this.pool.query('UPDATE accounts SET disabled = $2 WHERE username = $1', [username, disabled])).rowCount ?? 0) > 0;
  }

  async setPasswordHash(username: string, passwordHash: string): Promise<boolean> {
    return ((await this.pool.query('UPDATE accounts SET password_hash = $2 WHERE username = $1', [username, passwordHash])).rowCount ?? 0) > 0;
  }

  async deleteUser(username: string): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('UPDATE api_tokens SET revoked = true WHERE username = $1', [username]);
      const deleted = ((await client.query('DELETE FROM accounts WHERE username = $1', [username])).rowCount ?? 0) > 0;
      await client.query('COMMIT');
      return deleted;
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    } finally {
      client.release();
    }
  }

  async tokens(username: string | null): Promise<TokenListing[]> {
    const rows = (
      await this.pool.query<{ id: string; username: string; name: string; created_at_ms: string; expires_at_ms: string | null; revoked: boolean }>(
        username === null
          ? 'SELECT id, username, name, created_at_ms, expires_at_ms, revoked FROM api_tokens ORDER BY created_at_ms, id'
          : 'SELECT id, username, name, created_at_ms, expires_at_ms, revoked FROM api_tokens WHERE username = $1 ORDER BY created_at_ms, id',
        username === null ? [] : [username],
      )
    ).rows;
    return rows.map((row) => ({ id: row.id, username: row.username, name: row.name, createdAtMs: Number(row.created_at_ms), expiresAtMs: row.expires_at_ms === null ? null : Number(row.expires_at_ms), revoked: row.revoked }));
  }

  async queueAudit(entry: QueuedAudit): Promise<void> {
    await this.pool.query('INSERT INTO audit_inbox (at_ms, type, subject, actor, data) VALUES ($1, $2, $3, $4, $5)', [entry.atMs, entry.type, entry.subject, entry.actor, entry.data]);
  }

  async pendingAudit(limit: number) {
    const rows = (await this.pool.query<{ id: string; at_ms: string; type: string; subject: string; actor: string; data: string }>('SELECT * FROM audit_inbox ORDER BY id LIMIT $1', [limit])).rows;
    return rows.map((row) => ({ id: Number(row.id), atMs: Number(row.at_ms), type: row.type, subject: row.subject, actor: row.actor, data: row.data }));
  }

  async removeAudit(ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await this.pool.query('DELETE FROM audit_inbox WHERE id = ANY($1::bigint[])', [ids]);
  }

  async revokeTokensOf(username: string, sessionsOnly: boolean): Promise<number> {
    const result = sessionsOnly
      ? await this.pool.query('UPDATE api_tokens SET revoked = true WHERE username = $1 AND NOT revoked AND name = $2', [username, SESSION_TOKEN_NAME])
      : await this.pool.query('UPDATE api_tokens SET revoked = true WHERE username = $1 AND NOT revoked', [username]);
    return result.rowCount ?? 0;
  }

  async insertToken(row: { id: string; digest: string; username: string; name: string; createdAtMs: number; expiresAtMs: number | null }): Promise<void> {
    await this.pool.query('INSERT INTO api_tokens (id, digest, username, name, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6)', [row.id, row.digest, row.username, row.name, row.createdAtMs, row.expiresAtMs]);
  }

  async tokenByDigest(digest: string) {
    const row = (
      await this.pool.query<{ id: string; username: string; name: string; created_at_ms: string; expires_at_ms: string | null; revoked: boolean }>(
        'SELECT id, username, name, created_at_ms, expires_at_ms, revoked FROM api_tokens WHERE digest = $1',
        [digest],
      )
    ).rows[0];
    return row ? { id: row.id, username: row.username, name: row.name, createdAtMs: Number(row.created_at_ms), expiresAtMs: row.expires_at_ms === null ? null : Number(row.expires_at_ms), revoked: row.revoked } : null;
  }

  async revokeToken(id: string): Promise<boolean> {
    return ((await this.pool.query('UPDATE api_tokens SET revoked = true WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async setting(key: string): Promise<string | null> {
    return (await this.pool.query<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key])).rows[0]?.value ?? null;
  }

  async deleteSetting(key: string): Promise<void> {
    await this.pool.query('DELETE FROM settings WHERE key = $1', [key]);
  }

  async setSetting(key: string, value: string, onlyIfAbsent: boolean): Promise<void> {
    await this.pool.query(
      onlyIfAbsent ? 'INSERT INTO settings VALUES ($1, $2) ON CONFLICT (key) DO NOTHING' : 'INSERT INTO settings VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
  }

  async close(): Promise<void> {}
}

/**
 * Leadership by lease: the holder renews every leaseMs/3; anyone may take a lapsed lease, and
 * taking it increments the token, which is the fencing epoch of the new term. A leader that cannot
 * renew before its lease would lapse steps down on its own.
 */
export class LeaseLeadership implements Leadership {
  private current: LeadershipState = { leading: false, epoch: 0, leaderId: null };
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private onChange: ((state: LeadershipState) => void | Promise<void>) | null = null;
  private validUntilMs = 0;
  private transition: Promise<void> = Promise.resolve();

  constructor(
    private readonly pool: pg.Pool,
    private readonly journal: PostgresJournal,
    private readonly instanceId: string,
    private readonly leaseMs: number,
  ) {
    journal.onFenced = () => this.lose();
  }

  state(): LeadershipState {
    return this.current;
  }

  async start(onChange: (state: LeadershipState) => void | Promise<void>): Promise<void> {
    this.onChange = onChange;
    await this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    const delay = this.current.leading ? this.leaseMs / 3 : Math.min(500, this.leaseMs / 4);
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    try {
      const startedMs = performance.now();
      if (this.current.leading) {
        const renewed = await this.pool.query(`UPDATE leader_lease SET expires_at = now() + make_interval(secs => $3::float8 / 1000) WHERE id = 1 AND holder = $1 AND token = $2`, [this.instanceId, this.current.epoch, this.leaseMs]);
        if (renewed.rowCount === 1) this.validUntilMs = startedMs + this.leaseMs;
        else this.lose();
      } else {
        const taken = await this.pool.query<{ token: string }>(
          `UPDATE leader_lease SET holder = $1, token = token + 1, expires_at = now() + make_interval(secs => $2::float8 / 1000) WHERE id = 1 AND expires_at < now() RETURNING token`,
          [this.instanceId, this.leaseMs],
        );
        if (taken.rowCount === 1) {
          this.validUntilMs = startedMs + this.leaseMs;
          const epoch = Number(taken.rows[0]!.token);
          await this.journal.becomeWriter(epoch);
          await this.change({ leading: true, epoch, leaderId: this.instanceId });
        } else {
          const row = (await this.pool.query<{ holder: string; token: string }>('SELECT holder, token FROM leader_lease WHERE id = 1')).rows[0];
          const leaderId = row && row.holder !== '' ? row.holder : null;
          this.journal.follow(200);
          if (this.current.leaderId !== leaderId || this.current.epoch !== Number(row?.token ?? 0)) await this.change({ leading: false, epoch: Number(row?.token ?? 0), leaderId });
        }
      }
    } catch {
      // The database is unreachable: a leader that cannot renew in time stops acting.
      if (this.current.leading && performance.now() > this.validUntilMs - this.leaseMs / 3) this.lose();
    }
    this.schedule();
  }

  private lose(): void {
    if (!this.current.leading) return;
    this.journal.follow(200);
    void this.change({ leading: false, epoch: this.current.epoch, leaderId: null });
  }

  private change(state: LeadershipState): Promise<void> {
    this.current = state;
    this.transition = this.transition.then(() => this.onChange?.(state)).catch(() => undefined);
    return this.transition;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.current.leading) {
      await this.journal.flush();
      await this.pool.query(`UPDATE leader_lease SET expires_at = now() - interval '1 second' WHERE id = 1 AND holder = $1 AND token = $2`, [this.instanceId, this.current.epoch]).catch(() => undefined);
      this.current = { ...this.current, leading: false };
    }
  }
}

export async function openPostgresStorage(url: string, options: StorageOptions): Promise<Storage> {
  const pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 3000, query_timeout: 3000 });
  pool.on('error', () => undefined);
  await migrate(pool);
  const journal = await PostgresJournal.open(pool);
  const accounts = new AccountStore(new PostgresAccountRows(pool), options.scryptCost);
  const leadership = new LeaseLeadership(pool, journal, options.instanceId, options.leaseMs ?? 3000);
  return {
    kind: 'postgres',
    journal,
    accounts,
    leadership,
    close: async () => {
      await journal.close();
      await pool.end();
    },
  };
}
