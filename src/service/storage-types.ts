/** The shapes every storage back end (SQLite in storage.ts, PostgreSQL in postgres-storage.ts) provides. */
import type { JournalStore } from '../journal/store.ts';
import type { AccountStore } from './auth/accounts.ts';
import type { ScryptCost } from './auth/passwords.ts';

export interface LeadershipState {
  readonly leading: boolean;
  readonly epoch: number;
  readonly leaderId: string | null;
}

/** Who leads. Implementations call `onChange` whenever this instance gains or loses the lead. */
export interface Leadership {
  start(onChange: (state: LeadershipState) => void | Promise<void>): Promise<void>;
  /** Gives the lead up at once (graceful shutdown), so a follower need not wait for the lease to lapse. */
  stop(): Promise<void>;
  state(): LeadershipState;
}

export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  readonly journal: JournalStore;
  readonly accounts: AccountStore;
  readonly leadership: Leadership;
  close(): Promise<void>;
}

export interface StorageOptions {
  readonly instanceId: string;
  readonly scryptCost?: ScryptCost;
  /** Lease length for PostgreSQL leadership; a follower takes over at most this long after the leader died. */
  readonly leaseMs?: number;
}
