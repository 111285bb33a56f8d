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

/** The attacker's ways of destroying data (issue 15): each changes what the telemetry shows. */
export const ATTACK_VARIANTS = ['full', 'intermittent', 'partial', 'low-entropy', 'entropy-matched', 'slow', 'wiper', 'exfiltrate'] as const;
export type AttackVariant = (typeof ATTACK_VARIANTS)[number];

/** How one attack writes: drawn by the attacker per run, applied by the twin file by file. */
export interface AttackProfile {
  readonly variant: AttackVariant;
  /** Files it works through per second while active. */
  readonly filesPerS: number;
  /** Share of each file's bytes it overwrites (partial encryption: a few per cent). */
  readonly fileFraction: number;
  /** Entropy (0–1, bits per byte / 8) of what it writes; null: the VM's own write entropy (entropy-matched). */
  readonly outputEntropy: number | null;
  /** Intermittent: active for onMs, then idle for a span drawn in [offMinMs, offMaxMs]; null: continuous. */
  readonly onMs: number | null;
  readonly offMinMs: number;
  readonly offMaxMs: number;
  /** Appends its own extension to every file it encrypts. */
  readonly renames: boolean;
  /** Leaves the first bytes (the file's magic number) intact. */
  readonly keepsHeader: boolean;
  /** Reads each file before overwriting it (encryption does; a wiper does not). */
  readonly readsFirst: boolean;
  /** Deletes each file after overwriting it (a wiper). */
  readonly deletes: boolean;
  /** Seeds the intermittent idle spans. */
  readonly cycleSeed: number;
}

export interface Encryption {
  readonly vm: string;
  readonly instanceId: string;
  readonly fromMs: number;
  untilMs: number | null;
  /** KiB per second written while active. */
  readonly rateKiBps: number;
  readonly profile: AttackProfile;
}

/** Files read and sent out before the encryption (exfiltration): reads and outbound traffic, no writes. */
export interface Exfiltration {
  readonly vm: string;
  readonly fromMs: number;
  readonly untilMs: number;
  readonly kibps: number;
}

/** What a VM's file tree and its legitimate file activity look like (drawn once per VM from the seed). */
export interface VmFileBaseline {
  readonly files: number;
  readonly meanFileKiB: number;
  /** Legitimate activity, files per minute. */
  readonly modifiedPerMin: number;
  readonly createdPerMin: number;
  readonly renamedPerMin: number;
  readonly deletedPerMin: number;
  readonly overwritePerMin: number;
  readonly firstTimePerMin: number;
  readonly magicPerDay: number;
  /** Decoy files, as positions in the order an attacker walking the tree reaches them (sorted). */
  readonly canaries: readonly number[];
  /** Scheduled jobs: [start offset in their period, duration] in ms; null: the VM has none. */
  readonly logRotation: { readonly atMs: number; readonly files: number };
  readonly backup: { readonly atMs: number; readonly durationMs: number; readonly localDump: boolean; readonly outFactor: number };
  readonly batch: { readonly atMs: number; readonly durationMs: number; readonly filesPerMin: number } | null;
  readonly dbMaintenance: { readonly atMs: number; readonly durationMs: number; readonly writeFactor: number } | null;
  readonly update: { readonly atMs: number; readonly durationMs: number; readonly files: number; readonly magicChanged: number } | null;
  readonly cleanup: { readonly atMs: number; readonly durationMs: number; readonly files: number } | null;
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
  readonly exfiltrations: Exfiltration[];
  readonly fileBaselines: Map<string, VmFileBaseline>;
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
    exfiltrations: [],
    fileBaselines: new Map(),
    encryptedSinceMs: new Map(),
    deletionsRefused: [],
    restores: new Map(),
    restoreSeq: 0,
    promotions: [],
  };
}
