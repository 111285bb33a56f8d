/** What the HTTP app is built from (buildApp in app.ts); plugins and metrics import it from here. */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { JournalStore } from '../journal/store.ts';
import type { ControlPlane } from '../service/control-plane.ts';
import type { AuditSigner } from '../service/audit.ts';
import type { AccountStore } from '../service/auth/accounts.ts';
import type { DirectoryLogin } from '../service/auth/directory.ts';
import type { LoginLimiter } from './auth/rate-limit.ts';
import type { EventHub } from './sse.ts';
import type { Monitoring } from './monitoring.ts';

export interface HealthState {
  /** Serving requests at all. */
  readonly live: boolean;
  /** Ready for traffic: the journal is open and this instance leads or follows a known leader. */
  readonly ready: boolean;
  readonly role: 'leader' | 'follower' | 'starting' | 'stopping';
  readonly instanceId: string;
  readonly leaderId: string | null;
  readonly epoch: number;
  readonly detail: string;
}

export interface ApiDeps {
  readonly plane: ControlPlane;
  readonly accounts: AccountStore;
  readonly journal: JournalStore;
  readonly signer: AuditSigner;
  readonly health?: () => HealthState;
  readonly loginLimiter?: LoginLimiter;
  /** Pino logger options, a logger instance, or false (tests). */
  readonly logger?: boolean | { level?: string; stream?: NodeJS.WritableStream } | FastifyBaseLogger;
  readonly wallNowMs?: () => number;
  /** Reverse proxies whose X-Forwarded-For names the client (addresses or CIDRs); none by default. */
  readonly trustProxy?: readonly string[];
  /** Serve HTTPS with this key and certificate (PEM); responses then carry Strict-Transport-Security. */
  readonly tls?: { readonly key: string; readonly cert: string };
  readonly sessionTtlMs?: number;
  /** LDAP / Active Directory and OpenID Connect login (serve --directory FILE); local accounts only without. */
  readonly directory?: DirectoryLogin;
  readonly sseHeartbeatMs?: number;
  /** The metrics registry (the service passes one it also feeds); a fresh one otherwise. */
  readonly monitoring?: Monitoring;
}

export interface ApiApp {
  readonly app: FastifyInstance;
  readonly events: EventHub;
}
