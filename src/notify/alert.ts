/**
 * An alert: one thing people should hear about, derived from one journal entry. Its key is stable
 * (the same journal gives the same keys after any restart), which is what makes delivery
 * at-least-once with an idempotency key. Incident alerts come from the service's journal fold
 * (src/service/alert-feed.ts); the others from typed journal events here.
 */
import { isEvent, type JournalEntry } from '../ports/index.ts';
import { tierOf, type Blueprint } from '../model/index.ts';

export const ALERT_KINDS = [
  'incident.opened',
  'incident.closed',
  'sla.missed',
  'fence.failed',
  'host.degraded',
  'ransomware.alert',
  'vm.quarantined',
  'snapshot.failed',
  'drill.finished',
  'audit.checkpoint-failed',
  'leader.changed',
  'test',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

export interface AlertService {
  readonly name: string;
  readonly title: string;
  readonly vendor: string;
  readonly tier: string;
  readonly rtoTargetS: number;
  /** Measured recovery time (closed incidents, SLA misses); null while unknown. */
  readonly rtoS: number | null;
}

export interface Alert {
  /** Idempotency key: the same alert always has the same key. */
  readonly key: string;
  readonly kind: AlertKind;
  readonly severity: Severity;
  /** True for the message that ends a group (an incident closed). */
  readonly resolved: boolean;
  /** Messages of one group (one incident) are threaded: e-mail replies, one Alertmanager alert. */
  readonly groupKey: string;
  /** The host, VM, service or drill the alert is about. */
  readonly subject: string;
  readonly sourceSeq: number;
  readonly atMs: number;
  readonly services: readonly AlertService[];
  /** A few named facts for the message (host, reason, RTO…), in the order they should be shown. */
  readonly facts: Readonly<Record<string, string | number>>;
}

/** The services a set of VMs belongs to, with their tier targets and measured RTOs. */
export function servicesOf(blueprint: Blueprint, vms: readonly string[], rtoMsOf: (service: string) => number | null = () => null): AlertService[] {
  const names = new Set(vms.map((vm) => blueprint.vms.find((candidate) => candidate.name === vm)?.service).filter((name): name is string => name !== undefined));
  return blueprint.services
    .filter((service) => names.has(service.name))
    .map((service) => {
      const rtoMs = rtoMsOf(service.name);
      return { name: service.name, title: service.title, vendor: service.vendor, tier: service.tier, rtoTargetS: tierOf(blueprint, service).rtoS, rtoS: rtoMs === null ? null : Math.round(rtoMs / 100) / 10 };
    });
}

function alert(entry: JournalEntry, kind: AlertKind, severity: Severity, services: readonly AlertService[], facts: Record<string, string | number>, groupKey = `${kind}:${entry.seq}`): Alert {
  return { key: `${kind}:${entry.seq}`, kind, severity, resolved: false, groupKey, subject: entry.subject, sourceSeq: entry.seq, atMs: entry.atMs, services, facts };
}

/**
 * The alerts of one journal entry other than incidents (the fold gives those): a failed fence, a
 * degraded host, a ransomware alert, a quarantine, a failed snapshot restore, a drill's end, a new
 * leader. Pure: the same entry gives the same alerts.
 */
export function alertsOfEvent(entry: JournalEntry, blueprint: Blueprint): Alert[] {
  const onVm = (vm: string) => servicesOf(blueprint, [vm]);
  if ((isEvent(entry, 'fenceHost') || isEvent(entry, 'fence.completed')) && entry.data.ok === false) {
    const reason = isEvent(entry, 'fenceHost') ? (entry.data.refused ?? entry.data.reason) : entry.data.detail;
    return [alert(entry, 'fence.failed', 'critical', [], { host: entry.subject, reason })];
  }
  if (isEvent(entry, 'host.status') && (entry.data.to === 'isolated' || entry.data.to === 'storage-lost')) {
    return [alert(entry, 'host.degraded', 'warning', [], { host: entry.subject, status: entry.data.to, reason: entry.data.reason })];
  }
  if (isEvent(entry, 'host.degraded')) {
    const failing = entry.data.failing.map((copy) => copy.vm);
    return [alert(entry, 'host.degraded', 'warning', servicesOf(blueprint, failing), { host: entry.subject, status: 'degraded (gray failure)', failing: `${failing.length} of ${entry.data.copies} copies`, reason: entry.data.reason })];
  }
  if (isEvent(entry, 'snapshot.failed') && entry.data.first) {
    // Alerted at once, with the RPO now at risk; later failures of the same run are journaled only.
    const atRisk = entry.data.rpoAtRiskS;
    const severity = atRisk === null || atRisk > Math.max(entry.data.rpoTargetS, entry.data.snapshotIntervalS) ? 'critical' : 'warning';
    return [
      alert(entry, 'snapshot.failed', severity, onVm(entry.subject), {
        vm: entry.subject,
        datastore: entry.data.datastore,
        reason: entry.data.reason,
        rpoAtRiskS: atRisk === null ? 'no snapshot left' : atRisk,
      }),
    ];
  }
  if (isEvent(entry, 'security.alert')) {
    return [alert(entry, 'ransomware.alert', 'critical', onVm(entry.subject), { vm: entry.subject, detector: entry.data.detector, score: Math.round(entry.data.score * 100) / 100 })];
  }
  if (isEvent(entry, 'vm.quarantined')) {
    return [alert(entry, 'vm.quarantined', 'warning', onVm(entry.subject), { vm: entry.subject, reason: entry.data.reason, by: entry.actor })];
  }
  if ((isEvent(entry, 'restoreSnapshot') || isEvent(entry, 'snapshot.restore.started')) && entry.data.ok === false) {
    return [alert(entry, 'snapshot.failed', 'warning', onVm(entry.subject), { vm: entry.subject, reason: entry.data.refused ?? 'refused' })];
  }
  if (isEvent(entry, 'security.unrecoverable')) {
    return [alert(entry, 'snapshot.failed', 'critical', onVm(entry.subject), { vm: entry.subject, reason: entry.data.reason })];
  }
  if (isEvent(entry, 'drill.finished')) {
    const missed = entry.data.summary.missed ?? 0;
    return [alert(entry, 'drill.finished', missed > 0 ? 'warning' : 'info', [], { drill: entry.data.id, scenario: entry.subject, met: entry.data.summary.met ?? 0, missed })];
  }
  if (isEvent(entry, 'drill.failed')) {
    return [alert(entry, 'drill.finished', 'warning', [], { drill: entry.data.id, scenario: entry.subject, error: entry.data.error })];
  }
  if (isEvent(entry, 'controller.started')) {
    return [alert(entry, 'leader.changed', 'info', [], { leader: entry.actor, epoch: entry.data.epoch })];
  }
  return [];
}

/** The alert `tomaranai notify test` sends: marked as a test in every language. */
export function testAlert(receiver: string, atMs: number): Alert {
  return { key: `test:${receiver}:${atMs}`, kind: 'test', severity: 'info', resolved: false, groupKey: `test:${receiver}:${atMs}`, subject: receiver, sourceSeq: 0, atMs, services: [], facts: { receiver } };
}
