/**
 * The control plane the API serves: one blueprint, a substrate, a clock, the journal and, while
 * this instance leads, the controller. Reads come from the journal view (the same on leader and
 * followers) and the controller's live state; every change is checked first, then journaled with
 * its actor, then carried out. A follower answers reads and refuses changes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Controller } from '../control/controller.ts';
import type { ControllerTimings } from '../control/decide.ts';
import type { ActionOutcome, Clock, InstanceObservation, JournalEntry, JournalEvents, JournalEventType, JournalRecord, Substrate, SubstrateSnapshot } from '../ports/index.ts';
import { isEvent, isPromise, type EventEntry } from '../ports/index.ts';
import { runDrill } from '../drill/sim/run.ts';
import { findScenario, SCENARIOS } from '../drill/sim/scenarios.ts';
import type { JournalStore } from '../journal/store.ts';
import { loadBlueprint, type Blueprint, type Problem } from '../model/index.ts';
import type { DrillReport } from '../report/drill-report.ts';
import { apiError, ApiError, TomaranaiError } from '../errors/index.ts';
import { JournalView, type DisruptionApproval, type IncidentView } from './journal-view.ts';
import { diffBlueprints, type BlueprintDiff } from './blueprint-diff.ts';
import { BlueprintLoader, type BlueprintBudget } from './blueprint-loader.ts';
import { APPROVAL_TTL_MS, checkDisruption, DisruptionRateLimiter } from './disruption.ts';
import { planOf, type PlanView } from './plan-view.ts';

export interface ControlPlaneOptions {
  readonly blueprint: Blueprint;
  readonly blueprintSource: string;
  readonly substrate: Substrate;
  readonly clock: Clock;
  readonly journal: JournalStore;
  readonly actor?: string;
  readonly timings?: Partial<ControllerTimings>;
  /** How drills are run (tests may shorten them); the default runs `runDrill` on a fresh twin. */
  readonly drillRunner?: (options: { blueprint: Blueprint; scenario: string; seed: number }) => DrillReport;
  /** How long a substrate snapshot read by a follower is reused (wall ms). */
  readonly snapshotCacheMs?: number;
  /** Time and memory one candidate blueprint may cost to read and validate (in a worker thread). */
  readonly blueprintBudget?: BlueprintBudget;
}

export interface VmStatus {
  readonly name: string;
  readonly state: 'running' | 'starting' | 'pending' | 'shed' | 'quarantined' | 'stopped';
  readonly host: string | null;
  readonly healthy: boolean;
  readonly secondary: { readonly host: string; readonly synced: boolean } | null;
  readonly waitReason: string | null;
  readonly shedReason: string | null;
}

export interface ServiceStatus {
  readonly name: string;
  readonly title: string;
  readonly tier: string;
  readonly vendor: string;
  readonly state: 'up' | 'degraded' | 'down';
  readonly lastRtoS: number | null;
  readonly vms: readonly VmStatus[];
}

export interface HostStatusView {
  readonly name: string;
  readonly room: string;
  readonly rack: string;
  readonly status: string;
  readonly poweredOn: boolean | null;
  readonly maintenance: { readonly reason: string; readonly actor: string } | null;
  readonly vms: readonly string[];
}

export interface DrillRecord {
  readonly id: string;
  readonly scenario: string;
  readonly seed: number;
  readonly actor: string;
  status: 'running' | 'finished' | 'failed';
  report: DrillReport | null;
  error: string | null;
}

const DRILLS_KEPT = 20;

export class ControlPlane {
  blueprint: Blueprint;
  blueprintSource: string;
  blueprintVersion = 1;
  view: JournalView;
  readonly substrate: Substrate;
  readonly clock: Clock;
  readonly journal: JournalStore;
  controller: Controller | null = null;
  epoch = 0;
  leaderId: string | null = null;
  private readonly actor: string;
  private readonly timings: Partial<ControllerTimings> | undefined;
  private readonly drills = new Map<string, DrillRecord>();
  private readonly drillRunner: NonNullable<ControlPlaneOptions['drillRunner']>;
  private cachedSnapshot: { atWallMs: number; snapshot: SubstrateSnapshot } | null = null;
  private readonly snapshotCacheMs: number;
  private readonly loader: BlueprintLoader;
  private readonly disruptions = new DisruptionRateLimiter();
  private detachView: (() => void) | null = null;

  constructor(options: ControlPlaneOptions) {
    this.blueprint = options.blueprint;
    this.blueprintSource = options.blueprintSource;
    this.substrate = options.substrate;
    this.clock = options.clock;
    this.journal = options.journal;
    this.actor = options.actor ?? 'controller';
    this.timings = options.timings;
    this.snapshotCacheMs = options.snapshotCacheMs ?? 250;
    this.loader = new BlueprintLoader(options.blueprintBudget);
    this.drillRunner = options.drillRunner ?? ((drill) => runDrill(drill).report);
    this.view = new JournalView(this.blueprint);
    this.adoptJournalBlueprint();
    for (const entry of this.journal.entries()) this.view.fold(entry);
    this.detachView = this.journal.onAppend((entry) => this.onEntry(entry));
  }

  /** The newest blueprint the journal says was applied wins over the one given at start. */
  private adoptJournalBlueprint(): void {
    let latest: EventEntry<'blueprint.applied'> | null = null;
    for (const entry of this.journal.entries()) if (isEvent(entry, 'blueprint.applied')) latest = entry;
    if (latest === null) return;
    const source = latest.data.source;
    const loaded = loadBlueprint(source);
    if (!loaded.ok) return;
    this.blueprint = loaded.blueprint;
    this.blueprintSource = source;
    this.blueprintVersion = latest.data.version;
  }

  private onEntry(entry: JournalEntry): void {
    if (isEvent(entry, 'blueprint.applied')) {
      // A follower takes the blueprint the leader applied.
      const loaded = loadBlueprint(entry.data.source);
      if (loaded.ok && entry.data.version > this.blueprintVersion) {
        this.blueprint = loaded.blueprint;
        this.blueprintSource = entry.data.source;
        this.blueprintVersion = entry.data.version;
      }
    }
    this.view.fold(entry);
  }

  get leading(): boolean {
    return this.controller !== null;
  }

  /** Becomes the leader of term `epoch`: a controller starts level-triggered from the substrate. */
  async lead(epoch: number, leaderId: string): Promise<void> {
    if (this.controller !== null) return;
    this.epoch = epoch;
    this.leaderId = leaderId;
    const controller = new Controller({
      blueprint: this.blueprint,
      substrate: this.substrate,
      clock: this.clock,
      journal: this.journal,
      epoch,
      actor: this.actor,
      ...(this.timings ? { timings: this.timings } : {}),
      // Where the substrate can enforce network policy, the live hospital runs segmented, with the
      // security loop watching it (and quarantine then means something at the network layer).
      security: typeof this.substrate.applyNetworkPolicy === 'function',
    });
    this.controller = controller;
    await controller.start();
  }

  /** Stops acting (deposed, or shutting down); reads go on from the journal. */
  stepDown(): void {
    this.controller?.stop();
    this.controller = null;
  }

  close(): void {
    this.stepDown();
    void this.loader.close();
    this.detachView?.();
    this.detachView = null;
  }

  private requireLeader(): Controller {
    if (this.controller === null) throw apiError('TMR_API_NOT_LEADER', undefined, this.leaderId ? `send it to the leader ${this.leaderId}` : undefined);
    return this.controller;
  }

  record<T extends JournalEventType>(kind: JournalRecord['kind'], type: T, subject: string, actor: string, data: JournalEvents[T]): JournalEntry {
    return this.journal.append({ atMs: this.clock.nowMs(), kind, type, subject, actor, data });
  }

  // ── Blueprint ──────────────────────────────────────────────────────────────────────────────

  blueprintInfo(): { name: string; version: number; sha256: string; services: number; vms: number; hosts: number; source: string } {
    return {
      name: this.blueprint.name,
      version: this.blueprintVersion,
      sha256: createHash('sha256').update(this.blueprintSource).digest('hex'),
      services: this.blueprint.services.length,
      vms: this.blueprint.vms.length,
      hosts: this.blueprint.hosts.length,
      source: this.blueprintSource,
    };
  }

  /** Validates, diffs and plans a candidate without changing anything. */
  async reviewBlueprint(source: string): Promise<{ blueprint: Blueprint; diff: BlueprintDiff; plan: PlanView; warnings: readonly Problem[] }> {
    // Read and validated off the event loop, within a time and memory budget (blueprint-loader.ts).
    const loaded = await this.loader.load(source);
    if (!loaded.ok) {
      throw new ApiError(
        'TMR_API_BLUEPRINT_INVALID',
        `the blueprint has ${loaded.problems.length} problem(s); nothing was changed`,
        undefined,
        loaded.problems.map((problem) => ({ path: `${problem.line}:${problem.col} ${problem.path.join('.')}`, code: problem.code, message: `${problem.message} (${problem.hint})` })),
      );
    }
    return { blueprint: loaded.blueprint, diff: diffBlueprints(this.blueprint, loaded.blueprint), plan: planOf(loaded.blueprint), warnings: loaded.warnings };
  }

  /** Applies a reviewed blueprint: the controller restarts on it, level-triggered, in the same term. */
  async applyBlueprint(source: string, baseVersion: number, actor: string, reason: string): Promise<{ version: number; diff: BlueprintDiff; plan: PlanView }> {
    const controller = this.requireLeader();
    const review = await this.reviewBlueprint(source);
    if (baseVersion !== this.blueprintVersion) {
      throw apiError('TMR_API_BLUEPRINT_STALE', `you reviewed version ${baseVersion}; version ${this.blueprintVersion} runs now`);
    }
    if (review.plan.unplaced.length > 0) {
      throw apiError('TMR_API_CONFLICT', `the new blueprint leaves ${review.plan.unplaced.length} VM(s) without a host (${review.plan.unplaced.slice(0, 5).map((item) => item.vm).join(', ')})`, 'add hosts or shrink the VMs, then review again');
    }
    const version = this.blueprintVersion + 1;
    this.record('audit', 'blueprint.applied', review.blueprint.name, actor, { version, reason, diff: review.diff, source });
    controller.stop();
    this.controller = null;
    this.blueprint = review.blueprint;
    this.blueprintSource = source;
    this.blueprintVersion = version;
    await this.lead(this.epoch, this.leaderId ?? 'self');
    return { version, diff: review.diff, plan: review.plan };
  }

  plan(): PlanView {
    return planOf(this.blueprint);
  }

  // ── Services and hosts ─────────────────────────────────────────────────────────────────────

  private async instances(): Promise<readonly InstanceObservation[]> {
    if (this.controller !== null) return [...this.controller.state.instances.values()];
    const now = performance.now();
    if (this.cachedSnapshot !== null && now - this.cachedSnapshot.atWallMs < this.snapshotCacheMs) return this.cachedSnapshot.snapshot.instances;
    const answer = this.substrate.snapshot();
    const snapshot = isPromise(answer) ? await answer : answer;
    this.cachedSnapshot = { atWallMs: now, snapshot };
    return snapshot.instances;
  }

  async services(): Promise<ServiceStatus[]> {
    const instances = await this.instances();
    const byVm = new Map<string, InstanceObservation[]>();
    for (const instance of instances) {
      const list = byVm.get(instance.vm) ?? [];
      list.push(instance);
      byVm.set(instance.vm, list);
    }
    return this.blueprint.services.map((service) => {
      const vms = service.vms.map((vm) => this.vmStatus(vm.name, byVm.get(vm.name) ?? []));
      const running = vms.filter((vm) => vm.state === 'running' && vm.healthy).length;
      const lastRtoMs = this.view.lastRtoMs.get(service.name);
      return {
        name: service.name,
        title: service.title,
        tier: service.tier,
        vendor: service.vendor,
        state: running === vms.length ? 'up' : running === 0 ? 'down' : 'degraded',
        lastRtoS: lastRtoMs === undefined ? null : lastRtoMs / 1000,
        vms,
      };
    });
  }

  private vmStatus(name: string, instances: readonly InstanceObservation[]): VmStatus {
    const primary = instances.find((instance) => instance.role === 'primary' && instance.state !== 'stopped');
    const secondary = instances.find((instance) => instance.role === 'secondary' && instance.state !== 'stopped');
    const controllerView = this.controller?.state.vms.get(name);
    const shedReason = controllerView?.shedReason ?? this.view.shedReason.get(name) ?? null;
    let state: VmStatus['state'];
    if (this.view.quarantined.has(name)) state = 'quarantined';
    else if (primary?.state === 'running') state = 'running';
    else if (primary?.state === 'booting') state = 'starting';
    else if (shedReason !== null) state = 'shed';
    else if (primary === undefined) state = 'pending';
    else state = 'stopped';
    return {
      name,
      state,
      host: primary?.host ?? null,
      healthy: primary?.healthy ?? false,
      secondary: secondary ? { host: secondary.host, synced: secondary.synced } : null,
      waitReason: controllerView?.waitReason ?? null,
      shedReason,
    };
  }

  async hosts(): Promise<HostStatusView[]> {
    const instances = await this.instances();
    return this.blueprint.hosts.map((host) => {
      const status = this.controller?.state.hostStatus.get(host.name) ?? this.view.hostStatus.get(host.name) ?? 'unknown';
      const maintenance = this.view.maintenance.get(host.name);
      return {
        name: host.name,
        room: host.room,
        rack: host.rack,
        status,
        poweredOn: this.controller?.state.hosts.get(host.name)?.poweredOn ?? null,
        maintenance: maintenance ? { reason: maintenance.reason, actor: maintenance.actor } : null,
        vms: instances.filter((instance) => instance.host === host.name && instance.state !== 'stopped').map((instance) => instance.vm),
      };
    });
  }

  serviceOfVm(vm: string): string | null {
    return this.blueprint.vms.find((candidate) => candidate.name === vm)?.service ?? null;
  }

  vendorOfService(service: string): string | null {
    return this.blueprint.services.find((candidate) => candidate.name === service)?.vendor ?? null;
  }

  // ── Incidents ──────────────────────────────────────────────────────────────────────────────

  incidents(): readonly IncidentView[] {
    return this.view.incidents;
  }

  incident(id: string): { incident: IncidentView; timeline: JournalEntry[] } {
    const incident = this.view.incidents.find((candidate) => candidate.id === id);
    if (incident === undefined) throw apiError('TMR_API_NOT_FOUND', `no incident ${id}`);
    const wanted = new Set(incident.timeline);
    const first = incident.timeline[0] ?? 1;
    const timeline: JournalEntry[] = [];
    for (const entry of this.journal.entries(first)) {
      if (wanted.has(entry.seq)) timeline.push(entry);
      if (timeline.length === wanted.size) break;
    }
    return { incident, timeline };
  }

  // ── Drills ─────────────────────────────────────────────────────────────────────────────────

  startDrill(scenario: string, seed: number, actor: string): DrillRecord {
    this.requireLeader();
    if (findScenario(scenario) === undefined) {
      throw apiError('TMR_API_NOT_FOUND', `unknown scenario "${scenario}"`, `use one of: ${SCENARIOS.map((item) => item.name).join(', ')}`);
    }
    if ([...this.drills.values()].some((drill) => drill.status === 'running')) throw apiError('TMR_API_DRILL_RUNNING');
    const id = `drill-${randomUUID()}`;
    const record: DrillRecord = { id, scenario, seed, actor, status: 'running', report: null, error: null };
    this.drills.set(id, record);
    while (this.drills.size > DRILLS_KEPT) this.drills.delete(this.drills.keys().next().value!);
    this.record('drill', 'drill.requested', scenario, actor, { id, seed, substrate: 'twin' });
    const blueprint = this.blueprint;
    // A drill runs on its own simulated twin, never on the live substrate; it is CPU work, so it
    // runs after this request has been answered.
    setImmediate(() => {
      try {
        record.report = this.drillRunner({ blueprint, scenario, seed });
        record.status = 'finished';
        this.record('drill', 'drill.finished', scenario, actor, { id, seed, summary: record.report.summary, invariants: record.report.invariants });
      } catch (error) {
        record.status = 'failed';
        record.error = error instanceof Error ? error.message : String(error);
        this.record('drill', 'drill.failed', scenario, actor, { id, seed, error: record.error });
      }
    });
    return record;
  }

  drill(id: string): DrillRecord {
    const drill = this.drills.get(id);
    if (drill === undefined) throw apiError('TMR_API_NOT_FOUND', `no drill ${id}`, 'drills are kept in memory; the last 20 are listed by GET /api/v1/drills');
    return drill;
  }

  listDrills(): DrillRecord[] {
    return [...this.drills.values()];
  }

  // ── Snapshots ──────────────────────────────────────────────────────────────────────────────

  private requireVm(vm: string): void {
    if (this.serviceOfVm(vm) === null) throw apiError('TMR_API_NOT_FOUND', `no VM ${vm} in blueprint ${this.blueprint.name}`);
  }

  async snapshots(vm: string) {
    this.requireVm(vm);
    const answer = this.substrate.listSnapshots(vm);
    return isPromise(answer) ? await answer : answer;
  }

  /**
   * Asks for a VM to be restored from one of its snapshots. An operator's request is approved at
   * once and carried out; a vendor's waits for another person's approval. Carrying it out is the
   * controller's clean-restore: quarantine, boot the snapshot in the recovery network, check, cut over.
   */
  async requestRestore(vm: string, snapshotId: string, reason: string, actor: string, approved: boolean) {
    this.requireLeader();
    const list = await this.snapshots(vm);
    const snapshot = list.find((candidate) => candidate.id === snapshotId);
    if (snapshot === undefined) throw apiError('TMR_API_NOT_FOUND', `no snapshot ${snapshotId} of ${vm}`);
    const id = `restore-${randomUUID()}`;
    this.record('audit', 'snapshot.restore.requested', vm, actor, { id, snapshotId, reason, approved });
    if (approved) this.carryOutRestore(id, vm, snapshot, actor, reason);
    return this.view.restores.get(id)!;
  }

  async decideRestore(id: string, approve: boolean, actor: string, reason: string) {
    this.requireLeader();
    const request = this.view.restores.get(id);
    if (request === undefined) throw apiError('TMR_API_NOT_FOUND', `no restore request ${id}`);
    if (request.status !== 'awaiting-approval') throw apiError('TMR_API_CONFLICT', `restore ${id} is already ${request.status}`);
    if (request.requestedBy === actor) throw apiError('TMR_API_CONFLICT', 'a restore is approved by someone other than who asked for it', 'ask another operator or an admin to approve it');
    this.record('audit', 'snapshot.restore.decided', request.vm, actor, { id, approved: approve, reason });
    if (approve) {
      const snapshot = (await this.snapshots(request.vm)).find((candidate) => candidate.id === request.snapshotId);
      if (snapshot !== undefined) this.carryOutRestore(id, request.vm, snapshot, actor, reason);
    }
    return request;
  }

  private carryOutRestore(id: string, vm: string, snapshot: { readonly id: string; readonly takenAtMs: number }, actor: string, reason: string): void {
    const controller = this.requireLeader();
    const outcome = controller.restoreVmFromSnapshot(vm, snapshot, actor, reason);
    this.record('action', 'snapshot.restore.started', vm, actor, { id, snapshotId: snapshot.id, ok: outcome.ok, ...(outcome.ok ? {} : { refused: outcome.reason }) });
  }

  restores() {
    return [...this.view.restores.values()];
  }

  // ── Quarantine ─────────────────────────────────────────────────────────────────────────────

  /** Isolates the VM at the network layer (only the forensic network), through the substrate. */
  async quarantine(vm: string, reason: string, actor: string): Promise<void> {
    this.requireLeader();
    this.requireVm(vm);
    if (this.view.quarantined.has(vm)) throw apiError('TMR_API_CONFLICT', `${vm} is already quarantined`);
    const outcome = await this.enforce(this.substrate.quarantineVm?.bind(this.substrate), vm);
    this.record('action', 'vm.quarantined', vm, actor, { reason, enforced: outcome.enforced, ...(outcome.detail ? { detail: outcome.detail } : {}) });
  }

  async release(vm: string, reason: string, actor: string): Promise<void> {
    this.requireLeader();
    this.requireVm(vm);
    if (!this.view.quarantined.has(vm)) throw apiError('TMR_API_CONFLICT', `${vm} is not quarantined`);
    const outcome = await this.enforce(this.substrate.releaseVm?.bind(this.substrate), vm);
    this.record('action', 'vm.released', vm, actor, { reason, enforced: outcome.enforced, ...(outcome.detail ? { detail: outcome.detail } : {}) });
  }

  /**
   * Applies a network change through the substrate when it offers one; a substrate that cannot
   * enforce network policy gets the decision journaled only (and says so: enforced false).
   */
  private async enforce(
    operation: ((request: { token: { epoch: number }; vm: string }) => ActionOutcome | Promise<ActionOutcome>) | undefined,
    vm: string,
  ): Promise<{ enforced: boolean; detail?: string }> {
    if (operation === undefined) return { enforced: false, detail: 'this substrate cannot enforce network policy' };
    const answer = operation({ token: { epoch: this.epoch }, vm });
    const outcome = isPromise(answer) ? await answer : answer;
    if (!outcome.ok) throw apiError('TMR_API_SUBSTRATE_REFUSED', outcome.reason);
    return { enforced: true, ...(outcome.detail ? { detail: outcome.detail } : {}) };
  }

  // ── VM restart (vendors' and operators') ───────────────────────────────────────────────────

  /**
   * Stops the VM's primary; the controller, level-triggered, starts it again. A restart the
   * disruption budget refuses may instead be held for another person's approval (askApproval):
   * the answer is then the approval request, naming what the restart would break.
   */
  async restartVm(vm: string, reason: string, actor: string, vendor: string | null = null, askApproval = false): Promise<{ approval: DisruptionApproval | null }> {
    const controller = this.requireLeader();
    this.requireVm(vm);
    // The disruption budget: no restart that leaves a continuous service unprotected or a critical one further down.
    try {
      checkDisruption({ kind: 'restart', vm, vendor, nowMs: this.clock.nowMs() }, this.blueprint, controller.state, this.view.windows.values());
    } catch (error) {
      if (!askApproval || !(error instanceof TomaranaiError) || error.code !== 'TMR_API_DISRUPTION') throw error;
      const id = `approval-${randomUUID()}`;
      this.record('audit', 'disruption.approval.requested', vm, actor, { id, kind: 'restart', reason, breaks: error.message });
      return { approval: this.approvalView(this.view.approvals.get(id)!) };
    }
    await this.stopPrimary(vm, reason, actor, null);
    return { approval: null };
  }

  private async stopPrimary(vm: string, reason: string, actor: string, approval: DisruptionApproval | null): Promise<void> {
    const controller = this.requireLeader();
    const primary = [...controller.state.instances.values()].find((instance) => instance.vm === vm && instance.role === 'primary' && instance.state === 'running');
    if (primary === undefined) throw apiError('TMR_API_CONFLICT', `${vm} has no running primary to restart`);
    this.disruptions.take(actor, Date.now());
    const answer = this.substrate.stopVm({ token: { epoch: this.epoch }, vm, host: primary.host, instanceId: primary.id });
    const outcome = isPromise(answer) ? await answer : answer;
    const approved = approval === null ? {} : { approval: approval.id, requestedBy: approval.requestedBy };
    this.record('action', 'vm.restart', vm, actor, { reason, host: primary.host, instance: primary.id, epoch: this.epoch, ok: outcome.ok, ...approved, ...(outcome.ok ? {} : { refused: outcome.reason }) });
    if (!outcome.ok) throw apiError('TMR_API_SUBSTRATE_REFUSED', outcome.reason);
  }

  /** Approval requests with their status; one not decided within APPROVAL_TTL_MS has expired. */
  approvals(): DisruptionApproval[] {
    return [...this.view.approvals.values()].map((approval) => this.approvalView(approval));
  }

  private approvalView(approval: DisruptionApproval): DisruptionApproval & { expiresAtMs: number; expired: boolean } {
    const expiresAtMs = approval.requestedAtMs + APPROVAL_TTL_MS;
    return { ...approval, expiresAtMs, expired: approval.status === 'awaiting-approval' && this.clock.nowMs() > expiresAtMs };
  }

  /**
   * Approves (carries out) or rejects a held restart: by someone other than who asked, within
   * APPROVAL_TTL_MS. The approver accepts what the request said it would break, and only that: if
   * the budget now refuses it for another reason, the approval is refused and the request stays.
   */
  async decideApproval(id: string, approve: boolean, actor: string, reason: string) {
    const controller = this.requireLeader();
    const held = this.view.approvals.get(id);
    if (held === undefined) throw apiError('TMR_API_NOT_FOUND', `no approval request ${id}`);
    const approval = this.approvalView(held);
    if (approval.status !== 'awaiting-approval') throw apiError('TMR_API_CONFLICT', `approval ${id} is already ${approval.status}`);
    if (approval.expired) throw apiError('TMR_API_CONFLICT', `approval ${id} expired at ${new Date(approval.expiresAtMs).toISOString()}`, 'the situation has moved on: ask again');
    if (approval.requestedBy === actor) throw apiError('TMR_API_CONFLICT', 'a disruptive request is approved by someone other than who asked for it', 'ask another operator or an admin to approve it');
    if (approve) {
      let now: string | null = null;
      try {
        checkDisruption({ kind: 'restart', vm: approval.vm, vendor: null, nowMs: this.clock.nowMs() }, this.blueprint, controller.state, this.view.windows.values());
      } catch (error) {
        if (!(error instanceof TomaranaiError) || error.code !== 'TMR_API_DISRUPTION') throw error;
        now = error.message;
      }
      if (now !== null && now !== approval.breaks) throw apiError('TMR_API_CONFLICT', `the situation changed since the request: now ${now}`, 'reject this request and ask again if it is still needed');
      this.record('audit', 'disruption.approval.decided', approval.vm, actor, { id, approved: true, reason });
      await this.stopPrimary(approval.vm, `${approval.reason} (approved by ${actor}: ${reason})`, actor, approval);
    } else {
      this.record('audit', 'disruption.approval.decided', approval.vm, actor, { id, approved: false, reason });
    }
    return this.approvalView(this.view.approvals.get(id)!);
  }

  openMaintenanceWindow(service: string, fromMs: number, toMs: number, reason: string, actor: string) {
    this.requireLeader();
    if (this.vendorOfService(service) === null) throw apiError('TMR_API_NOT_FOUND', `no service ${service}`);
    if (!(toMs > fromMs)) throw apiError('TMR_API_CONFLICT', 'a window ends after it begins');
    const id = `window-${randomUUID()}`;
    this.record('audit', 'maintenance-window.opened', service, actor, { id, fromMs, toMs, reason });
    return this.view.windows.get(id)!;
  }

  // ── Host maintenance ───────────────────────────────────────────────────────────────────────

  /**
   * Evacuates a host and holds it: the host is fenced (its VMs fail over or restart elsewhere, in
   * tier order, as after a failure) and stays off until released. Live migration is not in the
   * Substrate port yet, so evacuation costs each VM a restart (continuous ones fail over).
   */
  async evacuateHost(host: string, reason: string, actor: string): Promise<{ migrating: string[]; stuck: string[] }> {
    const controller = this.requireLeader();
    if (!this.blueprint.hosts.some((candidate) => candidate.name === host)) throw apiError('TMR_API_NOT_FOUND', `no host ${host}`);
    if (this.view.maintenance.has(host)) throw apiError('TMR_API_CONFLICT', `${host} is already held for maintenance`);
    this.record('audit', 'host.maintenance.started', host, actor, { reason });
    // Live migration moves every VM off without stopping it; the host is held so nothing returns.
    const result = controller.evacuateHost(host, actor);
    this.record('action', 'host.evacuate', host, actor, { epoch: this.epoch, ok: true, migrating: result.migrating, stuck: result.stuck });
    return result;
  }

  async releaseHost(host: string, reason: string, actor: string): Promise<void> {
    const controller = this.requireLeader();
    if (!this.view.maintenance.has(host)) throw apiError('TMR_API_CONFLICT', `${host} is not held for maintenance`);
    this.record('audit', 'host.maintenance.ended', host, actor, { reason });
    controller.releaseHost(host, actor);
    // A host that was powered off during its maintenance comes back on.
    controller.powerOnHost(host, actor);
  }
}
