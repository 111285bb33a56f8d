/**
 * Snapshot health: a scheduled snapshot the substrate could not take (its datastore full, its
 * snapshot service broken) is journaled at once with the RPO now at risk for that VM — the age of
 * the newest snapshot a restore would fall back to — so that nobody learns of it only when a
 * restore goes back hours. The first failure of a run alerts (src/notify); the rest are journaled.
 */
import type { CapacityModel } from '../capacity/capacity.ts';
import type { JournalEvents, SubstrateEvent } from '../ports/index.ts';

export class SnapshotHealth {
  /** VM → since when its snapshots fail (until one is taken again; the substrate's list shows it). */
  private readonly failingSince = new Map<string, number>();

  constructor(private readonly model: CapacityModel) {}

  /** The journal entry for a failed snapshot. */
  failed(event: Extract<SubstrateEvent, { type: 'snapshot.failed' }>, nowMs: number): JournalEvents['snapshot.failed'] {
    const { tier } = this.model.info(event.vm);
    const previous = this.failingSince.get(event.vm);
    // A run of failures ends when a snapshot newer than its start exists again.
    const first = previous === undefined || (event.lastGoodAtMs !== null && event.lastGoodAtMs >= previous);
    if (first) this.failingSince.set(event.vm, event.scheduledAtMs);
    return {
      datastore: event.datastore,
      reason: event.reason,
      scheduledAtMs: event.scheduledAtMs,
      lastGoodAtMs: event.lastGoodAtMs,
      rpoAtRiskS: event.lastGoodAtMs === null ? null : Math.round((nowMs - event.lastGoodAtMs) / 1000),
      snapshotIntervalS: tier.snapshot.intervalS,
      rpoTargetS: tier.rpoS,
      first,
    };
  }
}
