/**
 * The digital twin: a deterministic, in-memory substrate on simulated time. It models hosts with
 * two heartbeat channels (management network and datastore), racks, rooms, power feeds,
 * replicated datastores, VM instances that boot, run and stop, continuous pairs (primary plus a
 * synchronised secondary), fencing (storage reservations and a power controller), and the
 * fencing-token checks every substrate must make. It also knows the truth the controller cannot
 * see (which copies really run), for the invariant auditor.
 *
 * This class composes the twin's parts over one shared state (state.ts) and keeps the twin's
 * public API in one place: the Substrate port (port.ts), hosts and heartbeats (hosts.ts), storage
 * (storage.ts), snapshots (snapshots.ts), network security and the attacker's effects
 * (security.ts), security telemetry (telemetry.ts), restores (restore.ts), faults (faults.ts) and
 * the truth the auditor reads (truth.ts).
 */
import type {
  ActionOutcome,
  Clock,
  Fault,
  FaultInjector,
  FencingToken,
  PlacedCopy,
  RestoreObservation,
  RestoreRequest,
  SnapshotObservation,
  StartRequest,
  Substrate,
  SubstrateEvent,
  SubstrateSnapshot,
  VmMetrics,
  VmSecuritySample,
} from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import type { Blueprint, Tier } from '../../model/index.ts';
import type { SegmentationPolicy } from '../../model/segmentation.ts';
import { TwinFaults } from './faults.ts';
import { TwinHealth } from './health.ts';
import { TwinHosts } from './hosts.ts';
import { DEFAULT_TWIN_PARAMETERS, type TwinParameters } from './parameters.ts';
import { TwinPort } from './port.ts';
import { TwinRestores } from './restore.ts';
import { TwinSecurity } from './security.ts';
import type { AttackProfile, Encryption, SnapshotDeletionRefusal } from './security-model.ts';
import { TwinSnapshots } from './snapshots.ts';
import { TwinState } from './state.ts';
import { TwinStorage } from './storage.ts';
import { TwinTelemetry } from './telemetry.ts';
import { TwinTruthView, type TwinTruth, type VmSecurityTruth } from './truth.ts';

export { DEFAULT_SHARES, DEFAULT_TWIN_PARAMETERS, type TwinParameters } from './parameters.ts';
export { faultTarget, type Fault } from '../../ports/index.ts';
export type { TwinTruth, VmSecurityTruth } from './truth.ts';
export type { Tier };

export class Twin implements Substrate, FaultInjector {
  readonly name = 'twin';
  readonly refusals: TwinState['refusals'];
  private readonly state: TwinState;
  private readonly hosts: TwinHosts;
  private readonly port: TwinPort;
  private readonly storage: TwinStorage;
  private readonly snapshots: TwinSnapshots;
  private readonly security: TwinSecurity;
  private readonly telemetry: TwinTelemetry;
  private readonly restores: TwinRestores;
  private readonly faults: TwinFaults;
  private readonly health: TwinHealth;
  private readonly view: TwinTruthView;

  constructor(
    blueprint: Blueprint,
    clock: Clock,
    random: Random,
    readonly parameters: TwinParameters = DEFAULT_TWIN_PARAMETERS,
  ) {
    // Every part draws from its own named fork: none shifts another's stream, and a drill without
    // security drills draws nothing for them.
    this.state = new TwinState(blueprint, clock, random, parameters);
    this.refusals = this.state.refusals;
    this.hosts = new TwinHosts(this.state);
    const hosts = this.hosts;
    const securityRandom = random.fork('security');
    this.storage = new TwinStorage(this.state, hosts, random);
    this.snapshots = new TwinSnapshots(this.state, random);
    this.port = new TwinPort(this.state, hosts, this.storage);
    this.security = new TwinSecurity(this.state, hosts, securityRandom);
    this.telemetry = new TwinTelemetry(this.state, securityRandom);
    this.restores = new TwinRestores(this.state, hosts, this.snapshots);
    this.health = new TwinHealth(this.state, hosts, random);
    this.faults = new TwinFaults(this.state, hosts, this.storage, this.health, this.snapshots);
    this.view = new TwinTruthView(this.state, hosts, this.telemetry);
  }

  // ── Substrate port ────────────────────────────────────────────────────────────────────────

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    return this.state.subscribe(listener);
  }

  snapshot(): SubstrateSnapshot {
    return this.port.snapshot();
  }

  claimEpoch(token: FencingToken): ActionOutcome {
    return this.port.claimEpoch(token);
  }

  startVm(request: StartRequest): ActionOutcome {
    return this.port.startVm(request);
  }

  stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): ActionOutcome {
    return this.port.stopVm(request);
  }

  promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): ActionOutcome {
    return this.port.promoteSecondary(request);
  }

  fenceHost(request: { token: FencingToken; host: string }): ActionOutcome {
    return this.port.fenceHost(request);
  }

  powerOnHost(request: { token: FencingToken; host: string }): ActionOutcome {
    return this.port.powerOnHost(request);
  }

  restorePointMs(vm: string, datastore: string): number | null {
    return this.storage.restorePointMs(vm, datastore);
  }

  /** Starts the twin as a hospital that is already running (see TwinPort.adopt). */
  adopt(placements: ReadonlyMap<string, { readonly primary: string; readonly secondary: string | null }>): void {
    this.port.adopt(placements);
  }

  /** A mass-casualty event: services' demand is multiplied by their surge factor. */
  setSurge(on: boolean): void {
    this.state.surge = on;
  }

  metrics(): readonly VmMetrics[] {
    return this.port.metrics();
  }

  migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): ActionOutcome {
    return this.port.migrateVm(request);
  }

  setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): ActionOutcome {
    return this.port.setCpuShares(request);
  }

  listSnapshots(vm: string): readonly SnapshotObservation[] {
    return this.snapshots.listSnapshots(vm);
  }

  deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): ActionOutcome {
    return this.snapshots.deleteSnapshot(request);
  }

  // ── Security: network policy, telemetry, attacker effects, restore (cyber-resilience) ──────

  applyNetworkPolicy(request: { token: FencingToken; policy: SegmentationPolicy }): ActionOutcome {
    return this.security.applyNetworkPolicy(request);
  }

  /** The policy the twin enforces now (null before one is applied). */
  networkPolicy(): SegmentationPolicy | null {
    return this.security.networkPolicy();
  }

  baselinePolicy(): SegmentationPolicy | null {
    return this.security.baselinePolicy();
  }

  quarantineVm(request: { token: FencingToken; vm: string }): ActionOutcome {
    return this.security.quarantineVm(request);
  }

  releaseVm(request: { token: FencingToken; vm: string }): ActionOutcome {
    return this.security.releaseVm(request);
  }

  /** A connection attempt through the enforced policy (see TwinSecurity.attemptFlow). */
  attemptFlow(request: { from: string; to: string; port: number }): { allowed: boolean; reason: string } {
    return this.security.attemptFlow(request);
  }

  /** Denied connection attempts per (from → to) pair since the policy was applied. */
  deniedFlowsByPair(): ReadonlyMap<string, number> {
    return this.security.deniedFlowsByPair();
  }

  hasRunningCopy(vm: string): boolean {
    return this.hosts.hasRunningCopy(vm);
  }

  /**
   * The attacker's encryption (or wiping) of a VM's files through its running primary; it ends
   * when that copy stops. Its pace is the profile's files per second, or, given `rateKiBps`, that
   * rate in bytes over the VM's files.
   */
  startEncryption(vm: string, profile: AttackProfile, rateKiBps?: number): Encryption | null {
    if (this.state.security === null) return null;
    return this.security.startEncryption(vm, profile, this.telemetry.fileBaselineOf(vm).meanFileKiB, rateKiBps);
  }

  /** The attacker reads a VM's files and sends them out (no writes) from now for `durationMs`. */
  startExfiltration(vm: string, kibps: number, durationMs: number): boolean {
    return this.security.startExfiltration(vm, kibps, durationMs);
  }

  /** Files the attack reached on a VM by a moment, and the decoys among them (ground truth). */
  attackedFiles(vm: string, atMs: number): { files: number; canaries: number } {
    return this.state.security === null ? { files: 0, canaries: 0 } : this.telemetry.attackedFiles(vm, atMs);
  }

  /** The newest fencing epoch: what stolen administrator credentials are worth. */
  adminToken(): FencingToken {
    return this.security.adminToken();
  }

  securityTelemetry(): readonly VmSecuritySample[] {
    return this.telemetry.securityTelemetry();
  }

  restoreSnapshot(request: RestoreRequest): ActionOutcome {
    return this.restores.restoreSnapshot(request);
  }

  restoreStatus(restoreId: string): RestoreObservation | null {
    return this.restores.restoreStatus(restoreId);
  }

  /** Discards a restored copy that will not be used (it failed its health check). */
  discardRestore(restoreId: string): void {
    this.restores.discardRestore(restoreId);
  }

  promoteRestored(request: { token: FencingToken; vm: string; restoreId: string }): ActionOutcome {
    return this.restores.promoteRestored(request);
  }

  /** Ground truth of an attack on one VM (what the detectors never see), for the drill report. */
  securityTruth(vm: string): VmSecurityTruth {
    return this.view.securityTruth(vm);
  }

  /** Snapshot deletions refused by immutability, with who asked (for the drill report). */
  refusedSnapshotDeletions(): readonly SnapshotDeletionRefusal[] {
    return this.security.refusedSnapshotDeletions();
  }

  // ── Faults (the FaultInjector port, used by scenarios, storms and soaks) ──────────────────

  inject(fault: Fault): void {
    this.faults.inject(fault);
  }

  /** Undoes a fault: a repair. A crashed or unpowered host comes back empty after its boot. */
  heal(fault: Fault): void {
    this.faults.heal(fault);
  }

  copies(): readonly PlacedCopy[] {
    return this.view.copies();
  }

  // ── Truth (for the invariant auditor and the drill report) ─────────────────────────────────

  /** What really runs, which the controller can only infer: for the invariant auditor. */
  truth(): TwinTruth {
    return this.view.truth();
  }

  /** Instances that run and answer their health check, per VM (truth, not observation). */
  healthyPrimaries(): Set<string> {
    return this.view.healthyPrimaries();
  }

  hostLoad(): Map<string, { vcpu: number; memoryGiB: number }> {
    return this.view.hostLoad();
  }

  isHostPowered(name: string): boolean {
    return this.view.isHostPowered(name);
  }
}
