/**
 * The twin's network security and the attacker's effects on it: the segmentation policy it
 * enforces (default deny) and the quarantines the controller orders, connection attempts through
 * that policy, the encryption of a disk through a running copy, and what stolen administrator
 * credentials are worth. The attacker model (src/drill/sim/attacker.ts) acts only through these.
 */
import type { ActionOutcome, FencingToken } from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import { allows, quarantine, release, type SegmentationPolicy } from '../../model/segmentation.ts';
import type { TwinHosts } from './hosts.ts';
import { newSecurityModel, type AttackProfile, type Encryption, type FlowEvent, type SnapshotDeletionRefusal } from './security-model.ts';
import type { TwinState } from './state.ts';

export class TwinSecurity {
  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    private readonly securityRandom: Random,
  ) {}

  applyNetworkPolicy(request: { token: FencingToken; policy: SegmentationPolicy }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('applyNetworkPolicy', request.token, null);
    if (refused) return refused;
    if (state.security === null) {
      state.security = newSecurityModel(request.policy, this.securityRandom.fork('noise').int(2 ** 31));
    } else {
      state.security.policy = request.policy;
      if (request.policy.quarantined.length === 0) state.security.baseline = request.policy;
      state.security.quarantined.clear();
      for (const vm of request.policy.quarantined) state.security.quarantined.add(vm);
    }
    return { ok: true, detail: `${request.policy.rules.length} rules enforced, default deny` };
  }

  /** The policy the twin enforces now (null before one is applied). */
  networkPolicy(): SegmentationPolicy | null {
    return this.state.security?.policy ?? null;
  }

  baselinePolicy(): SegmentationPolicy | null {
    return this.state.security?.baseline ?? null;
  }

  quarantineVm(request: { token: FencingToken; vm: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('quarantineVm', request.token, null);
    if (refused) return refused;
    const security = state.security;
    if (security === null) return state.refuse('quarantineVm', 'no network policy is applied');
    if (!state.index.vm.has(request.vm)) return state.refuse('quarantineVm', `unknown VM ${request.vm}`);
    if (security.quarantined.has(request.vm)) return { ok: true, detail: 'already quarantined' };
    security.policy = quarantine(security.policy, request.vm);
    security.quarantined.add(request.vm);
    security.quarantinedAtMs.set(request.vm, state.clock.nowMs());
    // Its probes now fail: the health check sees it at the next probe.
    for (const instance of state.instances.values()) if (instance.vm === request.vm && instance.state === 'running') this.hosts.scheduleHealth(instance);
    return { ok: true, detail: 'reaches the forensic network only' };
  }

  releaseVm(request: { token: FencingToken; vm: string }): ActionOutcome {
    const state = this.state;
    const refused = state.checkToken('releaseVm', request.token, null);
    if (refused) return refused;
    const security = state.security;
    if (security === null) return state.refuse('releaseVm', 'no network policy is applied');
    if (!security.quarantined.has(request.vm)) return { ok: true, detail: 'not quarantined' };
    security.policy = release(security.policy, security.baseline, request.vm);
    security.quarantined.delete(request.vm);
    for (const instance of state.instances.values()) if (instance.vm === request.vm && instance.state === 'running') this.hosts.scheduleHealth(instance);
    return { ok: true };
  }

  /**
   * A connection attempt through the enforced policy (the attacker's, or anyone's): allowed ones
   * count as new flows at both ends, denied ones per VM pair and as denied attempts of the source.
   * A VM can only try while a copy of it runs.
   */
  attemptFlow(request: { from: string; to: string; port: number }): { allowed: boolean; reason: string } {
    const state = this.state;
    const security = state.security;
    if (security === null) return { allowed: false, reason: 'no network policy is applied' };
    if (state.index.vm.has(request.from) && !this.hosts.hasRunningCopy(request.from)) return { allowed: false, reason: `${request.from} does not run` };
    const allowed = allows(security.policy, request.from, request.to, request.port);
    const now = state.clock.nowMs();
    const note = (vm: string, event: FlowEvent) => {
      if (!state.index.vm.has(vm)) return;
      let list = security.flows.get(vm);
      if (list === undefined) security.flows.set(vm, (list = []));
      if (list.length < 10_000) list.push(event);
    };
    if (allowed) {
      note(request.from, { atMs: now, denied: false, destination: request.to, outbound: true });
      note(request.to, { atMs: now, denied: false, destination: request.from, outbound: false });
      return { allowed: true, reason: 'allowed by the policy' };
    }
    const key = `${request.from}\u2192${request.to}`;
    security.deniedByPair.set(key, (security.deniedByPair.get(key) ?? 0) + 1);
    note(request.from, { atMs: now, denied: true, destination: request.to, outbound: true });
    return { allowed: false, reason: security.quarantined.has(request.from) || security.quarantined.has(request.to) ? 'quarantined' : 'denied by the policy' };
  }

  /** Denied connection attempts per (from → to) pair since the policy was applied. */
  deniedFlowsByPair(): ReadonlyMap<string, number> {
    return new Map(this.state.security?.deniedByPair ?? []);
  }

  /** The attacker's encryption of a VM's files through its running primary; it ends when that copy stops. */
  startEncryption(vm: string, profile: AttackProfile, meanFileKiB: number, rateKiBps?: number): Encryption | null {
    const state = this.state;
    const security = state.security;
    if (security === null) return null;
    const instance = [...state.instances.values()].find((candidate) => candidate.vm === vm && candidate.role === 'primary' && candidate.state === 'running' && !candidate.lost);
    if (instance === undefined) return null;
    const now = state.clock.nowMs();
    const kibPerFile = Math.max(1, meanFileKiB * profile.fileFraction);
    const resolved = rateKiBps === undefined ? profile : { ...profile, filesPerS: rateKiBps / kibPerFile };
    const encryption: Encryption = { vm, instanceId: instance.id, fromMs: now, untilMs: null, rateKiBps: rateKiBps ?? profile.filesPerS * kibPerFile, profile: resolved };
    security.encryptions.push(encryption);
    if (!security.encryptedSinceMs.has(vm)) security.encryptedSinceMs.set(vm, now);
    return encryption;
  }

  /** Reads and sends out a VM's files from now for `durationMs` (exfiltration: no writes, outbound traffic). */
  startExfiltration(vm: string, kibps: number, durationMs: number): boolean {
    const state = this.state;
    const security = state.security;
    if (security === null || !this.hosts.hasRunningCopy(vm)) return false;
    const now = state.clock.nowMs();
    security.exfiltrations.push({ vm, fromMs: now, untilMs: now + durationMs, kibps });
    return true;
  }

  /** The newest fencing epoch: what stolen administrator credentials are worth. */
  adminToken(): FencingToken {
    return { epoch: this.state.newestEpoch };
  }

  /** Snapshot deletions refused by immutability, with who asked (for the drill report). */
  refusedSnapshotDeletions(): readonly SnapshotDeletionRefusal[] {
    return this.state.security?.deletionsRefused ?? [];
  }
}
