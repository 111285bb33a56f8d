/**
 * Prometheus metrics through prom-client: the process's own (CPU, memory, event loop, GC), and the
 * control plane's, read from the plane and the journal at scrape time. Each app has its own
 * registry (tests build many). monitoring/prometheus/tomaranai.rules.yml and
 * monitoring/grafana/tomaranai.json are written against these names; docs/alerts.md lists them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ApiDeps, HealthState } from './deps.ts';
import { Monitoring } from './monitoring.ts';

const HOST_STATUSES = ['up', 'suspect', 'isolated', 'storage-lost', 'failed', 'fenced', 'unknown'];

const attached = new WeakMap<ApiDeps, { monitoring: Monitoring; health: { current: HealthState | null }; snapshot: Snapshot }>();

function gauge(registry: Registry, name: string, help: string, labelNames: readonly string[], collect: (gauge: Gauge) => void | Promise<void>): void {
  new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    async collect() {
      this.reset();
      await collect(this);
    },
  });
}

/** What one scrape reads from the plane, once, before the collectors run (they run concurrently). */
interface Snapshot {
  services: Awaited<ReturnType<ApiDeps['plane']['services']>>;
  hosts: Awaited<ReturnType<ApiDeps['plane']['hosts']>>;
}

function attachPlane(monitoring: Monitoring, deps: ApiDeps, health: { current: HealthState | null }, snapshot: Snapshot): void {
  const registry = monitoring.registry;
  const plane = deps.plane;
  const services = () => snapshot.services;
  gauge(registry, 'tomaranai_service_up', 'Whether every VM of the service runs and answers its health check (1) or not (0)', ['service', 'tier'], (metric) => {
    for (const service of services()) metric.set({ service: service.name, tier: service.tier }, service.state === 'up' ? 1 : 0);
  });
  const perTier = () => {
    const counts = new Map<string, { up: number; total: number }>();
    for (const service of services()) {
      const tier = counts.get(service.tier) ?? { up: 0, total: 0 };
      tier.total++;
      if (service.state === 'up') tier.up++;
      counts.set(service.tier, tier);
    }
    return counts;
  };
  gauge(registry, 'tomaranai_services_up', 'Services up, per SLA tier', ['tier'], (metric) => {
    for (const [tier, count] of perTier()) metric.set({ tier }, count.up);
  });
  gauge(registry, 'tomaranai_services', 'Services, per SLA tier', ['tier'], (metric) => {
    for (const [tier, count] of perTier()) metric.set({ tier }, count.total);
  });
  gauge(registry, 'tomaranai_service_rto_seconds', 'Last measured recovery time per service (from the journal)', ['service', 'tier'], (metric) => {
    for (const service of services()) if (service.lastRtoS !== null) metric.set({ service: service.name, tier: service.tier }, service.lastRtoS);
  });
  gauge(registry, 'tomaranai_service_rto_target_seconds', "The RTO target of the service's SLA tier", ['service', 'tier'], (metric) => {
    for (const service of services()) {
      const tier = plane.blueprint.tiers.get(service.tier);
      if (tier !== undefined) metric.set({ service: service.name, tier: service.tier }, tier.rtoS);
    }
  });
  gauge(registry, 'tomaranai_service_last_incident_timestamp_seconds', 'When the last incident that hit the service began (Unix seconds)', ['service'], (metric) => {
    const last = new Map<string, number>();
    for (const incident of plane.incidents()) {
      for (const vm of incident.vmsAffected) {
        const service = plane.serviceOfVm(vm);
        if (service !== null) last.set(service, Math.max(last.get(service) ?? 0, incident.startedAtMs));
      }
    }
    for (const [service, atMs] of last) metric.set({ service }, atMs / 1000);
  });
  attachCluster(registry, deps, health, snapshot);
  attachNotifier(monitoring);
}

function attachCluster(registry: Registry, deps: ApiDeps, health: { current: HealthState | null }, snapshot: Snapshot): void {
  const plane = deps.plane;
  new Counter({
    name: 'tomaranai_incidents_total',
    help: 'Incidents since the journal began',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(plane.incidents().length);
    },
  });
  gauge(registry, 'tomaranai_incidents_open', 'Incidents not yet recovered', [], (metric) => metric.set(plane.incidents().filter((incident) => incident.recoveredAtMs === null).length));
  gauge(registry, 'tomaranai_hosts', 'Hosts per status', ['status'], (metric) => {
    const counts = new Map<string, number>();
    for (const host of snapshot.hosts) counts.set(host.status, (counts.get(host.status) ?? 0) + 1);
    for (const status of HOST_STATUSES) metric.set({ status }, counts.get(status) ?? 0);
  });
  gauge(registry, 'tomaranai_host_status', 'Each host with its status (1 for the status it has)', ['host', 'status'], (metric) => {
    for (const host of snapshot.hosts) metric.set({ host: host.name, status: host.status }, 1);
  });
  gauge(registry, 'tomaranai_leader', 'Whether this instance leads (1) or follows (0)', ['instance'], (metric) => {
    if (health.current !== null) metric.set({ instance: health.current.instanceId }, health.current.role === 'leader' ? 1 : 0);
  });
  gauge(registry, 'tomaranai_epoch', 'The fencing epoch (leadership term) this instance knows', [], (metric) => metric.set(health.current?.epoch ?? 0));
  gauge(registry, 'tomaranai_journal_entries', 'Entries in the journal', [], (metric) => metric.set(deps.journal.length));
  gauge(registry, 'tomaranai_journal_lag_entries', 'Journal entries appended but not yet durable', [], (metric) => metric.set(deps.journal.lagEntries ?? 0));
  gauge(registry, 'tomaranai_journal_lag_seconds', 'Age of the newest journal entry relative to the control plane clock', [], (metric) =>
    metric.set(Math.max(0, (plane.clock.nowMs() - plane.view.lastAtMs) / 1000)),
  );
}

function attachNotifier(monitoring: Monitoring): void {
  gauge(monitoring.registry, 'tomaranai_notify_queue_depth', 'Alerts waiting for delivery, per receiver', ['receiver'], (metric) => {
    for (const [receiver, depth] of monitoring.notifier?.queueDepths() ?? []) metric.set({ receiver }, depth);
  });
  gauge(monitoring.registry, 'tomaranai_notify_deliveries', 'Delivery attempts since this instance started notifying, per receiver and outcome', ['receiver', 'outcome'], (metric) => {
    for (const [receiver, counts] of monitoring.notifier?.outcomes ?? []) {
      for (const outcome of ['sent', 'failed', 'dropped'] as const) metric.set({ receiver, outcome }, counts[outcome]);
    }
  });
}

export async function renderMetrics(deps: ApiDeps, health: HealthState): Promise<string> {
  let state = attached.get(deps);
  if (state === undefined) {
    state = { monitoring: deps.monitoring ?? new Monitoring(), health: { current: null }, snapshot: { services: [], hosts: [] } };
    attachPlane(state.monitoring, deps, state.health, state.snapshot);
    attached.set(deps, state);
  }
  state.health.current = health;
  state.snapshot.services = await deps.plane.services();
  state.snapshot.hosts = await deps.plane.hosts();
  return state.monitoring.registry.metrics();
}
