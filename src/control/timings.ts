/**
 * The controller's timings: every deadline, grace period and bound of the control loops, in one
 * frozen record, so a drill or an operator can tune them in one place and nothing hides a literal.
 */

export interface ControllerTimings {
  /** Both heartbeat channels silent this long ⇒ failed; one channel ⇒ isolated or storage-lost. */
  readonly detectionTimeoutMs: number;
  /** A VM waits at most this long for its dependencies before it starts anyway. */
  readonly dependencyWaitMaxMs: number;
  /**
   * A running instance that fails its health check this long on a healthy host is restarted: the
   * time it failed within the last healthWindowMs counts, so an intermittent failure (55 s failing,
   * 1 s passing) is caught as surely as a steady one.
   */
  readonly unhealthyGraceMs: number;
  readonly healthWindowMs: number;
  /**
   * Gray failure: a host whose heartbeats are fine but whose copies keep failing. Over the last
   * grayWindowMs, a copy counts as failing when it failed its health check at least grayFailingShare
   * of the time it ran, or answered slower than grayLatencyMs; a host is degraded when at least
   * grayMinCopies of its copies, and grayFailingShare of them, fail while the other hosts' copies
   * mostly do not (a shared cause — a datastore, the network — is not the host's).
   */
  readonly grayWindowMs: number;
  readonly grayMinCopies: number;
  readonly grayFailingShare: number;
  readonly grayLatencyMs: number;
  /** Above this share of failing copies on the other hosts, the cause is shared: no host is degraded. */
  readonly grayEstateShareMax: number;
  /** A degraded host takes nothing for this long, doubled each time it is degraded again (hysteresis)... */
  readonly grayProbationMs: number;
  /** ...up to this. */
  readonly grayProbationMaxMs: number;
  /** A VM restarted for its health this many times on one host is restarted elsewhere. */
  readonly crashLoopMoveAfter: number;
  /** From the second health restart in a row, it waits this long, doubled each time... */
  readonly crashLoopBackoffBaseMs: number;
  /** ...up to this. */
  readonly crashLoopBackoffMaxMs: number;
  /** Health restarts further apart than this are not a loop: the count starts again. */
  readonly crashLoopResetMs: number;
  /**
   * An isolated host (management silent, datastore heartbeat alive) keeps its VMs while they still
   * serve; once one of its primaries has failed its health check this long, the isolation has cut
   * the service too, and the host is fenced so its VMs can restart elsewhere (the isolation response).
   */
  readonly isolationResponseMs: number;
  readonly fenceTimeoutMs: number;
  readonly stopTimeoutMs: number;
  readonly promoteTimeoutMs: number;
  /** Added to twice the boot time before a start is given up and retried. */
  readonly startTimeoutExtraMs: number;
  /** Bound on actions per pass, so one pass never floods the substrate. */
  readonly maxActionsPerPass: number;
  /** Events arriving within this window are handled by one pass. */
  readonly passBatchMs: number;
  /** How long room claimed for a waiting VM is held for it. */
  readonly reservationMs: number;
  /** A refused action is retried after this, doubled with every refusal in a row... */
  readonly refusalBackoffBaseMs: number;
  /** ...up to this. */
  readonly refusalBackoffMaxMs: number;
  /** A live migration not seen to complete in this long is given up (its key freed). */
  readonly migrationTimeoutMs: number;
  /** How often the rebalancer looks at CPU demand (when it is enabled). */
  readonly rebalanceIntervalMs: number;
  /** How often the security loop reads the substrate's security telemetry. */
  readonly securityIntervalMs: number;
  /** How often an open security case is stepped (snapshots listed, the restore checked). */
  readonly securityCaseStepMs: number;
  /**
   * How long a security case holds its VM away from decide() (no restart from the encrypted disk,
   * no stop of the quarantined copy). Renewed by every pass: it bounds only a controller that
   * stops passing.
   */
  readonly custodyMs: number;
  /** Added to its boot time: a restored copy not healthy by then is given up for an older snapshot. */
  readonly restoreTimeoutExtraMs: number;
  /** Added to its boot time: a restored copy that runs but still fails its health check is given up. */
  readonly restoredUnhealthyGraceMs: number;
  /** After a promotion, no copy running for this long hands the VM to the ordinary restart. */
  readonly cutoverGraceMs: number;
}

export const DEFAULT_TIMINGS: ControllerTimings = Object.freeze({
  detectionTimeoutMs: 2_000,
  dependencyWaitMaxMs: 120_000,
  unhealthyGraceMs: 60_000,
  healthWindowMs: 120_000,
  grayWindowMs: 30_000,
  grayMinCopies: 2,
  grayFailingShare: 0.5,
  grayLatencyMs: 1_000,
  grayEstateShareMax: 0.2,
  grayProbationMs: 900_000,
  grayProbationMaxMs: 4 * 3_600_000,
  crashLoopMoveAfter: 2,
  crashLoopBackoffBaseMs: 10_000,
  crashLoopBackoffMaxMs: 300_000,
  crashLoopResetMs: 600_000,
  isolationResponseMs: 1_000,
  fenceTimeoutMs: 15_000,
  stopTimeoutMs: 15_000,
  promoteTimeoutMs: 5_000,
  startTimeoutExtraMs: 60_000,
  maxActionsPerPass: 256,
  passBatchMs: 50,
  reservationMs: 600_000,
  refusalBackoffBaseMs: 1_000,
  refusalBackoffMaxMs: 30_000,
  migrationTimeoutMs: 60_000,
  rebalanceIntervalMs: 60_000,
  securityIntervalMs: 10_000,
  securityCaseStepMs: 1_000,
  custodyMs: 3_600_000,
  restoreTimeoutExtraMs: 120_000,
  restoredUnhealthyGraceMs: 30_000,
  cutoverGraceMs: 30_000,
});
