/**
 * The security response as pure decisions (like rebalance.ts): from a ransomware alert and what the
 * controller observes, the next step of the VM's incident — quarantine it at the network layer,
 * restore its last clean snapshot into the isolated recovery network, check the restored copy's
 * health, put it into service (the substrate stops every infected copy first), lift the
 * quarantine. The controller executes each action through the Substrate port and journals it.
 *
 * "Last clean snapshot" is the newest one taken before the anomalous writes began, as the
 * detector estimated it; the detector is never told when the attack began. If the restored copy
 * fails its health check (the estimate was late and the snapshot holds encrypted data), the next
 * older snapshot is tried, up to a bound.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import { HostLoad } from '../capacity/capacity.ts';
import type { RansomwareAlert } from '../detect/ransomware.ts';
import type { InstanceObservation, RestoreObservation, SnapshotObservation } from '../ports/index.ts';
import type { ControllerState } from './state.ts';

export type SecurityPhase = 'detected' | 'quarantined' | 'restoring' | 'cutting-over' | 'recovered' | 'unrecoverable';

export interface SecurityCase {
  readonly vm: string;
  readonly phase: SecurityPhase;
  readonly alert: RansomwareAlert;
  readonly openedAtMs: number;
  readonly quarantinedAtMs: number | null;
  /** The production copies that ran when the alert came: the infected ones. */
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

export interface SecurityOptions {
  /** How long a restored copy may take to boot and pass its health check before the next snapshot is tried. */
  readonly restoreTimeoutExtraMs: number;
  readonly maxSnapshotsTried: number;
}

export const DEFAULT_SECURITY_OPTIONS: SecurityOptions = Object.freeze({ restoreTimeoutExtraMs: 120_000, maxSnapshotsTried: 4 });

export function openCase(alert: RansomwareAlert, state: ControllerState, nowMs: number): SecurityCase {
  const infected = [...state.instances.values()].filter((instance) => instance.vm === alert.vm && instance.state !== 'stopped').map((instance) => instance.id);
  return {
    vm: alert.vm,
    phase: 'detected',
    alert,
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
  readonly options?: SecurityOptions;
}

/**
 * The next action of one incident, or none (waiting), and the case as it stands once that action
 * succeeds. Phases that need no action (a restore that failed its health check, a recovery seen
 * complete) are advanced here directly and returned with no action.
 */
export function securityStep(input: SecurityStepInput): { action: SecurityAction | null; next: SecurityCase } {
  const { securityCase, nowMs, model, state } = input;
  const options = input.options ?? DEFAULT_SECURITY_OPTIONS;
  const vm = securityCase.vm;
  switch (securityCase.phase) {
    case 'detected':
      return {
        action: {
          type: 'quarantineVm',
          vm,
          reason: `ransomware alert (score ${securityCase.alert.score.toFixed(2)}): cut ${vm} off every network but the forensic one; every other flow stays`,
        },
        next: { ...securityCase, phase: 'quarantined', quarantinedAtMs: nowMs },
      };
    case 'quarantined': {
      if (securityCase.triedSnapshots.length >= options.maxSnapshotsTried) {
        return { action: null, next: { ...securityCase, phase: 'unrecoverable', reason: `${options.maxSnapshotsTried} snapshots failed their health check` } };
      }
      const snapshot = lastCleanSnapshot(input.snapshots, securityCase.alert.anomalousWritesSinceMs, securityCase.triedSnapshots);
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
          reason: `newest snapshot taken before the anomalous writes began (${Math.round(securityCase.alert.anomalousWritesSinceMs / 1000)} s): restore it into the isolated recovery network`,
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
      const timedOut = nowMs - restore.startedAtMs > bootMs + options.restoreTimeoutExtraMs;
      if (observed === null || timedOut || (observed.state === 'running' && !observed.healthy && nowMs - restore.startedAtMs > bootMs + 30_000)) {
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
      if (!anyCopy && nowMs - (securityCase.promotedAtMs ?? nowMs) > 30_000) {
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
export function custodyKeys(securityCase: SecurityCase): string[] {
  if (securityCase.phase === 'recovered') return [];
  return [`start:${securityCase.vm}:primary`, `promote:${securityCase.vm}`, ...securityCase.infectedInstances.map((id) => `stop:${id}`)];
}
