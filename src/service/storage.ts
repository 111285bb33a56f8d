/**
 * Where the service keeps its state: the journal, the accounts and who leads. `sqlite:PATH` (the
 * embedded default, one instance) or `postgres://…` (several instances share it; one leads through
 * a lease with a fencing token). Schema migrations run on open.
 */
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { AccountStore, SqliteAccountRows } from './auth/accounts.ts';
import type { ScryptCost } from './auth/passwords.ts';
import { SqliteJournal } from '../journal/sqlite.ts';
import type { JournalStore } from '../journal/store.ts';
import { isEvent } from '../ports/index.ts';

export type { Leadership, LeadershipState, Storage, StorageOptions } from './storage-types.ts';
import type { Leadership, LeadershipState, Storage, StorageOptions } from './storage-types.ts';
import { TomaranaiError } from '../errors/index.ts';

/** The newest epoch a controller of this journal ever claimed: a restarted one claims a higher one. */
export function newestEpoch(journal: JournalStore): number {
  let epoch = 0;
  for (const entry of journal.entries()) if (isEvent(entry, 'controller.started')) epoch = Math.max(epoch, entry.data.epoch);
  return epoch;
}

/**
 * An embedded store has one instance, which leads, each start in a newer term. A lease row in the
 * file keeps a second instance on the same file from acting too: it waits for the lease to lapse
 * (a killed instance's lapses within leaseMs) and gives up after that with TMR_SERVICE_DB_BUSY.
 */
class SoleLeadership implements Leadership {
  private current: LeadershipState;
  private renewTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database.Database | null,
    epoch: number,
    private readonly instanceId: string,
    private readonly leaseMs: number,
  ) {
    this.current = { leading: false, epoch, leaderId: null };
    db?.exec('CREATE TABLE IF NOT EXISTS leader_lease (id INTEGER PRIMARY KEY, holder TEXT NOT NULL, token INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL)');
    db?.prepare("INSERT INTO leader_lease VALUES (1, '', 0, 0) ON CONFLICT(id) DO NOTHING").run();
  }

  private tryTake(): number | null {
    if (this.db === null) return this.current.epoch;
    const now = Date.now();
    const row = this.db
      .prepare('UPDATE leader_lease SET holder = ?, token = max(token + 1, ?), expires_at_ms = ? WHERE id = 1 AND (expires_at_ms < ? OR holder = ?) RETURNING token')
      .get(this.instanceId, this.current.epoch, now + this.leaseMs, now, this.instanceId) as { token: number } | undefined;
    return row?.token ?? null;
  }

  async start(onChange: (state: LeadershipState) => void | Promise<void>): Promise<void> {
    const deadline = Date.now() + this.leaseMs + 1000;
    let epoch = this.tryTake();
    while (epoch === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      epoch = this.tryTake();
    }
    if (epoch === null) {
      const holder = (this.db!.prepare('SELECT holder FROM leader_lease WHERE id = 1').get() as { holder: string }).holder;
      throw new TomaranaiError('TMR_SERVICE_DB_BUSY', `instance ${holder} runs on this SQLite file`, 'stop it first, or run several instances on PostgreSQL (--db postgres://…)');
    }
    this.current = { leading: true, epoch, leaderId: this.instanceId };
    if (this.db !== null) {
      this.renewTimer = setInterval(() => {
        this.db!.prepare('UPDATE leader_lease SET expires_at_ms = ? WHERE id = 1 AND holder = ?').run(Date.now() + this.leaseMs, this.instanceId);
      }, this.leaseMs / 3);
      this.renewTimer.unref();
    }
    await onChange(this.current);
  }

  async stop(): Promise<void> {
    if (this.renewTimer !== null) clearInterval(this.renewTimer);
    if (this.current.leading && this.db !== null && this.db.open) this.db.prepare('UPDATE leader_lease SET expires_at_ms = 0 WHERE id = 1 AND holder = ?').run(this.instanceId);
    this.current = { ...this.current, leading: false };
  }

  state(): LeadershipState {
    return this.current;
  }
}

export function sqlitePath(db: string): string | null {
  if (db === ':memory:' || db === 'sqlite::memory:') return ':memory:';
  if (db.startsWith('sqlite:')) return db.slice('sqlite:'.length);
  return null;
}

export async function openStorage(db: string, options: StorageOptions): Promise<Storage> {
  if (db.startsWith('postgres://') || db.startsWith('postgresql://')) {
    const { openPostgresStorage } = await import('./postgres-storage.ts');
    return openPostgresStorage(db, options);
  }
  const path = sqlitePath(db);
  if (path === null) throw new TomaranaiError('TMR_SERVICE_DB_URL', `"${db}" is not a database URL`, 'use sqlite:PATH (the default, sqlite:./tomaranai.db) or postgres://USER:PASSWORD@HOST/DB');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  let journal: SqliteJournal;
  try {
    journal = new SqliteJournal(path);
  } catch (error) {
    throw new TomaranaiError('TMR_SERVICE_DB_OPEN', `cannot open ${path}: ${error instanceof Error ? error.message : String(error)}`, 'check the path and its permissions');
  }
  const rows = new SqliteAccountRows(path === ':memory:' ? ':memory:' : path);
  // The journal, accounts and token digests: readable by the service's user only.
  if (path !== ':memory:') for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
  const accounts = new AccountStore(rows, options.scryptCost);
  const leaseDb = path === ':memory:' ? null : new Database(path);
  leaseDb?.pragma('busy_timeout = 5000');
  const leadership = new SoleLeadership(leaseDb, newestEpoch(journal) + 1, options.instanceId, options.leaseMs ?? 3000);
  return {
    kind: 'sqlite',
    journal,
    accounts,
    leadership,
    close: async () => {
      await leadership.stop();
      leaseDb?.close();
      await accounts.close();
      journal.close();
    },
  };
}
