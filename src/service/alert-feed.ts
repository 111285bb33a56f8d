/**
 * The alerts of the running hospital, entry by entry: incidents opened and closed and SLA misses
 * come from the same journal fold the API serves (JournalView), the rest from typed events
 * (notify/alert.ts). The same journal always gives the same alerts with the same keys, which is
 * what lets the notifier pick up after a restart without sending anything twice.
 */
import { alertsOfEvent, servicesOf, type Alert, type Severity } from '../notify/index.ts';
import type { JournalEntry } from '../ports/index.ts';
import { tierOf, type Blueprint } from '../model/index.ts';
import { JournalView, type IncidentView } from './journal-view.ts';

const URGENT_TIERS: ReadonlySet<string> = new Set(['continuous', 'critical']);

export class AlertFeed {
  private readonly view: JournalView;
  /** The journal entry at which each service's RTO was last measured. */
  private readonly rtoMeasuredAtSeq = new Map<string, number>();
  /** Incidents opened but not yet announced: they name no system yet. */
  private readonly pendingOpen = new Map<string, IncidentView>();
  /** The term of the last controller start: a controller restarted in the same term (a blueprint applied) is no new leader. */
  private lastEpoch: number | null = null;

  constructor(private readonly blueprint: Blueprint) {
    this.view = new JournalView(blueprint);
  }

  next(entry: JournalEntry): Alert[] {
    const open = this.view.incidents.filter((incident) => incident.recoveredAtMs === null);
    const rtoBefore = new Map(this.view.lastRtoMs);
    this.view.fold(entry);
    const alerts: Alert[] = [];
    const newest = this.view.incidents.at(-1);
    if (newest !== undefined && newest.id === `incident-${entry.seq}`) this.pendingOpen.set(newest.id, newest);
    // An incident is announced once it names the systems it hits (a host first declared isolated
    // names none until it is declared failed), or at the latest when it closes.
    for (const [id, incident] of this.pendingOpen) {
      if (incident.vmsAffected.length === 0 && incident.recoveredAtMs === null) continue;
      this.pendingOpen.delete(id);
      alerts.push(this.opened(incident, entry));
    }
    for (const [service, rtoMs] of this.view.lastRtoMs) {
      if (rtoBefore.get(service) === rtoMs) continue;
      this.rtoMeasuredAtSeq.set(service, entry.seq);
      const missed = this.slaMissed(service, rtoMs, entry);
      if (missed !== null) alerts.push(missed);
    }
    for (const incident of open) if (incident.recoveredAtMs !== null) alerts.push(this.closed(incident, entry));
    for (const alert of alertsOfEvent(entry, this.blueprint)) {
      if (alert.kind === 'leader.changed') {
        if (alert.facts.epoch === this.lastEpoch) continue;
        this.lastEpoch = Number(alert.facts.epoch);
      }
      alerts.push(alert);
    }
    return alerts;
  }

  private severityOf(incident: IncidentView): Severity {
    const services = servicesOf(this.blueprint, incident.vmsAffected);
    return services.length === 0 || services.some((service) => URGENT_TIERS.has(service.tier)) ? 'critical' : 'warning';
  }

  private opened(incident: IncidentView, entry: JournalEntry): Alert {
    const key = `incident.opened:${incident.id}`;
    return {
      key,
      kind: 'incident.opened',
      severity: this.severityOf(incident),
      resolved: false,
      groupKey: key,
      subject: incident.host,
      sourceSeq: entry.seq,
      atMs: entry.atMs,
      services: servicesOf(this.blueprint, incident.vmsAffected),
      facts: { incident: incident.id, host: incident.host, status: incident.kind.replace(/^host-/, '') },
    };
  }

  private closed(incident: IncidentView, entry: JournalEntry): Alert {
    const detectedSeq = incident.timeline[0] ?? 0;
    // An RTO counts for this incident only if it was measured after the incident was detected.
    const rtoMsOf = (service: string) => ((this.rtoMeasuredAtSeq.get(service) ?? 0) > detectedSeq ? (this.view.lastRtoMs.get(service) ?? null) : null);
    return {
      key: `incident.closed:${incident.id}`,
      kind: 'incident.closed',
      severity: this.severityOf(incident),
      resolved: true,
      groupKey: `incident.opened:${incident.id}`,
      subject: incident.host,
      sourceSeq: entry.seq,
      atMs: entry.atMs,
      services: servicesOf(this.blueprint, incident.vmsAffected, rtoMsOf),
      facts: { incident: incident.id, host: incident.host, outageS: Math.round((incident.recoveredAtMs! - incident.startedAtMs) / 100) / 10 },
    };
  }

  private slaMissed(serviceName: string, rtoMs: number, entry: JournalEntry): Alert | null {
    const service = this.blueprint.services.find((candidate) => candidate.name === serviceName);
    if (service === undefined) return null;
    const targetS = tierOf(this.blueprint, service).rtoS;
    if (rtoMs <= targetS * 1000) return null;
    const vm = service.vms[0]?.name;
    const services = servicesOf(this.blueprint, vm === undefined ? [] : [vm], () => rtoMs);
    return { key: `sla.missed:${entry.seq}:${serviceName}`, kind: 'sla.missed', severity: 'critical', resolved: false, groupKey: `sla.missed:${entry.seq}:${serviceName}`, subject: serviceName, sourceSeq: entry.seq, atMs: entry.atMs, services, facts: { service: serviceName, rtoS: Math.round(rtoMs / 100) / 10, targetS } };
  }
}
