/**
 * Hospital: every service as a tile grouped by tier, coloured (and labelled) by state, with the
 * measured RTO of its last incident against its tier's target; hosts drawn by room and rack with
 * their load, their VMs, and whether the generator feeds them. Refreshed every few seconds.
 */
import type { TopologyDto, TopologyHostDto } from '../../dto/index.ts';
import { api } from '../api.ts';
import { clear, h } from '../dom.ts';
import { seconds, t, type Key } from '../i18n.ts';
import type { ViewContext } from '../context.ts';
import { driftReader, drawDrift } from './drift.ts';
import { tileState, type ServiceView, type TierView } from '../state.ts';

type TopologyHost = TopologyHostDto;
type Topology = TopologyDto;

const REFRESH_MS = 3000;
const DRIFT_REFRESH_MS = 15_000;
/** The roles that read the journal (GET /audit), so see vSphere drift. */
const AUDIT_READERS = new Set(['admin', 'operator', 'auditor']);
let painted = false;

function tierLabel(tier: string): string {
  const key = `tier.${tier}` as Key;
  const text = t(key);
  return text === key ? tier : text;
}

function servicesSection(services: readonly ServiceView[], tiers: readonly TierView[]): HTMLElement {
  const section = h('section', { 'aria-labelledby': 'services-heading' }, h('h2', { id: 'services-heading' }, t('hospital.services')));
  const counts = new Map<string, number>();
  for (const service of services) counts.set(tileState(service), (counts.get(tileState(service)) ?? 0) + 1);
  section.appendChild(h('p', { class: 'summary', id: 'service-summary' }, [...counts].map(([state, count]) => h('span', { class: `state-${state}` }, `${t(`state.${state}` as Key)}: ${count}`))));
  const order = [...tiers].sort((a, b) => a.priority - b.priority);
  const targets = new Map(tiers.map((tier) => [tier.name, tier]));
  for (const tier of order) {
    const list = services.filter((service) => service.tier === tier.name);
    if (list.length === 0) continue;
    section.appendChild(
      h(
        'div',
        { class: 'tier' },
        h('h3', {}, `${tierLabel(tier.name)} — RTO ${seconds(tier.rtoS)}`),
        h(
          'ul',
          { class: 'tiles', 'data-tier': tier.name },
          list.map((service) => {
            const state = tileState(service);
            const target = targets.get(service.tier)?.rtoS ?? null;
            const late = service.lastRtoS !== null && target !== null && service.lastRtoS > target;
            return h(
              'li',
              { class: `tile state-${state}`, 'data-service': service.name, 'data-state': state },
              h('span', { class: 'name' }, service.name),
              h('span', { class: 'title' }, service.title),
              h('span', { class: 'state' }, t(`state.${state}` as Key)),
              h(
                'span',
                { class: 'rto' },
                service.lastRtoS === null
                  ? t('hospital.noIncident')
                  : h('span', { class: late ? 'bad' : 'ok' }, `${t('hospital.lastRto')} ${seconds(service.lastRtoS)} / ${t('hospital.target')} ${seconds(target)}`),
              ),
            );
          }),
        ),
      ),
    );
  }
  return section;
}

function hostsSection(topology: Topology): HTMLElement {
  const section = h('section', { 'aria-labelledby': 'hosts-heading' }, h('h2', { id: 'hosts-heading' }, t('hospital.hosts')));
  const rooms = h('div', { class: 'rooms' });
  for (const room of topology.rooms) {
    const racks = topology.racks.filter((rack) => rack.room === room);
    rooms.appendChild(
      h(
        'div',
        { class: 'room', 'data-room': room },
        h('h3', {}, `${t('hospital.room')} ${room}`),
        racks.map((rack) =>
          h(
            'div',
            { class: 'rack' },
            h('h3', {}, `${t('hospital.rack')} ${rack.name}`),
            h(
              'ul',
              { class: 'hosts' },
              topology.hosts
                .filter((host) => host.rack === rack.name)
                .map((host) => {
                  const loadPercent = Math.round((100 * host.vcpuUsed) / Math.max(1, host.cores));
                  return h(
                    'li',
                    { class: 'host', 'data-host': host.name },
                    h('strong', {}, host.name),
                    host.generator ? h('span', { class: 'badge gen' }, `⚡ ${t('hospital.generator')}`) : null,
                    host.status !== 'up' ? h('span', { class: 'badge bad' }, host.status) : null,
                    h('div', { class: 'bar', role: 'img', 'aria-label': `${t('hospital.load')} ${loadPercent}%` }, h('span', { style: `width:${Math.min(100, loadPercent)}%` })),
                    h('span', { class: 'vms' }, `${t('hospital.load')} ${host.vcpuUsed}/${host.cores} vCPU (${loadPercent}%), ${host.memoryGiBUsed}/${host.memoryGiB} GiB · ${t('hospital.vms')}: ${host.vms.map((vm) => vm.name).join(', ') || '—'}`),
                  );
                }),
            ),
          ),
        ),
      ),
    );
  }
  section.appendChild(rooms);
  return section;
}

/** The vSphere drift section below the hospital, refreshed on its own slower timer. */
function watchDrift(main: HTMLElement, stopped: () => boolean): () => void {
  const section = h('section', { id: 'vsphere-drift', 'aria-labelledby': 'drift-heading', 'aria-busy': 'true' }, h('h2', { id: 'drift-heading' }, t('drift.title')), h('p', {}, t('loading')));
  main.appendChild(section);
  const reader = driftReader();
  const load = async () => {
    try {
      const { reports, scanned } = await reader.refresh();
      if (stopped()) return;
      drawDrift(section, reports, scanned);
    } catch {
      if (stopped()) return;
      clear(section);
      section.appendChild(h('h2', { id: 'drift-heading' }, t('drift.title')));
      section.appendChild(h('p', { class: 'error' }, t('error.load')));
    }
    section.setAttribute('aria-busy', 'false');
  };
  void load();
  const timer = setInterval(() => void load(), DRIFT_REFRESH_MS);
  return () => clearInterval(timer);
}

export async function renderHospital({ me, main }: ViewContext): Promise<() => void> {
  const seesHosts = !me.role.startsWith('vendor:');
  main.appendChild(h('h1', {}, t('hospital.title')));
  if (me.role === 'viewer') main.appendChild(h('p', { class: 'muted' }, t('viewerNote')));
  if (me.role.startsWith('vendor:')) main.appendChild(h('p', { class: 'muted' }, t('vendorNote')));
  const body = h('div', { id: 'hospital', 'aria-busy': 'true' }, t('loading'));
  main.appendChild(body);
  let stopped = false;
  let tiers: TierView[] | null = null;
  const load = async () => {
    tiers ??= (await api<{ tiers: TierView[] }>('/tiers')).tiers;
    const [services, topology] = await Promise.all([api<{ services: ServiceView[] }>('/services'), seesHosts ? api<Topology>('/topology') : Promise.resolve(null)]);
    if (stopped) return;
    clear(body);
    body.setAttribute('aria-busy', 'false');
    body.appendChild(servicesSection(services.services, tiers));
    if (topology !== null) body.appendChild(hostsSection(topology));
    body.setAttribute('data-painted', 'true');
    if (!painted) {
      painted = true;
      performance.mark('hospital-painted');
    }
  };
  try {
    await load();
  } catch {
    clear(body);
    body.appendChild(h('p', { class: 'error' }, t('error.load')));
  }
  const timer = setInterval(() => void load().catch(() => {}), REFRESH_MS);
  const stopDrift = AUDIT_READERS.has(me.role) ? watchDrift(main, () => stopped) : () => {};
  return () => {
    stopped = true;
    clearInterval(timer);
    stopDrift();
  };
}
