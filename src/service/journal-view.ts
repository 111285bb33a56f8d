/**
 * The service's view folded from the journal: host status, shed and quarantined VMs, hosts held
 * for maintenance, incidents and the last measured RTO per service. Leader and followers fold the
 * same entries, so both answer reads the same way, and a restarted service rebuilds it by folding
 * the journal again from the start.
 */
import { asEvent, isEvent, type EventEntry, type JournalEntry } from '../ports/index.ts';
import type { HostStatus } from '../control/state.ts';
import type { Blueprint } from '../model/index.ts';

export interface IncidentView {
  readonly id: string;
  /** host-failed, host-isolated or host-storage-lost; an isolation that turns into a failure becomes host-failed. */
  kind: string;
  readonly host: string;
  startedAtMs: number;
  readonly detectedAtMs: number;
  fencedAtMs: number | null;
  recoveredAtMs: number | null;
  readonly vmsAffected: string[];
  /** Journal sequence numbers of the entries that tell the incident, oldest first (bounded). */
  readonly timeline: number[];
}

export interface MaintenanceWindow {
  readonly id: string;
  readonly service: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly actor: string;
  readonly reason: string;
}

export interface RestoreRequest {
  readonly id: string;
  readonly snapshotId: string;
  readonly vm: string;
  readonly reason: string;
  readonly requestedBy: string;
  status: 'awaiting-approval' | 'approved' | 'rejected';
  decidedBy: string | null;
}

/** A restart the disruption budget refused, waiting for another person's approval (or decided). */
export interface DisruptionApproval {
  readonly id: string;
  readonly kind: 'restart';
  readonly vm: string;
  readonly reason: string;
  /** What the request would break, as the budget said when it refused it. */
  readonly breaks: string;
  readonly requestedBy: string;
  readonly requestedAtMs: number;
  status: 'awaiting-approval' | 'approved' | 'rejected';
  decidedBy: string | null;
}

const TIMELINE_LIMIT = 500;
const INCIDENT_LIMIT = 1000;
const BAD_STATUSES: ReadonlySet<string> = new Set(['failed', 'isolated', 'storage-lost']);

export class JournalView {
  readonly hostStatus = new Map<string, HostStatus>();
  readonly shedReason = new Map<string, string>();
  readonly quarantined = new Map<string, { reason: string; actor: string; atMs: number }>();
  readonly maintenance = new Map<string, { reason: string; actor: string; atMs: number }>();
  readonly windows = new Map<string, MaintenanceWindow>();
  readonly restores = new Map<string, RestoreRequest>();
  readonly approvals = new Map<string, DisruptionApproval>();
  readonly incidents: IncidentView[] = [];
  readonly lastRtoMs = new Map<string, number>();
  readonly primaryHost = new Map<string, string>();
  private readonly downSinceMs = new Map<string, number>();
  private readonly openIncidentOfHost = new Map<string, IncidentView>();
  private readonly serviceOfVm: ReadonlyMap<string, string>;
  lastSeq = 0;
  lastAtMs = 0;

  constructor(blueprint: Blueprint) {
    this.serviceOfVm = new Map(blueprint.vms.map((vm) => [vm.name, vm.service]));
  }

  fold(entry: JournalEntry): void {
    if (entry.seq <= this.lastSeq) return;
    this.lastSeq = entry.seq;
    this.lastAtMs = entry.atMs;
    const event = asEvent(entry);
    switch (event.type) {
      case 'host.status':
        this.onHostStatus(entry, event.data.to as HostStatus);
        break;
      case 'heartbeat.lost':
        for (const [vm, host] of this.primaryHost) {
          if (host === entry.subject && !this.downSinceMs.has(vm)) this.downSinceMs.set(vm, event.data.lastSeenAtMs ?? entry.atMs);
        }
        break;
      case 'fence.completed':
        if (event.data.ok === true) {
          const incident = this.openIncidentOfHost.get(entry.subject);
          if (incident && incident.fencedAtMs === null) incident.fencedAtMs = entry.atMs;
        }
        break;
      case 'vm.instance':
        this.onInstance(event);
        break;
      case 'vm.removed':
        if (this.primaryHost.get(entry.subject) === event.data.host && !this.downSinceMs.has(entry.subject)) this.downSinceMs.set(entry.subject, entry.atMs);
        break;
      case 'vm.shed':
        this.shedReason.set(entry.subject, event.data.reason);
        break;
      case 'vm.unshed':
        this.shedReason.delete(entry.subject);
        break;
      case 'vm.quarantined':
        this.quarantined.set(entry.subject, { reason: event.data.reason, actor: entry.actor, atMs: entry.atMs });
        break;
      case 'vm.released':
        this.quarantined.delete(entry.subject);
        break;
      case 'host.maintenance.started':
        this.maintenance.set(entry.subject, { reason: event.data.reason, actor: entry.actor, atMs: entry.atMs });
        break;
      case 'host.maintenance.ended':
        this.maintenance.delete(entry.subject);
        break;
      case 'maintenance-window.opened':
        this.windows.set(event.data.id, {
          id: event.data.id,
          service: entry.subject,
          fromMs: event.data.fromMs,
          toMs: event.data.toMs,
          actor: entry.actor,
          reason: event.data.reason,
        });
        break;
      case 'snapshot.restore.requested':
        this.restores.set(event.data.id, {
          id: event.data.id,
          snapshotId: event.data.snapshotId,
          vm: entry.subject,
          reason: event.data.reason,
          requestedBy: entry.actor,
          status: event.data.approved === true ? 'approved' : 'awaiting-approval',
          decidedBy: event.data.approved === true ? entry.actor : null,
        });
        break;
      case 'disruption.approval.requested':
        this.approvals.set(event.data.id, {
          id: event.data.id,
          kind: event.data.kind,
          vm: entry.subject,
          reason: event.data.reason,
          breaks: event.data.breaks,
          requestedBy: entry.actor,
          requestedAtMs: entry.atMs,
          status: 'awaiting-approval',
          decidedBy: null,
        });
        break;
      case 'disruption.approval.decided': {
        const approval = this.approvals.get(event.data.id);
        if (approval) {
          approval.status = event.data.approved === true ? 'approved' : 'rejected';
          approval.decidedBy = entry.actor;
        }
        break;
      }
      case 'snapshot.restore.decided': {
        const request = this.restores.get(event.data.id);
        if (request) {
          request.status = event.data.approved === true ? 'approved' : 'rejected';
          request.decidedBy = entry.actor;
        }
        break;
      }
    }
    this.extendTimelines(entry);
  }

  private onHostStatus(entry: JournalEntry, to: HostStatus): void {
    const from = this.hostStatus.get(entry.subject);
    this.hostStatus.set(entry.subject, to);
    if (BAD_STATUSES.has(to) && !this.openIncidentOfHost.has(entry.subject)) {
      const vmsAffected = to === 'isolated' ? [] : [...this.primaryHost].filter(([, host]) => host === entry.subject).map(([vm]) => vm);
      let startedAtMs = entry.atMs;
      for (const vm of vmsAffected) startedAtMs = Math.min(startedAtMs, this.downSinceMs.get(vm) ?? entry.atMs);
      const incident: IncidentView = {
        id: `incident-${entry.seq}`,
        kind: `host-${to}`,
        host: entry.subject,
        startedAtMs,
        detectedAtMs: entry.atMs,
        fencedAtMs: null,
        recoveredAtMs: null,
        vmsAffected,
        timeline: [entry.seq],
      };
      this.incidents.push(incident);
      if (this.incidents.length > INCIDENT_LIMIT) this.incidents.shift();
      this.openIncidentOfHost.set(entry.subject, incident);
    }
    const open = this.openIncidentOfHost.get(entry.subject);
    if (open !== undefined && open.kind === 'host-isolated' && (to === 'failed' || to === 'storage-lost')) {
      // The isolation was a failure after all: the incident now covers the VMs the host ran, and
      // closes only once they are back (not as soon as the host is fenced).
      open.kind = `host-${to}`;
      for (const [vm, host] of this.primaryHost) {
        if (host !== entry.subject || open.vmsAffected.includes(vm)) continue;
        open.vmsAffected.push(vm);
        open.startedAtMs = Math.min(open.startedAtMs, this.downSinceMs.get(vm) ?? open.startedAtMs);
      }
    }
    if (to === 'up' && from !== undefined) this.closeIfRecovered(entry.subject, entry.atMs);
  }

  private onInstance(entry: EventEntry<'vm.instance'>): void {
    const data = entry.data;
    if (data.role !== 'primary') return;
    const vm = entry.subject;
    if (data.state === 'running' && data.healthy === true) {
      const since = this.downSinceMs.get(vm);
      if (since !== undefined) {
        this.downSinceMs.delete(vm);
        const service = this.serviceOfVm.get(vm);
        if (service !== undefined) this.lastRtoMs.set(service, entry.atMs - since);
      }
      this.primaryHost.set(vm, data.host);
      for (const host of this.openIncidentOfHost.keys()) this.closeIfRecovered(host, entry.atMs);
    } else if (data.state === 'running' && data.healthy === false && this.primaryHost.get(vm) === data.host) {
      if (!this.downSinceMs.has(vm)) this.downSinceMs.set(vm, entry.atMs);
    }
  }

  private closeIfRecovered(host: string, atMs: number): void {
    const incident = this.openIncidentOfHost.get(host);
    if (incident === undefined) return;
    const waiting = incident.vmsAffected.some((vm) => this.downSinceMs.has(vm) && !this.shedReason.has(vm));
    const hostBack = this.hostStatus.get(host) === 'up' || this.hostStatus.get(host) === 'fenced';
    if (!waiting && hostBack) {
      incident.recoveredAtMs = atMs;
      this.openIncidentOfHost.delete(host);
    }
  }

  private extendTimelines(entry: JournalEntry): void {
    if (entry.kind === 'observation' && isEvent(entry, 'vm.instance') && entry.data.healthy !== true) return;
    for (const incident of this.openIncidentOfHost.values()) {
      if (incident.timeline.length >= TIMELINE_LIMIT || incident.timeline.at(-1) === entry.seq) continue;
      if (entry.subject === incident.host || incident.vmsAffected.includes(entry.subject)) incident.timeline.push(entry.seq);
    }
  }

  isDown(vm: string): boolean {
    return this.downSinceMs.has(vm);
  }
}
