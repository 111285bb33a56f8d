/**
 * The twin's security model as data: the enforced network policy and quarantines, each VM's
 * behaviour drawn from the seed, and what the attacker did (flows, encryptions, refused snapshot
 * deletions, restores). It exists only once a policy is applied, so other drills pay nothing for
 * it; security.ts, telemetry.ts, restore.ts and truth.ts act on it.
 */
import type { InstanceState, TimerHandle } from '../../ports/index.ts';
import type { SegmentationPolicy } from '../../model/segmentation.ts';

/** Per-VM behaviour the security telemetry is generated from (drawn once per VM from the seed). */
export interface VmBaseline {
  readonly networkKiBps: number;
  readonly flowsPerWindow: number;
  readonly writeKiBps: number;
  readonly entropy: number;
  /** Share of written blocks that had not changed since the last snapshot (hot blocks are rewritten). */
  readonly freshBlockShare: number;
  /** A misconfigured destination this VM keeps trying (denied by the policy), or none. */
  readonly habitualDenied: { readonly destination: string; readonly meanGapMs: number } | null;
}

export interface Encryption {
  readonly vm: string;
  readonly instanceId: string;
  readonly fromMs: number;
  untilMs: number | null;
  readonly rateKiBps: number;
}

export interface FlowEvent {
  readonly atMs: number;
  readonly denied: boolean;
  readonly destination: string;
  readonly outbound: boolean;
}

export interface RecoveryCopy {
  readonly id: string;
  readonly vm: string;
  readonly snapshotId: string;
  readonly restorePointMs: number;
  readonly host: string;
  readonly network: 'recovery' | 'production';
  state: InstanceState;
  timer: TimerHandle | null;
}

export interface SnapshotDeletionRefusal {
  readonly atMs: number;
  readonly vm: string;
  readonly actor: string;
  readonly snapshotId: string;
}

export interface SecurityModel {
  policy: SegmentationPolicy;
  baseline: SegmentationPolicy;
  readonly quarantined: Set<string>;
  readonly quarantinedAtMs: Map<string, number>;
  readonly windowMs: number;
  lastTelemetryAtMs: number | null;
  readonly noiseSeed: number;
  readonly baselines: Map<string, VmBaseline>;
  readonly flows: Map<string, FlowEvent[]>;
  readonly deniedByPair: Map<string, number>;
  readonly encryptions: Encryption[];
  readonly encryptedSinceMs: Map<string, number>;
  readonly deletionsRefused: SnapshotDeletionRefusal[];
  readonly restores: Map<string, RecoveryCopy>;
  restoreSeq: number;
  /** Restored copies put into service: which snapshot, when. */
  readonly promotions: { atMs: number; vm: string; snapshotId: string; restorePointMs: number }[];
}

/** The model as the first policy is applied: nothing quarantined by the attacker, nothing observed yet. */
export function newSecurityModel(policy: SegmentationPolicy, noiseSeed: number): SecurityModel {
  return {
    policy,
    baseline: policy,
    quarantined: new Set(policy.quarantined),
    quarantinedAtMs: new Map(),
    windowMs: 10_000,
    lastTelemetryAtMs: null,
    noiseSeed,
    baselines: new Map(),
    flows: new Map(),
    deniedByPair: new Map(),
    encryptions: [],
    encryptedSinceMs: new Map(),
    deletionsRefused: [],
    restores: new Map(),
    restoreSeq: 0,
    promotions: [],
  };
}
