/**
 * What really happens on the twin, which the controller can only infer: the copies that could
 * serve or write (split brain, invariant 1), the healthy primaries, each host's load and power,
 * and the ground truth of an attack. The invariant auditor, the drill report and the scenarios
 * that aim a fault read it; the controller never does.
 */
import { hostLoad, type PlacedCopy } from '../../ports/index.ts';
import type { TwinHosts } from './hosts.ts';
import type { TwinState } from './state.ts';
import type { TwinTelemetry } from './telemetry.ts';

/** What really happened to one VM in an attack, for the drill report (ground truth the detectors never see). */
export interface VmSecurityTruth {
  readonly vm: string;
  readonly encryptedSinceMs: number | null;
  readonly quarantinedAtMs: number | null;
  /** Bytes the attacker's encryption wrote before the VM was quarantined, and in all. */
  readonly attackerWrittenBeforeQuarantineKiB: number;
  readonly attackerWrittenKiB: number;
  /** The restore that put it back in service, if any, and the legitimate writes it could not bring back. */
  readonly restoredAtMs: number | null;
  readonly restorePointMs: number | null;
  readonly restoredFromCleanSnapshot: boolean | null;
  readonly legitimateWritesLostKiB: number | null;
}

export interface TwinTruth {
  /** VMs with more than one copy that could serve or write (invariant 1). */
  readonly splitBrainVms: readonly string[];
  readonly activeCopies: ReadonlyMap<string, number>;
}

export class TwinTruthView {
  constructor(
    private readonly state: TwinState,
    private readonly hosts: TwinHosts,
    private readonly telemetry: TwinTelemetry,
  ) {}

  /** What really runs, which the controller can only infer: for the invariant auditor. */
  truth(): TwinTruth {
    const activeCopies = new Map<string, number>();
    const splitBrainVms: string[] = [];
    for (const instance of this.state.instances.values()) {
      if (!this.hosts.isActiveCopy(instance)) continue;
      const count = (activeCopies.get(instance.vm) ?? 0) + 1;
      activeCopies.set(instance.vm, count);
      if (count === 2) splitBrainVms.push(instance.vm);
    }
    return { splitBrainVms, activeCopies };
  }

  /** Instances that run and answer their health check, per VM (truth, not observation). */
  healthyPrimaries(): Set<string> {
    const healthy = new Set<string>();
    for (const instance of this.state.instances.values()) {
      if (instance.role === 'primary' && this.hosts.isHealthy(instance) && !this.hosts.sick(instance)) healthy.add(instance.vm);
    }
    return healthy;
  }

  /** The copies that run or boot (not lost with their host), in the order they were started. */
  copies(): readonly PlacedCopy[] {
    const copies: PlacedCopy[] = [];
    for (const instance of this.state.instances.values()) {
      if (instance.state === 'stopped' || instance.lost) continue;
      copies.push({ vm: instance.vm, host: instance.host, role: instance.role });
    }
    return copies;
  }

  hostLoad(): Map<string, { vcpu: number; memoryGiB: number }> {
    return hostLoad(this.state.blueprint, this.copies());
  }

  isHostPowered(name: string): boolean {
    return this.hosts.powered(this.state.mustHost(name));
  }

  /** Ground truth of an attack on one VM (what the detectors never see), for the drill report. */
  securityTruth(vm: string): VmSecurityTruth {
    const security = this.state.security;
    const encryptedSinceMs = security?.encryptedSinceMs.get(vm) ?? null;
    const quarantinedAtMs = security?.quarantinedAtMs.get(vm) ?? null;
    const now = this.state.clock.nowMs();
    const promotion = security?.promotions.find((entry) => encryptedSinceMs !== null && entry.vm === vm && entry.atMs >= encryptedSinceMs) ?? null;
    let lostKiB: number | null = null;
    if (promotion !== null) {
      // Legitimate writes between the restore point and the quarantine (after it, no client reaches the VM).
      const endMs = quarantinedAtMs ?? promotion.atMs;
      lostKiB = 0;
      for (let atMs = promotion.restorePointMs; atMs < endMs; atMs += 60_000) {
        lostKiB += (this.telemetry.legitimateWriteKiBps(vm, atMs) * Math.min(60_000, endMs - atMs)) / 1000;
      }
    }
    return {
      vm,
      encryptedSinceMs,
      quarantinedAtMs,
      attackerWrittenBeforeQuarantineKiB: security === null ? 0 : this.telemetry.encryptedKiB(vm, 0, quarantinedAtMs ?? now),
      attackerWrittenKiB: security === null ? 0 : this.telemetry.encryptedKiB(vm, 0, now),
      restoredAtMs: promotion?.atMs ?? null,
      restorePointMs: promotion?.restorePointMs ?? null,
      restoredFromCleanSnapshot: promotion === null || encryptedSinceMs === null ? null : promotion.restorePointMs < encryptedSinceMs,
      legitimateWritesLostKiB: lostKiB,
    };
  }
}
