/**
 * service/ owns the running control plane: it wires a blueprint, a substrate (the in-process twin
 * or a remote one), the wall clock, the controller, the journal store and leader election behind
 * the API, and stops it all gracefully. It is composition: it may import adapters and api/.
 */
import { randomUUID } from 'node:crypto';
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
import { createSigner, newSigningKeyPem } from '../service/audit.ts';
import { WallClock } from '../service/clock.ts';
import { ControlPlane } from '../service/control-plane.ts';
import { openStorage, type LeadershipState, type Storage } from '../service/storage.ts';
import { TomaranaiError } from '../errors/index.ts';
import type { NotifyConfig, ReceiverConfig, ReceiverPort } from '../notify/index.ts';
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
  /** Notification receivers and routes (docs/alerts.md); the leader delivers them. */
  readonly notify?: Readonly<NotifyConfig>;
  /** Tests replace a receiver's transport. */
  readonly createReceiver?: (config: ReceiverConfig) => ReceiverPort;
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

/** The name callers outside this module still use for the one error class (src/errors). */
export { TomaranaiError as ServiceError };

function blueprintOf(source: string): Blueprint {
  const loaded = loadBlueprint(source);
  if (!loaded.ok) {
    throw new TomaranaiError('TMR_SERVICE_BLUEPRINT', `the blueprint is not valid: ${loaded.problems.slice(0, 3).map((problem) => `${problem.line}:${problem.col} ${problem.message}`).join('; ')}`, 'run `tomaranai validate FILE` and fix what it prints');
  }
  return loaded.blueprint;
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const instanceId = options.instanceId ?? `tomaranai-${randomUUID().slice(0, 8)}`;
  const storage = await openStorage(options.db, { instanceId, ...(options.scryptCost ? { scryptCost: options.scryptCost } : {}), ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}) });
  const blueprint = blueprintOf(options.blueprintSource);
  const clock = new WallClock(options.speed ?? 1);
  let substrate: Substrate;
  if (options.substrate === 'twin') {
    substrate = new Twin(blueprint, clock, createRandom(options.seed ?? 1).fork('twin'));
  } else if (/^https?:\/\//.test(options.substrate)) {
    const remote = new RemoteSubstrate({ url: options.substrate, clock });
    await remote.connect();
    substrate = remote;
  } else {
    throw new TomaranaiError('TMR_SERVICE_SUBSTRATE', `unknown substrate "${options.substrate}"`, 'use twin, or the http:// URL of `tomaranai twin serve`');
  }
  const monitoring = new Monitoring();
  // The controller's passes are timed for /metrics through its clock; the twin keeps the plain one.
  let plane: ControlPlane | null = null;
  const controllerClock = passTimingClock(clock, () => plane?.controller?.passes ?? 0, (seconds) => monitoring.controllerPassSeconds.observe(seconds));
  plane = new ControlPlane({ blueprint, blueprintSource: options.blueprintSource, substrate, clock: controllerClock, journal: storage.journal, ...(options.timings ? { timings: options.timings } : {}) });
  const signer = createSigner(await storage.accounts.settingOnce('audit.signing-key', newSigningKeyPem()));

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

  const app = await buildApp({ plane, accounts: storage.accounts, journal: storage.journal, signer, health, monitoring, logger: options.logger ?? { level: 'info' } });
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
  const leadershipStarted = storage.leadership.start(async (state) => {
    leadership = state;
    if (role === 'stopping') return;
    if (state.leading && !plane.leading) {
      app.log.info({ event: 'leader.elected', instanceId, epoch: state.epoch }, 'this instance leads');
      await plane.lead(state.epoch, instanceId);
      role = 'leader';
      startNotifying();
    } else if (!state.leading) {
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
    clock.close();
    await storage.close();
    throw error;
  }
  await app.listen({ port: options.port, host: options.host ?? '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  const url = `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  app.log.info({ event: 'service.listening', url, instanceId, db: storage.kind, substrate: substrate.name }, 'listening');

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      role = 'stopping';
      // Stop acting first, then give the lease up, then drain requests and close the stores.
      stopNotifications();
      plane.stepDown();
      await storage.leadership.stop();
      await app.close();
      plane.close();
      if (substrate instanceof RemoteSubstrate) substrate.close();
      clock.close();
      await storage.journal.flush?.();
      await storage.close();
    })();
    return stopping;
  };
  return { url, instanceId, app, plane, storage, substrate, health, notifications: () => notifications, stop };
}
