/**
 * The invariant auditor: a reference check of DESIGN.md's safety invariants against the twin's
 * truth (what really runs), after every simulated step. It reads; it never steers.
 */
import type { Controller } from '../../control/controller.ts';
import type { Clock } from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import type { Twin } from '../../substrate/twin/twin.ts';
import { policyDiff, type SegmentationPolicy } from '../../model/segmentation.ts';
import type { OracleCheck, OracleJudgement } from './oracle-check.ts';

export interface Violation {
  readonly atMs: number;
  /** `over-shedding`: the controller kept less than the oracle's optimum, beyond its tolerance (oracle.ts). */
  readonly invariant: 'split-brain' | 'lost-vm' | 'immutable-snapshot' | 'quarantine' | 'over-shedding';
  readonly subject: string;
  readonly detail: string;
}

export class InvariantAuditor {
  readonly violations: Violation[] = [];
  private readonly unaccountedSinceMs = new Map<string, number>();
  private readonly reported = new Set<string>();
  /** Every snapshot ever listed, to check that none vanishes or changes before its retention ends. */
  private readonly seenSnapshots = new Map<string, { vm: string; digest: string; retainUntilMs: number }>();
  checks = 0;
  /** The controller's in-flight keys per VM, built once (checked after every simulated instant). */
  private readonly startKeys: readonly string[];
  private readonly promoteKeys: readonly string[];
  /** The last enforced policy checked for invariant 4 (checked again only when it changes). */
  private checkedPolicy: SegmentationPolicy | null = null;
  /** The optimum oracle, in storms: it judges every settled state (see attachOracle). */
  private oracle: OracleCheck | null = null;

  constructor(
    private readonly blueprint: Blueprint,
    private readonly twin: Twin,
    private readonly controller: Controller,
    private readonly clock: Clock,
    /** How long a VM may go unaccounted for: detection and fencing take time. */
    private readonly graceMs = 30_000,
  ) {
    this.startKeys = blueprint.vms.map((vm) => `start:${vm.name}:primary`);
    this.promoteKeys = blueprint.vms.map((vm) => `promote:${vm.name}`);
  }

  get splitBrain(): number {
    return new Set(this.violations.filter((violation) => violation.invariant === 'split-brain').map((violation) => violation.subject)).size;
  }

  get immutableViolations(): number {
    return this.violations.filter((violation) => violation.invariant === 'immutable-snapshot').length;
  }

  /** Invariant 3 for the given VMs (all by default): lists their snapshots and checks the ledger. */
  checkSnapshots(vms: readonly string[] = this.blueprint.vms.map((vm) => vm.name)): void {
    const now = this.clock.nowMs();
    for (const vm of vms) {
      const present = new Map(this.twin.listSnapshots(vm).map((snapshot) => [snapshot.id, snapshot]));
      for (const [id, seen] of this.seenSnapshots) {
        if (seen.vm !== vm || seen.retainUntilMs <= now) continue;
        const current = present.get(id);
        if (current === undefined || current.digest !== seen.digest) {
          const key = `snapshot:${id}`;
          if (this.reported.has(key)) continue;
          this.reported.add(key);
          this.violations.push({
            atMs: now,
            invariant: 'immutable-snapshot',
            subject: id,
            detail: current === undefined ? 'deleted before its retention ended' : 'changed before its retention ended',
          });
        }
      }
      for (const snapshot of present.values()) {
        if (snapshot.immutable && !this.seenSnapshots.has(snapshot.id)) {
          this.seenSnapshots.set(snapshot.id, { vm, digest: snapshot.digest, retainUntilMs: snapshot.retainUntilMs });
        }
      }
    }
  }

  get quarantineViolations(): number {
    return this.violations.filter((violation) => violation.invariant === 'quarantine').length;
  }

  /**
   * Invariant 4, against the policy the twin enforces: a quarantined VM reaches (and is reached
   * from) the forensic network only, and every other rule of the baseline is still there —
   * policyDiff(baseline, enforced) removes only rules of quarantined VMs and adds only their
   * forensic rules.
   */
  checkQuarantine(): void {
    const policy = this.twin.networkPolicy();
    const baseline = this.twin.baselinePolicy();
    if (policy === null || baseline === null || policy === this.checkedPolicy) return;
    this.checkedPolicy = policy;
    const quarantined = new Set(policy.quarantined);
    const forensic = new Set(policy.networks.filter((network) => network.kind === 'forensic').map((network) => network.name));
    const diff = policyDiff(baseline, policy);
    const problems: string[] = [];
    for (const rule of diff.removed) {
      if (!quarantined.has(rule.from) && !quarantined.has(rule.to)) problems.push(`${rule.from} → ${rule.to}:${rule.port} removed though neither end is quarantined`);
    }
    for (const rule of diff.added) {
      const ok = rule.origin === 'quarantine' && ((quarantined.has(rule.from) && forensic.has(rule.to)) || (quarantined.has(rule.to) && forensic.has(rule.from)));
      if (!ok) problems.push(`${rule.from} → ${rule.to}:${rule.port} added`);
    }
    for (const rule of policy.rules) {
      if (quarantined.has(rule.from) && !forensic.has(rule.to)) problems.push(`quarantined ${rule.from} reaches ${rule.to}`);
      if (quarantined.has(rule.to) && !forensic.has(rule.from)) problems.push(`quarantined ${rule.to} is reached from ${rule.from}`);
    }
    for (const problem of problems.slice(0, 10)) {
      this.violations.push({ atMs: this.clock.nowMs(), invariant: 'quarantine', subject: policy.quarantined.join(',') || 'policy', detail: problem });
    }
  }

  /**
   * Invariant 5 against an independent reference: at every settled point of check()'s calls, and
   * at checkOptimumNow(), what the controller keeps is compared with an exact optimum.
   */
  attachOracle(oracle: OracleCheck): void {
    this.oracle = oracle;
  }

  /** Judges the state as it is now (after the repairs, when the recovery has settled). */
  checkOptimumNow(): void {
    if (this.oracle !== null) this.recordJudgement(this.oracle.judge(this.clock.nowMs()));
  }

  private recordJudgement(judgement: OracleJudgement | null): void {
    if (judgement === null || judgement.shortfall === null) return;
    this.violations.push({ atMs: judgement.atMs, invariant: 'over-shedding', subject: 'capacity', detail: `the controller ${judgement.shortfall}` });
  }

  get lostVms(): number {
    return new Set(this.violations.filter((violation) => violation.invariant === 'lost-vm').map((violation) => violation.subject)).size;
  }

  /** `quietUntilMs`: when the next simulated event is due (null: none), for the oracle's settled points. */
  check(quietUntilMs: number | null = this.clock.nowMs()): void {
    this.checks++;
    const now = this.clock.nowMs();
    this.checkQuarantine();
    if (this.oracle !== null) this.recordJudgement(this.oracle.observe(now, quietUntilMs));
    const truth = this.twin.truth();
    for (const vm of truth.splitBrainVms) {
      const key = `split:${vm}`;
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      this.violations.push({ atMs: now, invariant: 'split-brain', subject: vm, detail: `${truth.activeCopies.get(vm)} copies could serve or write at once` });
    }
    // Invariant 2: every VM runs, is shed, or is being recovered, and the controller knows which.
    const state = this.controller.state;
    for (let index = 0; index < this.blueprint.vms.length; index++) {
      const vm = this.blueprint.vms[index]!;
      const view = state.vms.get(vm.name)!;
      const accounted =
        (truth.activeCopies.get(vm.name) ?? 0) > 0 ||
        view.pendingSinceMs !== null ||
        view.shedReason !== null ||
        view.waitReason !== null ||
        state.inFlight.has(this.startKeys[index]!) ||
        state.inFlight.has(this.promoteKeys[index]!);
      if (accounted) {
        this.unaccountedSinceMs.delete(vm.name);
        continue;
      }
      const since = this.unaccountedSinceMs.get(vm.name);
      if (since === undefined) this.unaccountedSinceMs.set(vm.name, now);
      else if (now - since > this.graceMs && !this.reported.has(`lost:${vm.name}`)) {
        this.reported.add(`lost:${vm.name}`);
        this.violations.push({
          atMs: now,
          invariant: 'lost-vm',
          subject: vm.name,
          detail: `no copy runs and the controller has not accounted for it for ${Math.round((now - since) / 1000)} s`,
        });
      }
    }
  }

  /** The liveness check after healing: every VM runs with a healthy primary, or is shed with a reason. */
  unconverged(): string[] {
    const healthy = this.twin.healthyPrimaries();
    return this.blueprint.vms
      .filter((vm) => !healthy.has(vm.name) && this.controller.state.vms.get(vm.name)!.shedReason === null)
      .map((vm) => vm.name);
  }
}
