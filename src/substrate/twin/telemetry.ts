/**
 * The twin's security telemetry: one sample per running production VM and window, generated on
 * demand from the seed, the VM's clinical demand and what the attacker did — nothing runs between
 * calls. Each VM's normal behaviour is drawn once from its own stream; the noise of a window is a
 * hash of (seed, VM, window, stream), so telemetry needs no state and no draw shifts another.
 */
import type { VmSecuritySample } from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import { cpuDemand } from '../../model/demand.ts';
import { gaussian, noise, poisson } from './noise.ts';
import { attackFiles, attackKiB, drawFileBaseline, fileWindow } from './files.ts';
import type { SecurityModel, VmBaseline, VmFileBaseline } from './security-model.ts';
import type { TwinState } from './state.ts';

export class TwinTelemetry {
  constructor(
    private readonly state: TwinState,
    private readonly securityRandom: Random,
  ) {}

  /**
   * One sample per running production VM for the window since the last call (the controller's
   * security loop calls it on its interval).
   */
  securityTelemetry(): readonly VmSecuritySample[] {
    const state = this.state;
    const security = state.security;
    if (security === null) return [];
    const now = state.clock.nowMs();
    const windowMs = security.lastTelemetryAtMs === null ? security.windowMs : Math.max(1, now - security.lastTelemetryAtMs);
    security.lastTelemetryAtMs = now;
    const samples: VmSecuritySample[] = [];
    for (const instance of state.instances.values()) {
      if (instance.role !== 'primary' || instance.state !== 'running' || instance.lost) continue;
      samples.push(this.sample(security, instance.vm, instance.id, now, windowMs));
    }
    // Flow events older than the window are spent.
    for (const [vm, list] of security.flows) {
      const kept = list.filter((event) => event.atMs > now);
      if (kept.length !== list.length) security.flows.set(vm, kept);
    }
    return samples;
  }

  /** Legitimate write rate of a VM at a moment: its baseline, scaled by its clinical demand then. */
  legitimateWriteKiBps(vm: string, atMs: number): number {
    const info = this.state.index.vm.get(vm)!;
    const service = this.state.index.service.get(info.service)!;
    const load = cpuDemand(info.vcpu, service.demand, atMs, this.state.surge) / Math.max(0.1, info.vcpu);
    return this.baselineOf(vm).writeKiBps * (0.3 + load);
  }

  /** KiB the attacker's encryption wrote to a VM's disk between two moments. */
  encryptedKiB(vm: string, fromMs: number, toMs: number): number {
    let total = 0;
    for (const encryption of this.state.security!.encryptions) {
      if (encryption.vm === vm) total += attackKiB(encryption, fromMs, toMs, this.fileBaselineOf(vm).files);
    }
    return total;
  }

  /** Files the attack reached on a VM by a moment, and the decoys among them (ground truth for the report). */
  attackedFiles(vm: string, atMs: number): { files: number; canaries: number } {
    const tree = this.fileBaselineOf(vm);
    let files = 0;
    for (const encryption of this.state.security!.encryptions) if (encryption.vm === vm) files = Math.max(files, attackFiles(encryption, atMs, tree.files));
    return { files, canaries: tree.canaries.filter((position) => position < files).length };
  }

  /** A VM's file tree (its size fixes the attacker's rate in KiB/s for a rate in files/s). */
  fileBaselineOf(vm: string): VmFileBaseline {
    const security = this.state.security!;
    let files = security.fileBaselines.get(vm);
    if (files === undefined) {
      files = drawFileBaseline(this.securityRandom.fork(`files/${vm}`));
      security.fileBaselines.set(vm, files);
    }
    return files;
  }

  /** The VM's steady write entropy (what an entropy-matching attacker imitates). */
  baselineEntropy(vm: string): number {
    return this.baselineOf(vm).entropy;
  }

  /** The window (now - windowMs, now] of one VM: its demand, its noise, the attacker's flows and writes. */
  private sample(security: SecurityModel, vm: string, instanceId: string, now: number, windowMs: number): VmSecuritySample {
    const fromMs = now - windowMs;
    const windowIndex = Math.floor(now / 1000);
    const info = this.state.index.vm.get(vm)!;
    const service = this.state.index.service.get(info.service)!;
    const baseline = this.baselineOf(vm);
    const load = cpuDemand(info.vcpu, service.demand, now, this.state.surge) / Math.max(0.1, info.vcpu);
    const events = (security.flows.get(vm) ?? []).filter((event) => event.atMs > fromMs && event.atMs <= now);
    const deniedDestinations = events.filter((event) => event.denied).map((event) => event.destination);
    let deniedFlows = deniedDestinations.length;
    if (baseline.habitualDenied !== null && this.noise(vm, windowIndex, 1) < windowMs / baseline.habitualDenied.meanGapMs) {
      deniedFlows += 1;
      deniedDestinations.push(baseline.habitualDenied.destination);
    }
    // A new mistake now and then (a reconfigured client, a stale address): about one per three days per VM.
    if (this.noise(vm, windowIndex, 2) < windowMs / (3 * 86_400_000)) {
      deniedFlows += 1;
      deniedDestinations.push(`stale-${Math.floor(this.noise(vm, windowIndex, 3) * 1e6)}`);
    }
    const newFlows = this.poisson(baseline.flowsPerWindow * (windowMs / security.windowMs) * (0.4 + load), this.noise(vm, windowIndex, 4)) + events.filter((event) => !event.denied).length;
    const legitimateKiBps = baseline.writeKiBps * (0.3 + load) * Math.exp(0.25 * this.gaussian(vm, windowIndex, 5));
    const extra = fileWindow(security, { vm, instanceId }, baseline, this.fileBaselineOf(vm), fromMs, now);
    const encryptedKiBps = (extra.attackerKiB * 1000) / windowMs;
    const burstKiBps = (extra.burstKiB * 1000) / windowMs;
    const legitimateEntropy = Math.min(0.97, Math.max(0.05, baseline.entropy + 0.02 * this.gaussian(vm, windowIndex, 6)));
    const written = legitimateKiBps + burstKiBps + encryptedKiBps;
    const entropy = (legitimateKiBps * legitimateEntropy + burstKiBps * extra.burstEntropy + encryptedKiBps * extra.attackerEntropy) / written;
    const freshShare = Math.min(0.95, baseline.freshBlockShare * Math.exp(0.2 * this.gaussian(vm, windowIndex, 7)));
    const networkFactor = (0.3 + load) * Math.exp(0.3 * this.gaussian(vm, windowIndex, 8));
    return {
      vm,
      atMs: now,
      windowMs,
      cpuPercent: Math.min(100, 100 * load * (0.9 + 0.2 * this.noise(vm, windowIndex, 9)) + (encryptedKiBps > 0 ? 35 : 0)),
      networkInKiBps: baseline.networkKiBps * networkFactor,
      networkOutKiBps: baseline.networkKiBps * 0.6 * networkFactor + (extra.outboundKiB * 1000) / windowMs,
      newFlows,
      deniedFlows,
      deniedDestinations,
      diskWriteKiBps: written,
      writeEntropy: entropy,
      snapshotChangeKiBps: legitimateKiBps * freshShare + burstKiBps * extra.burstFreshShare + encryptedKiBps * 0.97,
      snapshotDeletionsRefused: security.deletionsRefused.filter((refusal) => refusal.vm === vm && refusal.atMs > fromMs && refusal.atMs <= now).length,
      files: extra.files,
    };
  }

  private baselineOf(vm: string): VmBaseline {
    const security = this.state.security!;
    let baseline = security.baselines.get(vm);
    if (baseline === undefined) {
      const random = this.securityRandom.fork(`baseline/${vm}`);
      const info = this.state.index.vm.get(vm)!;
      const habitual = random.next() < 0.3;
      baseline = {
        networkKiBps: (50 + random.next() * 950) * Math.max(1, info.vcpu),
        flowsPerWindow: 0.3 + random.next() * 3,
        writeKiBps: 100 + random.next() * 4000,
        // Compressed images (PACS, endoscopy) write high-entropy data already; databases less so.
        entropy: 0.35 + random.next() * 0.5,
        freshBlockShare: 0.15 + random.next() * 0.35,
        habitualDenied: habitual ? { destination: `ntp-legacy-${random.int(4)}`, meanGapMs: (10 + random.next() * 50) * 60_000 } : null,
      };
      security.baselines.set(vm, baseline);
    }
    return baseline;
  }

  private noise(vm: string, windowIndex: number, stream: number): number {
    return noise(this.state.security!.noiseSeed, vm, windowIndex, stream);
  }

  private gaussian(vm: string, windowIndex: number, stream: number): number {
    return gaussian(this.state.security!.noiseSeed, vm, windowIndex, stream);
  }

  private poisson(mean: number, uniform: number): number {
    return poisson(mean, uniform);
  }
}
