/**
 * Every action the controller's loops take, and what carrying one out means: which substrate call,
 * with which fencing token (the epoch alone, or with the VM's generation too), which work-queue key
 * it holds and for how long, what a refusal does to the VM's generation, and how its outcome is
 * journaled. The executor (executor.ts) applies these rules the same way for every loop.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import type { SegmentationPolicy } from '../model/segmentation.ts';
import type { ActionOutcome, FencingToken, MaybePromise, Substrate } from '../ports/index.ts';
import { actionKey, type Action } from './actions.ts';
import type { RebalanceAction } from './rebalance.ts';
import type { SecurityAction } from './security.ts';
import type { ControllerTimings } from './timings.ts';
import type { WorkKey } from './work-queue.ts';

/** What the controller itself starts: its term, a host's power after repair, the segmentation. */
export type LifecycleAction =
  | { readonly type: 'claimEpoch'; readonly actor: string }
  | { readonly type: 'powerOnHost'; readonly host: string; readonly actor: string }
  | { readonly type: 'applyNetworkPolicy'; readonly name: string; readonly policy: SegmentationPolicy };

export type ControlAction = Action | RebalanceAction | SecurityAction | LifecycleAction;

/** After a refusal: roll the generation back, re-read it from the substrate, or re-read it only when the refusal names it. */
export type GenerationRepair = 'rollback' | 'reread' | 'reread-if-named';

export interface Operation {
  readonly subject: string;
  /** The journal's actor when it is not the controller's (an operator's request). */
  readonly actor: string | null;
  /** The VM whose generation the token carries and advances; null: the epoch alone. */
  readonly vm: string | null;
  /**
   * The work-queue entry held while the call is in flight: the key, how long it may take, whether
   * a call waits while the key is busy, and what a refusal does (a backoff, or free the key).
   */
  readonly work: { readonly key: WorkKey; readonly timeoutMs: number; readonly exclusive: boolean; readonly onRefusal: 'backoff' | 'release' } | null;
  readonly repair: GenerationRepair;
  call(substrate: Substrate, token: FencingToken): MaybePromise<ActionOutcome>;
  /** The journal entry's data, field order included (the journal is hashed). */
  journal(outcome: ActionOutcome, token: FencingToken, epoch: number): Record<string, unknown>;
}

const verdict = (outcome: ActionOutcome) => ({ ok: outcome.ok, ...(outcome.ok ? {} : { refused: outcome.reason }) });
const unsupported = (what: string): ActionOutcome => ({ ok: false, reason: `the substrate cannot ${what}` });

export function operationOf(action: ControlAction, context: { readonly model: CapacityModel; readonly timings: ControllerTimings }): Operation {
  switch (action.type) {
    case 'fenceHost':
    case 'startVm':
    case 'stopVm':
    case 'promoteSecondary':
      return recoveryOperation(action, context);
    case 'setCpuShares':
      return {
        subject: action.vm,
        actor: null,
        vm: null,
        work: null,
        repair: 'rollback',
        call: (substrate, token) => substrate.setCpuShares({ token, vm: action.vm, instanceId: action.instanceId, shares: action.shares }),
        journal: (outcome, _token, epoch) => ({ instance: action.instanceId, shares: action.shares, reason: action.reason, epoch, ...verdict(outcome) }),
      };
    case 'migrateVm':
      return {
        subject: action.vm,
        actor: null,
        vm: action.vm,
        work: { key: `migrate:${action.vm}`, timeoutMs: context.timings.migrationTimeoutMs, exclusive: false, onRefusal: 'release' },
        repair: 'rollback',
        call: (substrate, token) => substrate.migrateVm({ token, vm: action.vm, instanceId: action.instanceId, toHost: action.toHost }),
        journal: (outcome, token, epoch) => ({
          instance: action.instanceId,
          from: action.fromHost,
          to: action.toHost,
          reason: action.reason,
          epoch,
          generation: token.vmGeneration,
          ok: outcome.ok,
          ...(outcome.ok ? (outcome.detail === undefined ? {} : { detail: outcome.detail }) : { refused: outcome.reason }),
        }),
      };
    case 'quarantineVm':
    case 'releaseVm':
    case 'restoreSnapshot':
    case 'promoteRestored':
      return securityOperation(action);
    case 'claimEpoch':
    case 'powerOnHost':
    case 'applyNetworkPolicy':
      return lifecycleOperation(action);
  }
}

function recoveryOperation(action: Action, context: { readonly model: CapacityModel; readonly timings: ControllerTimings }): Operation {
  const { timings } = context;
  const vm = action.type === 'fenceHost' ? null : action.vm;
  const work = (timeoutMs: number) => ({ key: actionKey(action), timeoutMs, exclusive: true, onRefusal: 'backoff' as const });
  const base = { subject: action.type === 'fenceHost' ? action.host : action.vm, actor: null, vm, repair: 'reread-if-named' as const };
  const journal = (extra: Record<string, unknown>) => (outcome: ActionOutcome, token: FencingToken, epoch: number) => ({
    ...extra,
    ...(action.type === 'startVm' && outcome.ok ? { restorePointMs: outcome.restorePointMs ?? null } : {}),
    reason: action.reason,
    epoch,
    ...(vm === null ? {} : { generation: token.vmGeneration }),
    ...verdict(outcome),
  });
  switch (action.type) {
    case 'fenceHost':
      return { ...base, work: work(timings.fenceTimeoutMs), call: (substrate, token) => substrate.fenceHost({ token, host: action.host }), journal: journal({}) };
    case 'startVm':
      return {
        ...base,
        work: work(context.model.vm(action.vm).bootTimeS * 2000 + timings.startTimeoutExtraMs),
        call: (substrate, token) => substrate.startVm({ token, vm: action.vm, host: action.host, role: action.role, datastore: action.datastore }),
        journal: journal({
          host: action.host,
          role: action.role,
          datastore: action.datastore,
          coldRestart: action.coldRestart,
          ...(action.withoutDependencies === undefined ? {} : { withoutDependencies: action.withoutDependencies }),
        }),
      };
    case 'stopVm':
      return {
        ...base,
        work: work(timings.stopTimeoutMs),
        call: (substrate, token) => substrate.stopVm({ token, vm: action.vm, host: action.host, instanceId: action.instanceId }),
        journal: journal({ host: action.host, instance: action.instanceId, shed: action.shed }),
      };
    case 'promoteSecondary':
      return {
        ...base,
        work: work(timings.promoteTimeoutMs),
        call: (substrate, token) => substrate.promoteSecondary({ token, vm: action.vm, instanceId: action.instanceId }),
        journal: journal({ host: action.host, instance: action.instanceId }),
      };
  }
}

function securityOperation(action: SecurityAction): Operation {
  const vm = action.vm;
  const call = (substrate: Substrate, token: FencingToken): MaybePromise<ActionOutcome> => {
    switch (action.type) {
      case 'quarantineVm':
        return substrate.quarantineVm?.({ token, vm }) ?? unsupported('quarantine a VM');
      case 'releaseVm':
        return substrate.releaseVm?.({ token, vm }) ?? unsupported('release a VM');
      case 'restoreSnapshot':
        return substrate.restoreSnapshot?.({ token, vm, snapshotId: action.snapshotId, host: action.host, network: 'recovery' }) ?? unsupported('restore a snapshot');
      case 'promoteRestored':
        return substrate.promoteRestored?.({ token, vm, restoreId: action.restoreId }) ?? unsupported('promote a restored copy');
    }
  };
  const promotes = action.type === 'promoteRestored';
  return {
    subject: vm,
    actor: null,
    vm: promotes ? vm : null,
    work: null,
    repair: 'reread',
    call,
    journal: (outcome, token, epoch) => {
      const { type, vm: _subject, ...fields } = action;
      return {
        ...fields,
        ...(type === 'restoreSnapshot' && outcome.ok ? { restore: outcome.detail ?? null, network: 'recovery' } : {}),
        ...(type === 'promoteRestored' && outcome.ok && typeof outcome.restorePointMs === 'number' ? { restorePointMs: outcome.restorePointMs } : {}),
        ...(promotes ? { generation: token.vmGeneration } : {}),
        epoch,
        ...verdict(outcome),
      };
    },
  };
}

function lifecycleOperation(action: LifecycleAction): Operation {
  const base = { vm: null, work: null, repair: 'rollback' as const };
  switch (action.type) {
    case 'claimEpoch':
      return { ...base, subject: action.actor, actor: null, call: (substrate, token) => substrate.claimEpoch(token), journal: (outcome, _token, epoch) => ({ epoch, ...verdict(outcome) }) };
    case 'powerOnHost':
      return {
        ...base,
        subject: action.host,
        actor: action.actor,
        call: (substrate, token) => substrate.powerOnHost({ token, host: action.host }),
        journal: (outcome) => ({ actor: action.actor, ok: outcome.ok, ...(outcome.ok ? {} : { reason: outcome.reason }) }),
      };
    case 'applyNetworkPolicy': {
      const { policy } = action;
      return {
        ...base,
        subject: action.name,
        actor: null,
        call: (substrate, token) => substrate.applyNetworkPolicy?.({ token, policy }) ?? unsupported('apply a network policy'),
        journal: (outcome) => ({ rules: policy.totals.rules, vmPairsAllowed: policy.totals.vmPairsAllowed, defaultAction: policy.defaultAction, ...verdict(outcome) }),
      };
    }
  }
}
