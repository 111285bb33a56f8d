/**
 * The parts of a drill report about failures nobody scripted (issue 13), from the journal alone:
 * gray hosts (when each was degraded, on what evidence, and how long each hit service took to come
 * back counted from that moment), snapshots that failed (per VM: from when, why, the RPO at risk),
 * how far back a restore had to go and why, and the dependencies a service runs without.
 */
import { eventsOf, type JournalEntry } from '../ports/index.ts';
import type { Blueprint } from '../model/index.ts';

const round = (value: number) => Math.round(value * 1000) / 1000;

/** A host degraded by a gray failure: when, on what evidence, and what it led to. */
export interface GrayHostIncident {
  readonly host: string;
  readonly degradedAtS: number;
  readonly trustedAgainAtS: number | null;
  readonly copies: number;
  readonly failing: readonly { readonly vm: string; readonly unhealthyShare: number; readonly latencyMs: number | null }[];
  readonly estateFailingShare: number;
  readonly cpuReadyPercentMax: number | null;
  /** VMs started, or moved, onto it while it was degraded (must be none). */
  readonly placedWhileDegraded: number;
}

/** One VM's snapshots that failed: the first failure, why, and the RPO at risk it reached. */
export interface SnapshotFailureReport {
  readonly vm: string;
  readonly datastore: string;
  readonly reason: string;
  readonly firstAtS: number;
  readonly failures: number;
  readonly rpoAtRiskMaxS: number | null;
  readonly rpoTargetS: number;
}

export interface DependencyGap {
  readonly dependency: string;
  readonly reason: string;
}

/** Gray hosts degraded after the fault, with their evidence. */
export function grayHosts(entries: readonly JournalEntry[], faultAtMs: number): GrayHostIncident[] {
  const trusted = eventsOf(entries, 'host.trusted');
  return eventsOf(entries, 'host.degraded')
    .filter((entry) => entry.atMs >= faultAtMs)
    .map((entry) => {
      const until = trusted.find((candidate) => candidate.subject === entry.subject && candidate.atMs >= entry.atMs);
      const endMs = until?.atMs ?? Number.POSITIVE_INFINITY;
      const placed = entries.filter(
        (candidate) =>
          candidate.atMs >= entry.atMs &&
          candidate.atMs < endMs &&
          candidate.kind === 'action' &&
          ((candidate.type === 'startVm' && candidate.data.host === entry.subject) || (candidate.type === 'migrateVm' && candidate.data.to === entry.subject)),
      ).length;
      return {
        host: entry.subject,
        degradedAtS: round(entry.atMs / 1000),
        trustedAgainAtS: until === undefined ? null : round(until.atMs / 1000),
        copies: entry.data.copies,
        failing: entry.data.failing.map(({ vm, unhealthyShare, latencyMs }) => ({ vm, unhealthyShare, latencyMs })),
        estateFailingShare: entry.data.estateFailingShare,
        cpuReadyPercentMax: entry.data.cpuReadyPercentMax,
        placedWhileDegraded: placed,
      };
    });
}

/** Per VM, its failed snapshots after the fault (journaled by the controller as they happened). */
export function snapshotFailures(entries: readonly JournalEntry[], faultAtMs: number): SnapshotFailureReport[] {
  const byVm = new Map<string, SnapshotFailureReport>();
  for (const entry of eventsOf(entries, 'snapshot.failed')) {
    if (entry.atMs < faultAtMs) continue;
    const previous = byVm.get(entry.subject);
    const atRisk = entry.data.rpoAtRiskS;
    byVm.set(entry.subject, {
      vm: entry.subject,
      datastore: entry.data.datastore,
      reason: entry.data.reason,
      firstAtS: previous?.firstAtS ?? round(entry.atMs / 1000),
      failures: (previous?.failures ?? 0) + 1,
      rpoAtRiskMaxS: atRisk === null ? null : Math.max(atRisk, previous?.rpoAtRiskMaxS ?? 0),
      rpoTargetS: entry.data.rpoTargetS,
    });
  }
  return [...byVm.values()].sort((a, b) => a.firstAtS - b.firstAtS || a.vm.localeCompare(b.vm));
}

/**
 * Why a restore went back as far as it did: the scheduled snapshots of the VM that failed between
 * the restore point and the moment it was needed, or null when none did (it went back one interval).
 */
export function restoreFallBack(entries: readonly JournalEntry[], vm: string, restorePointMs: number, neededAtMs: number, snapshotIntervalS: number): string | null {
  const failed = eventsOf(entries, 'snapshot.failed').filter((entry) => entry.subject === vm && entry.data.scheduledAtMs > restorePointMs && entry.data.scheduledAtMs <= neededAtMs);
  if (failed.length === 0) return null;
  const backS = Math.round((neededAtMs - restorePointMs) / 1000);
  return `went back ${backS} s (its snapshot interval is ${snapshotIntervalS} s): ${failed.length} scheduled snapshot(s) after the restore point failed — ${failed[0]!.data.reason}`;
}

/** What each service's VMs were started without after the fault, and why (the latest start of each VM counts). */
export function dependencyGaps(blueprint: Blueprint, entries: readonly JournalEntry[], faultAtMs: number): Map<string, DependencyGap[]> {
  const latest = new Map<string, readonly { readonly service: string; readonly reason: string }[]>();
  for (const entry of eventsOf(entries, 'startVm')) {
    if (entry.atMs < faultAtMs || entry.kind !== 'action' || entry.data.ok !== true || entry.data.role !== 'primary') continue;
    latest.set(entry.subject, entry.data.withoutDependencies ?? []);
  }
  const gaps = new Map<string, DependencyGap[]>();
  for (const service of blueprint.services) {
    const seen = new Map<string, string>();
    for (const vm of service.vms) for (const gap of latest.get(vm.name) ?? []) if (!seen.has(gap.service)) seen.set(gap.service, gap.reason);
    if (seen.size > 0) gaps.set(service.name, [...seen].map(([dependency, reason]) => ({ dependency, reason })));
  }
  return gaps;
}

/** A service's recovery counted from the moment its host was degraded (gray failure), in seconds. */
export function backAfterDegradedS(recoveredAtMs: number | null, degradedAtMs: number | null): number | null {
  if (recoveredAtMs === null || degradedAtMs === null) return null;
  return round(Math.max(0, recoveredAtMs - degradedAtMs) / 1000);
}

/**
 * When the controller noticed a fault of issue 13 that no host verdict shows: a gray host degraded,
 * a VM's first restart for its health, a datastore's first failed snapshot. Undefined when it did
 * not (or when the fault is of another kind).
 */
export function unscriptedDetection(entries: readonly JournalEntry[], fault: { readonly atMs: number; readonly kind: string; readonly target: string }): JournalEntry | undefined {
  const after = entries.filter((entry) => entry.atMs >= fault.atMs);
  switch (fault.kind) {
    case 'host-slowdown':
      return after.find((entry) => entry.type === 'host.degraded' && entry.subject === fault.target);
    case 'crash-loop':
    case 'vm-health-pattern':
      return after.find((entry) => entry.type === 'stopVm' && entry.kind === 'action' && entry.subject === fault.target);
    case 'datastore-full':
    case 'snapshot-failure':
      return after.find((entry) => entry.type === 'snapshot.failed' && entry.data.datastore === fault.target);
    default:
      return undefined;
  }
}
