/** Prometheus text exposition, computed at scrape time from the control plane and the journal. */
import type { ApiDeps, HealthState } from './deps.ts';

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

class Exposition {
  private readonly lines: string[] = [];
  family(name: string, type: 'gauge' | 'counter', help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, labels: Record<string, string>, value: number): void {
    const text = Object.entries(labels)
      .map(([key, label]) => `${key}="${escapeLabel(label)}"`)
      .join(',');
    this.lines.push(`${name}${text ? `{${text}}` : ''} ${Number.isFinite(value) ? value : 'NaN'}`);
  }
  toString(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

export async function renderMetrics(deps: ApiDeps, health: HealthState): Promise<string> {
  const plane = deps.plane;
  const out = new Exposition();
  const services = await plane.services();

  out.family('tomaranai_service_up', 'gauge', 'Whether every VM of the service runs and answers its health check (1) or not (0)');
  for (const service of services) out.sample('tomaranai_service_up', { service: service.name, tier: service.tier }, service.state === 'up' ? 1 : 0);

  const perTier = new Map<string, { up: number; total: number }>();
  for (const service of services) {
    const tier = perTier.get(service.tier) ?? { up: 0, total: 0 };
    tier.total++;
    if (service.state === 'up') tier.up++;
    perTier.set(service.tier, tier);
  }
  out.family('tomaranai_services_up', 'gauge', 'Services up, per SLA tier');
  for (const [tier, count] of perTier) out.sample('tomaranai_services_up', { tier }, count.up);
  out.family('tomaranai_services', 'gauge', 'Services, per SLA tier');
  for (const [tier, count] of perTier) out.sample('tomaranai_services', { tier }, count.total);

  out.family('tomaranai_service_rto_seconds', 'gauge', 'Last measured recovery time per service (from the journal)');
  for (const service of services) if (service.lastRtoS !== null) out.sample('tomaranai_service_rto_seconds', { service: service.name, tier: service.tier }, service.lastRtoS);

  const incidents = plane.incidents();
  out.family('tomaranai_incidents_total', 'counter', 'Incidents since the journal began');
  out.sample('tomaranai_incidents_total', {}, incidents.length);
  out.family('tomaranai_incidents_open', 'gauge', 'Incidents not yet recovered');
  out.sample('tomaranai_incidents_open', {}, incidents.filter((incident) => incident.recoveredAtMs === null).length);

  const hostStates = new Map<string, number>();
  for (const host of await plane.hosts()) hostStates.set(host.status, (hostStates.get(host.status) ?? 0) + 1);
  out.family('tomaranai_hosts', 'gauge', 'Hosts per status');
  for (const status of ['up', 'suspect', 'isolated', 'storage-lost', 'failed', 'fenced', 'unknown']) out.sample('tomaranai_hosts', { status }, hostStates.get(status) ?? 0);

  out.family('tomaranai_leader', 'gauge', 'Whether this instance leads (1) or follows (0)');
  out.sample('tomaranai_leader', { instance: health.instanceId }, health.role === 'leader' ? 1 : 0);
  out.family('tomaranai_epoch', 'gauge', 'The fencing epoch (leadership term) this instance knows');
  out.sample('tomaranai_epoch', {}, health.epoch);
  out.family('tomaranai_journal_entries', 'gauge', 'Entries in the journal');
  out.sample('tomaranai_journal_entries', {}, deps.journal.length);
  out.family('tomaranai_journal_lag_entries', 'gauge', 'Journal entries appended but not yet durable');
  out.sample('tomaranai_journal_lag_entries', {}, deps.journal.lagEntries ?? 0);
  out.family('tomaranai_journal_lag_seconds', 'gauge', 'Age of the newest journal entry relative to the control plane clock');
  out.sample('tomaranai_journal_lag_seconds', {}, Math.max(0, (plane.clock.nowMs() - plane.view.lastAtMs) / 1000));
  return out.toString();
}
