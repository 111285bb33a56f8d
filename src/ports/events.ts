/**
 * The journal's events, typed: for each event type, the shape of its `data`. Writers (the
 * controller, the drills, the service) journal through `JournalRecord`, and readers (the drill
 * report, the service's journal views, the live CLI, the dashboard's timeline) narrow an entry with
 * `isEvent(entry, 'vm.shed')` instead of string-matching a type and reading untyped fields.
 *
 * The journal is ours and hash-chained, so a stored entry of a type has that type's shape; a field
 * marked optional is one some writers leave out. An event type a writer invents without adding it
 * here still journals (the store is generic), but no reader can narrow it: add it here first.
 */
import type { JournalEntry, JournalKind, JournalRecord } from './journal.ts';
import type { FenceAgentOutcome } from './substrate.ts';

/** Every fenced action journals what it asked for, under which token, and how it ended. */
type ActionOutcomeData = {
  readonly reason: string;
  readonly epoch: number;
  readonly ok: boolean;
  /** Why the substrate refused it (ok false). */
  readonly refused?: string;
};

type VmActionData = ActionOutcomeData & {
  readonly generation: number;
};

export interface JournalEvents {
  // Faults and their repair (drills and storms: the ground truth).
  'fault.injected': { readonly kind: string; readonly target?: string; readonly rateKiBps?: number; readonly started?: boolean; readonly scripted?: boolean };
  'fault.repaired': { readonly kind: string; readonly target?: string; readonly scripted?: boolean };

  // What the controller observed of the substrate.
  /** `lastSeenAtMs` on the reader's clock; `hostStampAtMs`, the host's own stamp, only when they differ (a stepped clock). */
  'heartbeat.lost': { readonly channel: string; readonly lastSeenAtMs: number; readonly hostStampAtMs?: number };
  'heartbeat.restored': { readonly channel: string };
  'host.power': { readonly poweredOn: boolean };
  'datastore.changed': { readonly up: boolean };
  'vm.instance': { readonly instance: string; readonly host: string; readonly role: string; readonly state: string; readonly healthy: boolean; readonly synced: boolean };
  'vm.removed': { readonly instance: string; readonly host: string };
  'security.snapshot-deletion-refused': { readonly count: number; readonly reason: string };
  /**
   * A scheduled snapshot was not taken (subject: the VM). `rpoAtRiskS` is what a restore would lose
   * now: the age of the newest snapshot (null: it has none), against the tier's `rpoTargetS`.
   */
  'snapshot.failed': {
    readonly datastore: string;
    readonly reason: string;
    readonly scheduledAtMs: number;
    readonly lastGoodAtMs: number | null;
    readonly rpoAtRiskS: number | null;
    readonly snapshotIntervalS: number;
    readonly rpoTargetS: number;
    /** The first failure of a run of them (later ones are journaled, not alerted again). */
    readonly first: boolean;
  };

  // The controller's decisions.
  'controller.started': { readonly epoch: number; readonly hosts: number; readonly instances: number };
  'controller.restored': { readonly fromEntries: number; readonly shedVms: number };
  /** `from` is null for a host's first status (at start or after a restart). */
  'host.status': { readonly from: string | null; readonly to: string; readonly reason: string };
  'host.held': { readonly actor: string; readonly reason: string };
  /** A gray failure (gray-failure.ts): heartbeats fine, copies failing; the evidence the verdict rests on. */
  'host.degraded': {
    readonly windowS: number;
    readonly copies: number;
    readonly failing: readonly { readonly vm: string; readonly role: string; readonly unhealthyShare: number; readonly latencyMs: number | null }[];
    readonly failingShare: number;
    readonly estateFailingShare: number;
    readonly probationS: number;
    readonly episodes: number;
    readonly cpuReadyPercentMax: number | null;
    readonly reason: string;
  };
  'host.trusted': { readonly degradedForS: number; readonly copies: number; readonly reason: string };
  'vm.crash-loop': { readonly restarts: number; readonly host: string; readonly backoffS: number; readonly avoiding: readonly string[]; readonly reason: string };
  'controller.paused': { readonly reason: string };
  /** Copies fail across the estate at once (a shared cause): none is restarted for its health until it ends. */
  'health.shared-failure': { readonly active: boolean; readonly reason: string };
  'controller.resumed': { readonly pausedForMs: number; readonly eventsQueued: number };
  'host.released': { readonly actor: string };
  'host.evacuation.stuck': { readonly actor: string; readonly vms: readonly string[]; readonly reason: string };
  'recovery.planned': { readonly unavailable: readonly string[]; readonly running: number; readonly shed: readonly string[]; readonly notPlaced: readonly string[] };
  'vm.waiting': { readonly reason: string };
  'vm.shed': { readonly reason: string; readonly tier: string };
  'vm.unshed': { readonly reason: string; readonly tier: string };
  'vm.cold-restart': { readonly reason: string; readonly effectiveTier: string };
  'action.timed-out': { readonly issuedAtMs: number };
  'restore.started': { readonly snapshotId: string; readonly reason: string; readonly requestedBy: string };
  'security.unsupported': { readonly substrate: string; readonly reason: string };
  'security.alert': {
    readonly detector: string;
    readonly score: number;
    readonly z: Readonly<Record<string, number>>;
    readonly anomalousWritesSinceMs: number;
    readonly estimatedIntrusionAtMs: number;
    readonly evidence: readonly { readonly atMs: number; readonly kind: string; readonly detail: string }[];
    readonly evidenceCount: number;
    /** The rule it rests on (canary, files, entropy) and the file evidence (log-likelihood ratios), when the substrate reports files. */
    readonly rule?: string;
    readonly files?: { readonly joint: number; readonly canariesTouched: number } | null;
  };
  'security.recovered': { readonly restorePointMs: number | null; readonly snapshotId: string | null; readonly alertAtMs: number; readonly reason: string };
  'security.unrecoverable': { readonly reason: string; readonly remains: string };
  'security.restore-rejected': { readonly restore: string | null; readonly snapshotId: string | null; readonly reason: string };
  /**
   * A metric of a VM out of its learned range, below the alert (or beside it): journaled so an
   * investigation sees it, at most once per VM and metric per quiet period; `suppressed` counts
   * the ones folded into this entry since the last.
   */
  'security.anomaly': { readonly metric: string; readonly value: number; readonly score: number; readonly suppressed: number };

  // The fenced actions (kind 'action'), named after the Substrate port's methods.
  claimEpoch: { readonly epoch: number; readonly ok: boolean };
  fenceHost: ActionOutcomeData;
  powerOnHost: { readonly actor: string; readonly ok: boolean; readonly reason?: string };
  startVm: VmActionData & {
    readonly host: string;
    readonly role: string;
    readonly datastore: string;
    readonly coldRestart: boolean;
    readonly restorePointMs?: number;
    /** Dependencies it started without: they would not come (shed, quarantined, unrecoverable) or did not in time. */
    readonly withoutDependencies?: readonly { readonly service: string; readonly reason: string }[];
  };
  stopVm: VmActionData & { readonly host: string; readonly instance: string; readonly shed: boolean };
  promoteSecondary: VmActionData & { readonly host: string; readonly instance: string };
  migrateVm: { readonly instance: string; readonly from: string; readonly to: string; readonly reason: string; readonly epoch: number; readonly generation?: number; readonly ok: boolean; readonly detail?: string; readonly refused?: string };
  setCpuShares: { readonly instance: string; readonly shares: number; readonly reason: string; readonly epoch: number; readonly ok: boolean; readonly refused?: string };
  applyNetworkPolicy: { readonly rules: number; readonly vmPairsAllowed: number; readonly defaultAction: string; readonly ok: boolean };
  quarantineVm: ActionOutcomeData;
  releaseVm: ActionOutcomeData;
  restoreSnapshot: ActionOutcomeData & { readonly snapshotId: string; readonly restorePointMs: number; readonly host: string; readonly restore: string; readonly network: string };
  promoteRestored: VmActionData & { readonly restoreId: string; readonly restorePointMs: number };
  /** agent: present when the power method went through a fence agent (its name, exit status, time). */
  'fence.completed': { readonly method: string; readonly ok: boolean; readonly detail: string; readonly agent?: FenceAgentOutcome };
  'snapshot.delete': { readonly ok: boolean; readonly refused?: string };

  // Operators' actions through the service (kind 'action' or 'audit').
  'vm.restart': { readonly reason: string; readonly host: string; readonly instance: string; readonly epoch: number; readonly ok: boolean; readonly refused?: string };
  'vm.quarantined': { readonly reason: string; readonly enforced: boolean; readonly detail?: string };
  'vm.released': { readonly reason: string; readonly enforced: boolean; readonly detail?: string };
  'host.evacuate': { readonly epoch: number; readonly ok: boolean; readonly migrating: readonly string[]; readonly stuck: readonly string[] };
  'snapshot.restore.started': { readonly id: string; readonly snapshotId: string; readonly ok: boolean; readonly refused?: string };

  // The service's audit trail (kind 'audit'): who changed what through the API or the CLI.
  'api.request': { readonly method: string; readonly status: number; readonly requestId: string };
  'user.added': { readonly role: string; readonly replaced?: boolean; readonly sessionsRevoked?: number; readonly address?: string };
  'token.created': { readonly tokenId: string; readonly name: string; readonly expiresAtMs: number | null; readonly address: string };
  /** A failed login (subject: the user name tried); wall time, so a restarted service can count it again. */
  /** method: how the password was checked (absent in entries written before directory login). */
  'login.failed': { readonly address: string; readonly wallAtMs: number; readonly reason: string; readonly method?: 'local' | 'ldap' | 'oidc' };
  'login.succeeded': { readonly address: string; readonly tokenId: string; readonly method?: 'local' | 'ldap' | 'oidc'; readonly role?: string };
  'token.revoked': { readonly tokenId: string; readonly name: string; readonly address: string };
  'tokens.revoked': { readonly count: number; readonly reason: string; readonly address: string };
  'user.password-changed': { readonly by: 'self' | 'admin' | 'cli'; readonly sessionsRevoked: number; readonly reason?: string; readonly address: string };
  'user.disabled': { readonly reason: string; readonly address: string };
  'user.enabled': { readonly reason: string; readonly address: string };
  'user.deleted': { readonly reason: string; readonly address: string };
  'blueprint.applied': { readonly version: number; readonly reason: string; readonly diff: unknown; readonly source: string };
  'snapshot.restore.requested': { readonly id: string; readonly snapshotId: string; readonly reason: string; readonly approved: boolean };
  /** A disruptive request the budget refused, held for another person's approval; breaks: what it would break. */
  'disruption.approval.requested': { readonly id: string; readonly kind: 'restart'; readonly reason: string; readonly breaks: string };
  'disruption.approval.decided': { readonly id: string; readonly approved: boolean; readonly reason: string };
  'snapshot.restore.decided': { readonly id: string; readonly approved: boolean; readonly reason: string };
  'maintenance-window.opened': { readonly id: string; readonly fromMs: number; readonly toMs: number; readonly reason: string };
  'host.maintenance.started': { readonly reason: string };
  'host.maintenance.ended': { readonly reason: string };

  // Notifications (kind 'audit'): every delivery attempt to a receiver (src/notify). `sourceSeq` is
  // the journal entry the alert came from: the highest one sent or given up is the receiver's cursor.
  'notify.sent': { readonly receiver: string; readonly key: string; readonly alert: string; readonly sourceSeq: number; readonly attempt: number; readonly durationMs: number; readonly detail: string };
  'notify.failed': { readonly receiver: string; readonly key: string; readonly alert: string; readonly sourceSeq: number; readonly attempt: number; readonly durationMs: number; readonly error: string; readonly retryInMs: number | null };
  'notify.cursor': { readonly receiver: string; readonly seq: number; readonly reason: string };
  'notify.dropped': { readonly receiver: string; readonly key: string; readonly alert: string; readonly sourceSeq: number; readonly reason: string };

  // Drills: the run's frame, the attacker's moves (ground truth), and the real drill's probes.
  /** The twin's drills carry their seed; the lab's its accelerator and controller epoch. */
  'drill.started': { readonly blueprint: string; readonly substrate: string; readonly seed?: number; readonly accelerator?: string; readonly epoch?: number };
  'drill.warm': { readonly vms: number; readonly afterMs?: number };
  /** The twin's drills list what did not converge; the lab's count VMs seen with two writable copies. */
  'drill.ended': { readonly unconverged?: readonly string[]; readonly splitBrain?: number };
  'scenario.planned': { readonly description: string; readonly steps: number };
  'drill.requested': { readonly id: string; readonly seed: number; readonly substrate: string };
  'drill.finished': { readonly id: string; readonly seed: number; readonly summary: Readonly<Record<string, number>>; readonly invariants: Readonly<Record<string, number>> };
  'drill.failed': { readonly id: string; readonly seed: number; readonly error: string };
  'attack.intrusion': { readonly entry: string; readonly via: string };
  'attack.foothold': { readonly from: string; readonly port: number; readonly via: string };
  'attack.session': { readonly from: string; readonly allowed: boolean };
  'attack.scan': { readonly attempted: number; readonly reached: readonly string[]; readonly denied: number };
  'attack.snapshot-delete': { readonly attempted: number; readonly refused: number; readonly deleted: number };
  'attack.exfiltration': { readonly kibps: number; readonly durationS: number; readonly started: boolean };
  /** Ground truth of the attack's variant (issue 15), journaled by the drill at the first malicious write. */
  'attack.variant': {
    readonly variant: string;
    readonly firstMaliciousWriteMs: number;
    readonly filesPerS: number;
    readonly fileFraction: number;
    readonly outputEntropy: number | 'matched';
    readonly onS: number | null;
    readonly offS: readonly number[] | null;
    readonly renames: boolean;
    readonly keepsHeader: boolean;
    readonly readsFirst: boolean;
    readonly deletes: boolean;
  };
  'security.truth': {
    readonly vm: string;
    readonly encryptedSinceMs: number | null;
    readonly quarantinedAtMs: number | null;
    readonly attackerWrittenBeforeQuarantineKiB: number;
    readonly attackerWrittenKiB: number;
    readonly restoredAtMs: number | null;
    readonly restorePointMs: number | null;
    readonly restoredFromCleanSnapshot: boolean | null;
    readonly legitimateWritesLostKiB: number | null;
    readonly compromisedAtMs: number;
    /** Files the attack reached before the VM was quarantined, and the decoy files among them. */
    readonly filesTouched?: number;
    readonly canariesTouched?: number;
  };
  'security.denied-flows': { readonly pairs: number; readonly attempts: number; readonly top: readonly { readonly pair: string; readonly count: number }[] };
  'policy.applied': { readonly ok: boolean; readonly detail?: string; readonly refused?: string };
  'probe.started': { readonly intervalMs: number; readonly writeIntervalMs: number };
  /** sameRun: the run of the guest that went silent answers again (it kept running: no restart). */
  'probe.up': { readonly downForMs: number; readonly seq: number; readonly sameRun?: boolean };
  /** A silence of a guest that kept running (same run after, a QEMU holding its disk throughout): no answer, not an outage. */
  'probe.no-answer': { readonly fromMs: number; readonly toMs: number; readonly run: string | null };
  'probe.down': { readonly lastAckedSeq: number | null; readonly sinceMs: number | null };
  'probe.copies': { readonly writable: number; readonly standby: number; readonly pids: readonly number[] };
  /** lostFrom: how the acknowledged writes lost were counted (the disk's records by run, or the console). */
  'probe.outage': { readonly downAtMs: number; readonly upAtMs: number | null; readonly ackedBefore: number; readonly resumedAfter: number | null; readonly writesLost?: number | null; readonly writeIntervalMs: number; readonly lostFrom?: 'disk' | 'console'; readonly runs?: readonly { readonly boot: string; readonly firstSeq: number; readonly maxSeq: number }[] };
  'probe.unknown-loss': { readonly primary: string | null; readonly host: string | null; readonly consoleTail: readonly string[] };
  /**
   * The lab's ransomware drill, measured outside the controller: when the encryptor was started
   * (its first write follows), when the controller alerted, quarantined and cut over, the snapshot
   * restored, the writes acknowledged before it and how many of those the VM's disk lost, and its
   * documents after the recovery and on the infected disk kept as evidence.
   */
  'drill.ransomware': {
    readonly variant: string;
    readonly attackAtMs: number;
    readonly alertAtMs: number | null;
    readonly quarantinedAtMs: number | null;
    readonly recoveredAtMs: number | null;
    readonly snapshotId: string | null;
    readonly restorePointMs: number | null;
    readonly ackedBeforeRestorePoint: number | null;
    readonly ackedWritesLostBeforeRestorePoint: number | null;
    readonly writesAfterRestorePoint: number | null;
    readonly documents: { readonly files: number; readonly clean: number; readonly encrypted: number; readonly unreadable: number } | null;
    readonly evidenceDocuments: { readonly files: number; readonly clean: number; readonly encrypted: number; readonly unreadable: number } | null;
    readonly snapshotsTaken: number;
  };
  'drill.check': {
    readonly finalCopiesPerVm: Readonly<Record<string, { readonly writable: number; readonly standby: number }>>;
    readonly finalAnswers: Readonly<Record<string, boolean>>;
    readonly finalSeq: Readonly<Record<string, number>>;
  };
}

export type JournalEventType = keyof JournalEvents;

/** A journal entry whose type is `T`, with that type's data. */
export type EventEntry<T extends JournalEventType> = JournalEntry & { readonly type: T; readonly data: JournalEvents[T] };

/** A record to journal whose type is `T`, with that type's data. */
export type EventRecord<T extends JournalEventType> = JournalRecord & { readonly type: T; readonly kind: JournalKind; readonly data: JournalEvents[T] };

/** Narrows an entry to an event type: `if (isEvent(entry, 'vm.shed')) entry.data.reason`. */
export function isEvent<T extends JournalEventType>(entry: JournalEntry, type: T): entry is EventEntry<T> {
  return entry.type === type;
}

/** The entries of one event type, in journal order. */
export function eventsOf<T extends JournalEventType>(entries: readonly JournalEntry[], type: T): EventEntry<T>[] {
  return entries.filter((entry): entry is EventEntry<T> => entry.type === type);
}

/** Any journal event, discriminated by `type`: `switch (asEvent(entry).type)` narrows `data` in each case. */
export type JournalEvent = { [T in JournalEventType]: EventEntry<T> }[JournalEventType];

/**
 * An entry as the union of events, for a `switch` over its type. An entry of a type this file does
 * not know matches no case (it falls to `default`), so the assertion cannot mislead a reader.
 */
export function asEvent(entry: JournalEntry): JournalEvent {
  return entry as JournalEvent;
}
