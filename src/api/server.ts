/**
 * service/ owns the running control plane: it wires a blueprint, a substrate (the in-process twin
 * or a remote one), the wall clock, the controller, the journal store and leader election behind
 * the API, and stops it all gracefully. It is composition: it may import adapters and api/.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { buildApp, type ApiDeps, type HealthState } from './app.ts';
import type { ScryptCost } from '../service/auth/passwords.ts';
import type { ControllerTimings } from '../control/decide.ts';
import type { Substrate } from '../ports/index.ts';
import { createRandom } from '../ports/random.ts';
import { loadBlueprint, type Blueprint } from '../model/index.ts';
import { Twin } from '../substrate/twin/twin.ts';
import { RemoteSubstrate } from '../substrate/remote/client.ts';
import { AuditForwarder, type AuditForwardTarget } from '../service/audit-forwarder.ts';
import { auditFilesFor, CheckpointWriter, openAuditSigner } from '../service/audit-trail.ts';
import { WallClock } from '../service/clock.ts';
import { ControlPlane } from '../service/control-plane.ts';
import { openStorage, type LeadershipState, type Storage } from '../service/storage.ts';
import { TomaranaiError } from '../errors/index.ts';
import type { NotifyConfig, ReceiverConfig, ReceiverPort } from '../notify/index.ts';
import { DirectoryLogin } from '../service/auth/directory.ts';
import type { DirectoryConfig } from '../service/auth/directory-config.ts';
import { startNotifications, type Notifications } from '../service/notifications.ts';
import { passTimingClock } from '../service/pass-timer.ts';
import { Monitoring } from './monitoring.ts';

export interface ServiceOptions {
  /** sqlite:PATH, :memory: or postgres://… */
  readonly db: string;
  /** `twin` (in-process) or the URL of `tomaranai twin serve`. */
  readonly substrate: string;
  readonly blueprintSource: string;
  readonly port: number;
  readonly host?: string;
  /** Clock speed (1 = real time); the in-process twin runs on the same clock. */
  readonly speed?: number;
  readonly seed?: number;
  readonly instanceId?: string;
  readonly logger?: ApiDeps['logger'];
  readonly scryptCost?: ScryptCost;
  readonly leaseMs?: number;
  readonly timings?: Partial<ControllerTimings>;
  /** Reverse proxies trusted to name the client in X-Forwarded-For. */
  readonly trustProxy?: readonly string[];
  /** HTTPS: the certificate and key files (PEM). Without them the service speaks plain HTTP (put it behind a TLS proxy). */
  readonly tlsCertFile?: string;
  readonly tlsKeyFile?: string;
  /** The audit signing key and the signed checkpoints, outside the database (default: beside a SQLite file). */
  readonly auditKeyFile?: string;
  readonly checkpointFile?: string;
  /** LDAP / Active Directory and OpenID Connect login with groups mapped to roles (docs/security.md). */
  readonly directory?: DirectoryConfig;
  /** Notification receivers and routes (docs/alerts.md); the leader delivers them. */
  readonly notify?: Readonly<NotifyConfig>;
  /** Tests replace a receiver's transport. */
  readonly createReceiver?: (config: ReceiverConfig) => ReceiverPort;
  /** Forward every journal entry to this syslog server as it is written (the leader does). */
  readonly auditSyslog?: AuditForwardTarget;
}

export interface RunningService {
  readonly url: string;
  readonly instanceId: string;
  readonly app: FastifyInstance;
  readonly plane: ControlPlane;
  readonly storage: Storage;
  readonly substrate: Substrate;
  health(): HealthState;
  /** The notifier while this instance leads and notifications are configured. */
  notifications(): Notifications | null;
  stop(): Promise<void>;
}

function blueprintOf(source: string): Blueprint {
  const loaded = loadBlueprint(source);
  if (!loaded.ok) {
    throw new TomaranaiError('TMR_SERVICE_BLUEPRINT', `the blueprint is not valid: ${loaded.problems.slice(0, 3).map((problem) => `${problem.line}:${problem.col} ${problem.message}`).join('; ')}`, 'run `tomaranai validate FILE` and fix what it prints');
  }
  return loaded.blueprint;
}

/** How often the leader journals account changes the CLI queued. */
const AUDIT_INBOX_POLL_MS = 2_000;

function tlsOf(options: ServiceOptions): { key: string; cert: string } | null {
  if (options.tlsCertFile === undefined && options.tlsKeyFile === undefined) return null;
  if (options.tlsCertFile === undefined || options.tlsKeyFile === undefined) {
    throw new TomaranaiError('TMR_SERVICE_TLS', 'HTTPS needs both a certificate and its key', 'pass --tls-cert FILE and --tls-key FILE together');
  }
  try {
    return { cert: readFileSync(options.tlsCertFile, 'utf8'), key: readFileSync(options.tlsKeyFile, 'utf8') };
  } catch (error) {
    throw new TomaranaiError('TMR_SERVICE_TLS', `cannot read the certificate or key: ${error instanceof Error ? error.message : String(error)}`, 'check the paths and that this user may read them');
  }
}

async function connectSubstrate(options: ServiceOptions, blueprint: Blueprint, clock: WallClock): Promise<Substrate> {
  if (options.substrate === 'twin') return new Twin(blueprint, clock, createRandom(options.seed ?? 1).fork('twin'));
  if (/^https?:\/\//.test(options.substrate)) {
    const remote = new RemoteSubstrate({ url: options.substrate, clock });
    await remote.connect();
    return remote;
  }
  throw new TomaranaiError('TMR_SERVICE_SUBSTRATE', `unknown substrate "${options.substrate}"`, 'use twin, or the http:// URL of `tomaranai twin serve`');
}

/** Account changes made with the CLI wait in the audit inbox; the leader journals them, in order. */
function auditInbox(storage: Storage, plane: ControlPlane, clock: WallClock): { drain(): Promise<void>; stop(): void } {
  const drain = async () => {
    if (!plane.leading) return;
    await storage.accounts.drainAudit((queued) => {
      storage.journal.append({ atMs: clock.nowMs(), kind: 'audit', type: queued.type, subject: queued.subject, actor: queued.actor, data: { ...(JSON.parse(queued.data) as Record<string, unknown>), queuedAtMs: queued.atMs } });
    });
  };
  const timer = setInterval(() => void drain().catch(() => {}), AUDIT_INBOX_POLL_MS);
  timer.unref();
  return { drain, stop: () => clearInterval(timer) };
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  // Refused before anything is opened: half a TLS configuration is an operator's mistake.
  const tls = tlsOf(options);
  // So is a directory configuration whose secret files cannot be read.
  const directory = options.directory === undefined ? undefined : new DirectoryLogin(options.directory);
  const instanceId = options.instanceId ?? `tomaranai-${randomUUID().slice(0, 8)}`;
  const storage = await openStorage(options.db, { instanceId, ...(options.scryptCost ? { scryptCost: options.scryptCost } : {}), ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}) });
  const blueprint = blueprintOf(options.blueprintSource);
  const clock = new WallClock(options.speed ?? 1);
  // Journal time never goes back: after a restart (or on another instance), resume no earlier than the last entry.
  const resumeAfterJournal = () => clock.notBefore(storage.journal.entries(storage.journal.length)[0]?.atMs ?? 0);
  resumeAfterJournal();
  const substrate = await connectSubstrate(options, blueprint, clock);
  const monitoring = new Monitoring();
  // The controller's passes are timed for /metrics through its clock; the twin keeps the plain one.
  let plane: ControlPlane | null = null;
  const controllerClock = passTimingClock(clock, () => plane?.controller?.passes ?? 0, (seconds) => monitoring.controllerPassSeconds.observe(seconds));
  plane = new ControlPlane({ blueprint, blueprintSource: options.blueprintSource, substrate, clock: controllerClock, journal: storage.journal, ...(options.timings ? { timings: options.timings } : {}) });
  const auditFiles = auditFilesFor(options.db, { ...(options.auditKeyFile ? { keyFile: options.auditKeyFile } : {}), ...(options.checkpointFile ? { checkpointFile: options.checkpointFile } : {}) });
  const signer = await openAuditSigner(auditFiles, storage.accounts).catch(async (error: unknown) => {
    plane?.close();
    clock.close();
    await storage.close();
    throw error;
  });
  const checkpoints = auditFiles.checkpointFile === null ? null : new CheckpointWriter(auditFiles.checkpointFile, signer, storage.journal);

  let role: HealthState['role'] = 'starting';
  let leadership: LeadershipState = { leading: false, epoch: 0, leaderId: null };
  const health = (): HealthState => ({
    live: role !== 'stopping',
    ready: role === 'leader' || (role === 'follower' && leadership.leaderId !== null),
    role,
    instanceId,
    leaderId: leadership.leaderId,
    epoch: leadership.epoch,
    detail: `${storage.kind} journal, ${substrate.name} substrate`,
  });

  const inbox = auditInbox(storage, plane, clock);

  if (directory !== undefined) storage.accounts.directoryTokenMaxMs = directory.sessionTtlMs;
  const optional = { ...(options.trustProxy ? { trustProxy: options.trustProxy } : {}), ...(tls ? { tls } : {}), ...(directory ? { directory } : {}) };
  const app = await buildApp({ plane, accounts: storage.accounts, journal: storage.journal, signer, health, monitoring, logger: options.logger ?? { level: 'info' }, ...optional });
  // Notifications run only on the leader, off the journal; a follower's journal is the leader's.
  let notifications: Notifications | null = null;
  const stopNotifications = () => {
    notifications?.stop();
    notifications = null;
    monitoring.notifier = null;
  };
  const startNotifying = () => {
    if (options.notify === undefined || options.notify.receivers.length === 0 || notifications !== null) return;
    notifications = startNotifications(plane, options.notify, options.createReceiver ? { createReceiver: options.createReceiver } : {});
    monitoring.notifier = notifications.notifier;
  };
  let forwarder: AuditForwarder | null = null;
  const leadershipStarted = storage.leadership.start(async (state) => {
    leadership = state;
    if (role === 'stopping') return;
    if (state.leading && !plane.leading) {
      resumeAfterJournal();
      app.log.info({ event: 'leader.elected', instanceId, epoch: state.epoch }, 'this instance leads');
      await plane.lead(state.epoch, instanceId);
      role = 'leader';
      await inbox.drain();
      startNotifying();
      if (options.auditSyslog !== undefined) forwarder ??= new AuditForwarder(storage.journal, options.auditSyslog, auditFiles.forwardCursorFile);
    } else if (!state.leading) {
      forwarder?.stop();
      forwarder = null;
      if (plane.leading) app.log.warn({ event: 'leader.lost', instanceId, epoch: state.epoch }, 'this instance no longer leads; its controller stops');
      stopNotifications();
      plane.stepDown();
      plane.leaderId = state.leaderId;
      role = 'follower';
    }
  });
  try {
    await leadershipStarted;
  } catch (error) {
    // Nothing of this instance acted yet: release what it opened and report why.
    stopNotifications();
    await app.close();
    plane.close();
    if (substrate instanceof RemoteSubstrate) substrate.close();
    inbox.stop();
    clock.close();
    checkpoints?.close();
    await storage.close();
    throw error;
  }
  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  app.log.info({ event: 'service.listening', url, instanceId, db: storage.kind, substrate: substrate.name }, 'listening');

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      role = 'stopping';
      forwarder?.stop();
      inbox.stop();
      // Stop acting first, then give the lease up, then drain requests and close the stores.
      stopNotifications();
      plane.stepDown();
      await storage.leadership.stop();
      await app.close();
      plane.close();
      if (substrate instanceof RemoteSubstrate) substrate.close();
      clock.close();
      await storage.journal.flush?.();
      checkpoints?.close();
      await storage.close();
    })();
    return stopping;
  };
  return { url, instanceId, app, plane, storage, substrate, health, notifications: () => notifications, stop };
}
