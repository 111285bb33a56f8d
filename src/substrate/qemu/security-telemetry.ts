/**
 * The lab's security telemetry as the Substrate port's samples: each host agent's cumulative
 * counters (bytes written, bytes through the tap, denied packets per destination) and per-window
 * readings (changed blocks, their entropy; block-telemetry.ts) become one `VmSecuritySample` per
 * running primary, rates over the window since the previous reading of the same copy. A copy read
 * for the first time (new, restarted, moved) gives no sample: it has no window yet.
 *
 * Not measured on the lab, and so 0: new connections per window (the stateless policy keeps no
 * connection table) and CPU (the agents report it to the controller's metrics instead).
 */
import type { VmSecuritySample } from '../../ports/index.ts';
import { BLOCK_BYTES, type DeniedPair, type HostTelemetry, type VmBlockTelemetry } from './block-telemetry.ts';

interface Previous {
  readonly instanceId: string;
  readonly reading: VmBlockTelemetry;
}

export class SecurityTelemetry {
  private readonly previous = new Map<string, Previous>();
  private readonly deniedBefore = new Map<string, number>();
  private readonly refusedDeletions = new Map<string, number>();

  constructor(private readonly vmAddress: ReadonlyMap<string, string>) {}

  /** A deletion of one of `vm`'s snapshots was refused (immutability): reported with its next sample. */
  deletionRefused(vm: string): void {
    this.refusedDeletions.set(vm, (this.refusedDeletions.get(vm) ?? 0) + 1);
  }

  /** The samples of one round of host readings, at `atMs` on the controller's clock. */
  samples(readings: readonly HostTelemetry[], context: { readonly atMs: number; readonly serving: (instanceId: string) => boolean }): VmSecuritySample[] {
    const { atMs } = context;
    const denied = this.deniedSince(readings.flatMap((reading) => (reading.denied ?? []).map((pair) => ({ ...pair, host: reading.host }))));
    const samples: VmSecuritySample[] = [];
    for (const reading of readings.flatMap((host) => host.vms)) {
      // A copy still booting writes what no baseline should learn from, nor judge: its windows
      // start once its guest runs. (Not once it passes its health check: on a saturated machine a
      // running guest can miss its probes for a while, and the detector must not go blind then.)
      if (!context.serving(reading.instanceId)) {
        this.previous.delete(reading.vm);
        continue;
      }
      const before = this.previous.get(reading.vm);
      this.previous.set(reading.vm, { instanceId: reading.instanceId, reading });
      if (before === undefined || before.instanceId !== reading.instanceId || reading.sinceMs === null) continue;
      // A window in which the guest wrote nothing says nothing about its writes (a guest the
      // machine starved, its workload not started yet): it is not a sample to learn from.
      if (reading.writtenBytes === before.reading.writtenBytes && reading.changedBlocks === 0) continue;
      const windowMs = Math.max(1, reading.atMs - before.reading.atMs);
      const perSecond = (bytes: number) => Math.max(0, bytes) / 1024 / (windowMs / 1000);
      const address = this.vmAddress.get(reading.vm);
      const mine = address === undefined ? [] : denied.filter((pair) => pair.from === address);
      samples.push({
        vm: reading.vm,
        atMs,
        windowMs,
        cpuPercent: 0,
        networkInKiBps: delta(reading.toVmBytes, before.reading.toVmBytes, perSecond),
        networkOutKiBps: delta(reading.fromVmBytes, before.reading.fromVmBytes, perSecond),
        newFlows: 0,
        deniedFlows: mine.reduce((sum, pair) => sum + pair.packets, 0),
        deniedDestinations: [...new Set(mine.map((pair) => pair.to))],
        diskWriteKiBps: perSecond(reading.writtenBytes - before.reading.writtenBytes),
        writeEntropy: reading.entropy ?? 0,
        snapshotChangeKiBps: perSecond(reading.changedBlocks * BLOCK_BYTES),
        snapshotDeletionsRefused: this.takeRefused(reading.vm),
      });
    }
    return samples;
  }

  /** The packets each (source, destination) pair gained since the last round. */
  private deniedSince(pairs: readonly (DeniedPair & { readonly host: string })[]): DeniedPair[] {
    const gained: DeniedPair[] = [];
    for (const pair of pairs) {
      const key = `${pair.host}:${pair.from}>${pair.to}`;
      const before = this.deniedBefore.get(key) ?? 0;
      this.deniedBefore.set(key, pair.packets);
      if (pair.packets > before) gained.push({ ...pair, packets: pair.packets - before });
    }
    return gained;
  }

  private takeRefused(vm: string): number {
    const count = this.refusedDeletions.get(vm) ?? 0;
    this.refusedDeletions.delete(vm);
    return count;
  }
}

function delta(now: number | null, before: number | null, perSecond: (bytes: number) => number): number {
  return now === null || before === null ? 0 : perSecond(now - before);
}
