/**
 * Turns journal entries into the steps of an incident as people tell it: fault, detection,
 * fencing, failover, restarts in order, and each service back with its measured time (from the
 * fault, or from the first sign of it when no fault was recorded). Everything else is left out.
 */
import type { EventEntry, JournalEvent } from '../ports/index.ts';
import type { JournalEntry } from './api.ts';

export type StepKind = 'fault' | 'detection' | 'decision' | 'fencing' | 'failover' | 'restart' | 'shed' | 'back' | 'host' | 'drill';

export interface Step {
  readonly seq: number;
  readonly atMs: number;
  readonly kind: StepKind;
  readonly subject: string;
  readonly text: string;
  /** For `back`: seconds from the start of the incident, and the tier's target. */
  readonly measuredS?: number;
  readonly targetS?: number;
  readonly service?: string;
}

export interface ServiceInfo {
  readonly service: string;
  readonly tier: string;
}

export class IncidentTimeline {
  private startMs: number | null = null;
  private active = false;
  private readonly down = new Set<string>();
  private readonly touched = new Set<string>();

  constructor(
    private readonly serviceOfVm: ReadonlyMap<string, ServiceInfo>,
    private readonly targetOfTier: ReadonlyMap<string, number>,
    private readonly vmsOfService: ReadonlyMap<string, readonly string[]>,
  ) {}

  get open(): boolean {
    return this.active;
  }

  /** The steps this entry adds (none for most entries). */
  add(entry: JournalEntry): Step[] {
    // The API's entries are the journal's (src/ports/events.ts); an unknown type matches no case.
    const event = entry as unknown as JournalEvent;
    const step = (kind: StepKind, text: string, extra: Partial<Step> = {}): Step[] => [{ seq: entry.seq, atMs: entry.atMs, kind, subject: entry.subject, text, ...extra }];
    switch (event.type) {
      case 'fault.injected':
        this.begin(entry.atMs);
        return step('fault', `${event.data.kind ?? 'fault'} ${entry.subject}`);
      case 'fault.repaired':
        return step('host', `repaired ${entry.subject}`);
      case 'heartbeat.lost':
        this.begin(entry.atMs);
        return step('detection', `heartbeat lost ${entry.subject}${event.data.channel ? ` (${event.data.channel})` : ''}`);
      case 'host.status': {
        const to = event.data.to;
        if (to === 'suspect') return step('detection', `${entry.subject} suspect`);
        if (to === 'failed' || to === 'isolated' || to === 'storage-lost') {
          this.begin(entry.atMs);
          return step('detection', `${entry.subject} declared ${to}`);
        }
        // A host that comes back before anything was restarted (a short isolation) ends the incident.
        if (to === 'up' && this.touched.size === 0) this.active = false;
        return step('host', `${entry.subject} ${to}`);
      }
      case 'recovery.planned':
        return step('decision', `recovery planned${event.data.unavailable.length > 0 ? ` (${event.data.unavailable.length} VMs to bring back)` : ''}`);
      case 'fenceHost':
        return step('fencing', `fence ${entry.subject} sent`);
      case 'fence.completed':
        return step('fencing', `${entry.subject} fenced${event.data.ok === false ? ' (FAILED)' : ''}`);
      case 'promoteSecondary':
        if (event.data.ok !== true) return [];
        this.mark(entry.subject);
        return step('failover', `${entry.subject} secondary promoted`);
      case 'startVm':
        if (event.data.ok !== true || event.data.role === 'secondary') return [];
        this.mark(entry.subject);
        return step('restart', `${entry.subject} starting${event.data.host ? ` on ${event.data.host}` : ''}`);
      case 'vm.shed':
        return step('shed', `${entry.subject} shed: ${event.data.reason ?? ''}`);
      case 'vm.cold-restart':
        return step('decision', `${entry.subject} cold restart: ${event.data.reason ?? ''}`);
      case 'vm.instance':
        return this.instance(event);
      case 'drill.requested':
      case 'drill.finished':
        return step('drill', `${event.type.replace('drill.', 'drill ')} ${entry.subject}`);
      default:
        return [];
    }
  }

  /** An incident starts at its fault, or at its first sign when no fault was recorded. */
  private begin(atMs: number): void {
    if (this.active) return;
    this.active = true;
    this.startMs = atMs;
    this.down.clear();
    this.touched.clear();
  }

  private mark(vm: string): void {
    if (!this.active) return;
    this.down.add(vm);
    this.touched.add(vm);
  }

  private instance(entry: EventEntry<'vm.instance'>): Step[] {
    const data = entry.data;
    if (data.role !== 'primary' || data.state !== 'running' || data.healthy !== true || !this.down.has(entry.subject) || this.startMs === null) return [];
    this.down.delete(entry.subject);
    if (this.down.size === 0) this.active = false;
    const info = this.serviceOfVm.get(entry.subject);
    if (info === undefined) return [];
    const vms = this.vmsOfService.get(info.service) ?? [entry.subject];
    // A service is back when none of its touched VMs is still down.
    if (vms.some((vm) => this.down.has(vm))) return [];
    const measuredS = Math.round((entry.atMs - this.startMs) / 100) / 10;
    const targetS = this.targetOfTier.get(info.tier);
    return [{ seq: entry.seq, atMs: entry.atMs, kind: 'back', subject: info.service, service: info.service, text: `${info.service} back`, measuredS, ...(targetS === undefined ? {} : { targetS }) }];
  }
}
