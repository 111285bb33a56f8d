/**
 * The Substrate port: what the controller observes of hosts, VMs, datastores and snapshots, and the
 * fenced actions it asks for. The twin, the QEMU lab and the remote twin implement it. No I/O here.
 */
import type { SegmentationPolicy } from '../model/segmentation.ts';
export type HeartbeatChannel = 'management' | 'datastore';
export type InstanceRole = 'primary' | 'secondary';
export type InstanceState = 'booting' | 'running' | 'stopping' | 'stopped';

/**
 * Every mutating call carries a fencing token. `epoch` is the controller's leadership term; a
 * substrate refuses a token older than the newest it has seen, so a deposed controller's late
 * action is refused. `vmGeneration`, where given, must equal the VM's current generation (a
 * compare-and-set), so a stale decision about one VM is refused too.
 */
export interface FencingToken {
  readonly epoch: number;
  readonly vmGeneration?: number;
}

export interface HostObservation {
  readonly name: string;
  readonly poweredOn: boolean;
  /** The heartbeat channels as the substrate last heard them (so a restarted controller need not wait). */
  readonly heartbeats?: Readonly<Record<HeartbeatChannel, { readonly up: boolean; readonly lastSeenAtMs: number }>>;
}

export interface InstanceObservation {
  readonly id: string;
  readonly vm: string;
  readonly host: string;
  readonly role: InstanceRole;
  readonly state: InstanceState;
  readonly healthy: boolean;
  /** A secondary is ready to take over only once it is synchronised. */
  readonly synced: boolean;
  readonly datastore: string;
  /** How long its last health probe took to answer, where the substrate measures it (a slow host answers late). */
  readonly latencyMs?: number;
}

export interface SnapshotObservation {
  readonly id: string;
  readonly vm: string;
  readonly datastore: string;
  readonly takenAtMs: number;
  readonly retainUntilMs: number;
  readonly immutable: boolean;
  /** A digest of the snapshot's content: equal digests, equal content. */
  readonly digest: string;
}

/** CPU of one running copy at a moment: what it wanted, what it got, how long it waited. */
export interface VmMetrics {
  readonly vm: string;
  readonly instanceId: string;
  readonly host: string;
  readonly role: InstanceRole;
  readonly demandCores: number;
  readonly allocatedCores: number;
  /** CPU ready: share of the time it was ready to run but waited for a core, in percent. */
  readonly readyPercent: number;
  readonly shares: number;
}

export interface DatastoreObservation {
  readonly name: string;
  readonly up: boolean;
}

export interface SubstrateSnapshot {
  readonly atMs: number;
  readonly hosts: readonly HostObservation[];
  readonly instances: readonly InstanceObservation[];
  readonly datastores: readonly DatastoreObservation[];
  readonly vmGenerations: ReadonlyMap<string, number>;
}

/**
 * How a power fence through a fence agent (a `fence_*` program: fence_ipmilan, fence_redfish…)
 * went: the agent, the exit status of its last `off` (null: killed at its deadline, or it could not
 * run), whether a call timed out, how long the whole fence took, and every call in order
 * (`off exit 0 in 0.34 s`, `status exit 2 (off) in 0.21 s`).
 */
export interface FenceAgentOutcome {
  readonly name: string;
  readonly exitCode: number | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly calls: readonly string[];
}

export type SubstrateEvent =
  /**
   * `lastSeenAtMs` is on the reader's clock: when the substrate last saw the host's heartbeat
   * change, never a time the host stamped itself (its clock may be stepped; see liveness.ts).
   */
  | { readonly type: 'heartbeat.lost'; readonly host: string; readonly channel: HeartbeatChannel; readonly lastSeenAtMs: number; /** The host's own stamp on its last beat, for the record only. */ readonly hostStampAtMs?: number }
  | { readonly type: 'heartbeat.restored'; readonly host: string; readonly channel: HeartbeatChannel }
  | { readonly type: 'instance.changed'; readonly instance: InstanceObservation; readonly restorePointMs?: number }
  | { readonly type: 'instance.removed'; readonly id: string; readonly vm: string; readonly host: string }
  | { readonly type: 'host.power'; readonly host: string; readonly poweredOn: boolean }
  | { readonly type: 'fence.completed'; readonly host: string; readonly method: 'storage' | 'power'; readonly ok: boolean; readonly detail: string; readonly agent?: FenceAgentOutcome }
  | { readonly type: 'datastore.changed'; readonly datastore: string; readonly up: boolean }
  /**
   * A scheduled snapshot of `vm` was not taken: its datastore is full, or the snapshot failed.
   * `lastGoodAtMs` is the newest snapshot it has (null: none), what a restore would fall back to.
   */
  | { readonly type: 'snapshot.failed'; readonly vm: string; readonly datastore: string; readonly scheduledAtMs: number; readonly reason: string; readonly lastGoodAtMs: number | null };

export type ActionOutcome =
  | { readonly ok: true; readonly detail?: string; /** For a start: the newest write the disk it boots from holds. */ readonly restorePointMs?: number | null }
  | { readonly ok: false; readonly reason: string };

/**
 * What a substrate sees of one VM's behaviour over one sampling window (security telemetry):
 * the raw material of the detectors in src/detect. Rates are averages over the window.
 */
export interface VmSecuritySample {
  readonly vm: string;
  /** End of the window; the window is (atMs - windowMs, atMs]. */
  readonly atMs: number;
  readonly windowMs: number;
  readonly cpuPercent: number;
  readonly networkInKiBps: number;
  readonly networkOutKiBps: number;
  /** Connections opened from or to the VM in the window (allowed by the policy). */
  readonly newFlows: number;
  /** Connection attempts from the VM that the policy denied, and to whom. */
  readonly deniedFlows: number;
  readonly deniedDestinations: readonly string[];
  readonly diskWriteKiBps: number;
  /** Shannon entropy of the written bytes, in bits per byte divided by 8 (0–1; encrypted ≈ 1). */
  readonly writeEntropy: number;
  /** Blocks changed since the last snapshot, per second (rewrites of the same block count once). */
  readonly snapshotChangeKiBps: number;
  /** Snapshot deletions of this VM's snapshots the substrate refused in the window (immutability). */
  readonly snapshotDeletionsRefused: number;
  /**
   * File-level activity in the window, when the substrate can see it (the twin models it; a real
   * substrate maps changed blocks — a dirty bitmap read over NBD, or the difference of two
   * snapshots — to files, or runs a guest agent). Absent: the detectors fall back to the rates above.
   */
  readonly files?: VmFileActivity;
}

/**
 * What changed at the level of files in one window: counts of distinct files, never their names or
 * contents (a substrate reports what it can and zero for what it cannot see).
 */
export interface VmFileActivity {
  /** Files whose content changed. */
  readonly modified: number;
  readonly created: number;
  readonly renamed: number;
  readonly deleted: number;
  /** Files whose type changed: their leading bytes (magic number) no longer match what they held before. */
  readonly magicChanged: number;
  /** Files read and then overwritten in place (or rewritten under a new name with the original removed). */
  readonly overwrittenAfterRead: number;
  /** Modified files that had not been modified within the substrate's tracked horizon (outside the VM's working set). */
  readonly firstTimeModified: number;
  /**
   * Of those first-modified files, the ones whose content was replaced — overwritten after being
   * read, or retyped — counted per file (both on the same file, not merely in the same window):
   * what encryption and wiping do to a file tree, file after file.
   */
  readonly firstTimeReplaced: number;
  /** Decoy files planted on the VM that were modified, renamed or deleted (reads do not count): no legitimate process writes them. */
  readonly canariesTouched: number;
  /** Bytes written into files, KiB (the rate and entropy above cover the whole disk). */
  readonly writtenKiB: number;
}

/** Restores a snapshot into a new copy; `recovery` boots it on an isolated network, with a cloned disk. */
export interface RestoreRequest {
  readonly token: FencingToken;
  readonly vm: string;
  readonly snapshotId: string;
  readonly host: string;
  readonly network: 'recovery' | 'production';
}

export interface RestoreObservation {
  readonly id: string;
  readonly vm: string;
  readonly snapshotId: string;
  readonly host: string;
  readonly network: 'recovery' | 'production';
  readonly state: InstanceState;
  /** Its health check, run on the recovery network. */
  readonly healthy: boolean;
  /** What the restored disk holds: writes up to the snapshot. */
  readonly restorePointMs: number;
}

/** Simulated substrates answer at once; real ones over a network answer later. The controller takes both. */
export type MaybePromise<T> = T | Promise<T>;

export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as Promise<T> | null)?.then === 'function';
}

export interface StartRequest {
  readonly token: FencingToken;
  readonly vm: string;
  readonly host: string;
  readonly role: InstanceRole;
  /** Where the VM's disk is read from: its home datastore, or the replica in another room. */
  readonly datastore: string;
}

/** What every back end offers (DESIGN.md, "The Substrate port"). */
export interface Substrate {
  readonly name: string;
  snapshot(): MaybePromise<SubstrateSnapshot>;
  /** A new controller announces its term; from then on older epochs are refused. */
  claimEpoch(token: FencingToken): MaybePromise<ActionOutcome>;
  subscribe(listener: (event: SubstrateEvent) => void): () => void;
  startVm(request: StartRequest): MaybePromise<ActionOutcome>;
  stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): MaybePromise<ActionOutcome>;
  promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): MaybePromise<ActionOutcome>;
  fenceHost(request: { token: FencingToken; host: string }): MaybePromise<ActionOutcome>;
  powerOnHost(request: { token: FencingToken; host: string }): MaybePromise<ActionOutcome>;
  /** Snapshots of a VM's disk, oldest first. */
  listSnapshots(vm: string): MaybePromise<readonly SnapshotObservation[]>;
  /** CPU demand, allocation and ready time of every running copy, now. */
  metrics(): MaybePromise<readonly VmMetrics[]>;
  /** Moves a running copy to another host without stopping it (live migration). */
  migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): MaybePromise<ActionOutcome>;
  /** Sets a copy's CPU shares (its weight when CPU is contended). */
  setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): MaybePromise<ActionOutcome>;
  /**
   * Deletes a snapshot. An immutable snapshot is refused until its retention ends, whoever asks,
   * Tomaranai included (invariant 3): the substrate itself enforces it.
   */
  deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): MaybePromise<ActionOutcome>;

  // ── Security (cyber-resilience). Optional: a substrate without them runs no security loop. ──
  /** Enforces a segmentation policy (default deny) on every VM's virtual NIC; denied attempts are counted per VM pair. */
  applyNetworkPolicy?(request: { token: FencingToken; policy: SegmentationPolicy }): MaybePromise<ActionOutcome>;
  /** Quarantines a VM at the network layer: it reaches, and is reached from, the forensic network only. */
  quarantineVm?(request: { token: FencingToken; vm: string }): MaybePromise<ActionOutcome>;
  releaseVm?(request: { token: FencingToken; vm: string }): MaybePromise<ActionOutcome>;
  /** One security sample per running production VM, for the window that ends now. */
  securityTelemetry?(): MaybePromise<readonly VmSecuritySample[]>;
  /** Boots a copy of a VM from one of its snapshots; `detail` of the outcome is the restore's id. */
  restoreSnapshot?(request: RestoreRequest): MaybePromise<ActionOutcome>;
  restoreStatus?(restoreId: string): MaybePromise<RestoreObservation | null>;
  /**
   * Puts a verified restored copy into service: every production copy of the VM is stopped first
   * (never two running copies), then the restored copy takes the VM's place on the production
   * network and datastore.
   */
  promoteRestored?(request: { token: FencingToken; vm: string; restoreId: string }): MaybePromise<ActionOutcome>;
}
