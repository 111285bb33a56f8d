/**
 * The security response as pure decisions (like rebalance.ts): from a ransomware alert, or an
 * operator's request to restore a chosen snapshot, and what the controller observes, the next step
 * of the VM's incident — quarantine it at the network layer,
 * restore its last clean snapshot into the isolated recovery network, check the restored copy's
 * health, put it into service (the substrate stops every infected copy first), lift the
 * quarantine. The controller executes each action through the Substrate port and journals it.
 *
 * "Last clean snapshot" is the newest one taken before the anomalous writes began, as the
 * detector estimated it; the detector is never told when the attack began. If the restored copy
 * fails its health check (the estimate was late and the snapshot holds encrypted data), the next
 * older snapshot is tried, up to a bound. An operator's restore runs the same way, from the snapshot
 * chosen (and, should that one fail its health check, from the ones before it).
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import { HostLoad } from '../capacity/capacity.ts';
import type { RansomwareAlert } from '../detect/ransomware.ts';
import type { InstanceObservation, RestoreObservation, SnapshotObservation } from '../ports/index.ts';
import type { ControllerState } from './state.ts';
import type { ControllerTimings } from './timings.ts';
import type { WorkKey } from './work-queue.ts';

export type SecurityPhase = 'detected' | 'quarantined' | 'restoring' | 'cutting-over' | 'recovered' | 'unrecoverable';

/** An operator's request to restore one VM from a snapshot they chose. */
export interface OperatorRestore {
  readonly vm: string;
  readonly snapshotId: string;
  readonly snapshotTakenAtMs: number;
  readonly requestedBy: string;
  readonly reason: string;
  readonly atMs: number;
}

/** What opened a case: the detector's alert, or an operator's restore request. */
export type SecurityCause = { readonly kind: 'alert'; readonly alert: RansomwareAlert } | { readonly kind: 'restore'; readonly request: OperatorRestore };

export interface SecurityCase {
  readonly vm: string;
  readonly phase: SecurityPhase;
  readonly cause: SecurityCause;
  readonly openedAtMs: number;
  readonly quarantinedAtMs: number | null;
  /** The production copies that ran when the case opened: the infected ones. */
  readonly infectedInstances: readonly string[];
  readonly restore: { readonly id: string; readonly snapshotId: string; readonly restorePointMs: number; readonly host: string; readonly startedAtMs: number } | null;
  readonly triedSnapshots: readonly string[];
  readonly promotedAtMs: number | null;
  readonly recoveredAtMs: number | null;
  readonly reason: string | null;
}

export type SecurityAction =
  | { readonly type: 'quarantineVm'; readonly vm: string; readonly reason: string }
  | { readonly type: 'restoreSnapshot'; readonly vm: string; readonly snapshotId: string; readonly restorePointMs: number; readonly host: string; readonly reason: string }
  | { readonly type: 'promoteRestored'; readonly vm: string; readonly restoreId: string; readonly reason: string }
  | { readonly type: 'releaseVm'; readonly vm: string; readonly reason: string };

/** The controller's timings a security case runs on. */
export type SecurityTimings = Pick<ControllerTimings, 'restoreTimeoutExtraMs' | 'restoredUnhealthyGraceMs' | 'cutoverGraceMs'>;

/** Snapshots tried, each older than the last, before a case is given up as unrecoverable. */
export const MAX_SNAPSHOTS_TRIED = 4;

export function openCase(cause: SecurityCause, state: ControllerState, nowMs: number): SecurityCase {
  const vm = cause.kind === 'alert' ? cause.alert.vm : cause.request.vm;
  const infected = [...state.instances.values()].filter((instance) => instance.vm === vm && instance.state !== 'stopped').map((instance) => instance.id);
  return {
    vm,
    phase: 'detected',
    cause,
    openedAtMs: nowMs,
    quarantinedAtMs: null,
    infectedInstances: infected,
    restore: null,
    triedSnapshots: [],
    promotedAtMs: null,
    recoveredAtMs: null,
    reason: null,
  };
}

/** When the case's cause arose: the alert's time, or the request's. */
export function causeAtMs(cause: SecurityCause): number {
  return cause.kind === 'alert' ? cause.alert.atMs : cause.request.atMs;
}

/**
 * The restore takes the newest snapshot taken before this point: before the anomalous writes the
 * detector saw, or, for an operator's request, the snapshot chosen (taken at or before it).
 */
function cleanBeforeMs(cause: SecurityCause): number {
  return cause.kind === 'alert' ? cause.alert.anomalousWritesSinceMs : cause.request.snapshotTakenAtMs + 1;
}

/** How sure the cause is of an attack: an operator's request is acted on as a certain one. */
function causeScore(cause: SecurityCause): number {
  return cause.kind === 'alert' ? cause.alert.score : 1;
}

/** The newest snapshot taken strictly before `beforeMs` and not yet tried. */
export function lastCleanSnapshot(snapshots: readonly SnapshotObservation[], beforeMs: number, tried: readonly string[] = []): SnapshotObservation | null {
  let best: SnapshotObservation | null = null;
  for (const snapshot of snapshots) {
    if (snapshot.takenAtMs >= beforeMs || tried.includes(snapshot.id)) continue;
    if (best === null || snapshot.takenAtMs > best.takenAtMs) best = snapshot;
  }
  return best;
}

/**
 * Where the restored copy boots: on the infected copy's host when it is up (the restored copy takes
 * over that room, so the placement the controller follows is unchanged; for the minutes of
 * verification the host carries both), else on the up host with the most free cores that fits.
 */
export function recoveryHost(model: CapacityModel, state: ControllerState, vm: string): string | null {
  const load = new HostLoad(model);
  let infectedHost: string | null = null;
  for (const instance of state.instances.values()) {
    if (instance.vm === vm && instance.role === 'primary' && instance.state !== 'stopping') infectedHost = instance.host;
    if (instance.state === 'stopping' || state.hostStatus.get(instance.host) !== 'up') continue;
    load.add(instance.host, instance.vm);
  }
  if (infectedHost !== null && state.hostStatus.get(infectedHost) === 'up') return infectedHost;
  let best: string | null = null;
  for (const host of model.blueprint.hosts) {
    if (state.hostStatus.get(host.name) !== 'up' || !load.fits(host.name, vm)) continue;
    if (best === null || load.freeCores(host.name) > load.freeCores(best)) best = host.name;
  }
  return best;
}

export interface SecurityStepInput {
  readonly securityCase: SecurityCase;
  readonly nowMs: number;
  readonly model: CapacityModel;
  readonly state: ControllerState;
  readonly snapshots: readonly SnapshotObservation[];
  readonly restore: RestoreObservation | null;
  readonly timings: SecurityTimings;
}

/**
 * The next action of one incident, or none (waiting), and the case as it stands once that action
 * succeeds. Phases that need no action (a restore that failed its health check, a recovery seen
 * complete) are advanced here directly and returned with no action.
 */
export function securityStep(input: SecurityStepInput): { action: SecurityAction | null; next: SecurityCase } {
  const { securityCase, nowMs, model, state, timings } = input;
  const vm = securityCase.vm;
  switch (securityCase.phase) {
    case 'detected':
      return {
        action: {
          type: 'quarantineVm',
          vm,
          reason: `ransomware alert (score ${causeScore(securityCase.cause).toFixed(2)}): cut ${vm} off every network but the forensic one; every other flow stays`,
        },
        next: { ...securityCase, phase: 'quarantined', quarantinedAtMs: nowMs },
      };
    case 'quarantined': {
      if (securityCase.triedSnapshots.length >= MAX_SNAPSHOTS_TRIED) {
        return { action: null, next: { ...securityCase, phase: 'unrecoverable', reason: `${MAX_SNAPSHOTS_TRIED} snapshots failed their health check` } };
      }
      const cleanBefore = cleanBeforeMs(securityCase.cause);
      const snapshot = lastCleanSnapshot(input.snapshots, cleanBefore, securityCase.triedSnapshots);
      if (snapshot === null) {
        return { action: null, next: { ...securityCase, phase: 'unrecoverable', reason: 'no snapshot older than the anomalous writes is left' } };
      }
      const host = recoveryHost(model, state, vm);
      if (host === null) return { action: null, next: securityCase };
      return {
        action: {
          type: 'restoreSnapshot',
          vm,
          snapshotId: snapshot.id,
          restorePointMs: snapshot.takenAtMs,
          host,
          reason: `newest snapshot taken before the anomalous writes began (${Math.round(cleanBefore / 1000)} s): restore it into the isolated recovery network`,
        },
        next: {
          ...securityCase,
          phase: 'restoring',
          restore: { id: '', snapshotId: snapshot.id, restorePointMs: snapshot.takenAtMs, host, startedAtMs: nowMs },
          triedSnapshots: [...securityCase.triedSnapshots, snapshot.id],
        },
      };
    }
    case 'restoring': {
      const restore = securityCase.restore!;
      const observed = input.restore;
      const bootMs = model.vm(vm).bootTimeS * 1000;
      if (observed !== null && observed.healthy) {
        return {
          action: { type: 'promoteRestored', vm, restoreId: restore.id, reason: `restored copy passed its health check on the recovery network: stop the infected copies, put it into service` },
          next: { ...securityCase, phase: 'cutting-over', promotedAtMs: nowMs },
        };
      }
      const timedOut = nowMs - restore.startedAtMs > bootMs + timings.restoreTimeoutExtraMs;
      const failsHealth = observed !== null && observed.state === 'running' && !observed.healthy && nowMs - restore.startedAtMs > bootMs + timings.restoredUnhealthyGraceMs;
      if (observed === null || timedOut || failsHealth) {
        // Not healthy: the snapshot may hold encrypted data already; try the next older one.
        return { action: null, next: { ...securityCase, phase: 'quarantined', restore: null, reason: `restored copy ${restore.id} from ${restore.snapshotId} did not pass its health check` } };
      }
      return { action: null, next: securityCase };
    }
    case 'cutting-over': {
      const recovered = [...state.instances.values()].some(
        (instance: InstanceObservation) =>
          instance.vm === vm && instance.role === 'primary' && instance.state === 'running' && instance.healthy && !securityCase.infectedInstances.includes(instance.id),
      );
      if (recovered) return { action: null, next: { ...securityCase, phase: 'recovered', recoveredAtMs: nowMs } };
      // Level-triggered safety net: once promoted, the VM's disk is the restored one; if no copy
      // runs a while later (its host failed), the ordinary restart may bring it back from that disk.
      const anyCopy = [...state.instances.values()].some((instance) => instance.vm === vm && instance.role === 'primary' && instance.state !== 'stopping');
      if (!anyCopy && nowMs - (securityCase.promotedAtMs ?? nowMs) > timings.cutoverGraceMs) {
        return { action: null, next: { ...securityCase, phase: 'recovered', recoveredAtMs: null, reason: 'no copy runs after the promotion: handed to the ordinary restart, from the restored disk' } };
      }
      return { action: null, next: securityCase };
    }
    case 'recovered':
    case 'unrecoverable':
      return { action: null, next: securityCase };
  }
}

/** In-flight keys the controller holds while an incident runs, so that decide() neither restarts nor stops the VM. */
export function custodyKeys(securityCase: SecurityCase): WorkKey[] {
  if (securityCase.phase === 'recovered') return [];
  return [`start:${securityCase.vm}:primary`, `promote:${securityCase.vm}`, ...securityCase.infectedInstances.map((id): WorkKey => `stop:${id}`)];
}
