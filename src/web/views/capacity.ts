/** Capacity: CPU demand and ready time per host over the simulated day, plan vs now; what survives what. */
import type { CapacityDto } from '../../dto/index.ts';
import { api } from '../api.ts';
import { h } from '../dom.ts';
import { t } from '../i18n.ts';
import type { ViewContext } from '../context.ts';
import { drawChart, type Series } from '../charts.ts';

type Capacity = CapacityDto;

const PALETTE = ['#1d4ed8', '#b91c1c', '#047857', '#7c3aed', '#b45309', '#0e7490', '#be185d', '#4d7c0f', '#374151', '#9333ea', '#c2410c', '#0369a1'];
const HOURS = Array.from({ length: 24 }, (_, hour) => `${String(hour).padStart(2, '0')}:00`);

export async function renderCapacity({ main }: ViewContext): Promise<() => void> {
  const cleanups: (() => void)[] = [];
  main.appendChild(h('h1', {}, t('capacity.title')));
  const data = await api<Capacity>('/capacity');
  const demandChart = h('div', { class: 'chart', id: 'demand-chart', role: 'img', 'aria-label': t('capacity.demand') });
  const readyChart = h('div', { class: 'chart', id: 'ready-chart', role: 'img', 'aria-label': t('capacity.ready') });
  main.appendChild(h('section', {}, h('h2', {}, t('capacity.demand')), demandChart));
  main.appendChild(h('section', {}, h('h2', {}, t('capacity.ready')), readyChart));
  const series = (key: 'DemandCores' | 'ReadyPercent'): Series[] =>
    data.hosts.flatMap((host, index) => [
      { name: `${host.host} ${t('capacity.plan')}`, kind: 'line' as const, dashed: true, color: PALETTE[index % PALETTE.length]!, values: host[`plan${key}`] },
      { name: `${host.host} ${t('capacity.now')}`, kind: 'line' as const, color: PALETTE[index % PALETTE.length]!, values: host[`now${key}`] },
    ]);
  cleanups.push(await drawChart(demandChart, { categories: HOURS, series: series('DemandCores'), yName: 'cores' }));
  cleanups.push(await drawChart(readyChart, { categories: HOURS, series: series('ReadyPercent'), yName: '%' }));
  const peak = (values: number[]) => Math.max(0, ...values);
  main.appendChild(
    h(
      'table',
      { id: 'capacity-table' },
      h('caption', {}, `${t('capacity.peak')}: ${t('capacity.demand')}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('capacity.host')), h('th', { scope: 'col', class: 'num' }, 'cores'), h('th', { scope: 'col', class: 'num' }, `${t('capacity.plan')} (${t('capacity.peak')})`), h('th', { scope: 'col', class: 'num' }, `${t('capacity.now')} (${t('capacity.peak')})`), h('th', { scope: 'col', class: 'num' }, `ready % ${t('capacity.plan')}`), h('th', { scope: 'col', class: 'num' }, `ready % ${t('capacity.now')}`))),
      h('tbody', {}, data.hosts.map((host) => h('tr', {}, h('td', {}, host.host), h('td', { class: 'num' }, host.cores), h('td', { class: 'num' }, peak(host.planDemandCores)), h('td', { class: 'num' }, peak(host.nowDemandCores)), h('td', { class: 'num' }, peak(host.planReadyPercent)), h('td', { class: 'num' }, peak(host.nowReadyPercent))))),
    ),
  );
  main.appendChild(
    h(
      'section',
      { 'aria-labelledby': 'failures-heading' },
      h('h2', { id: 'failures-heading' }, t('capacity.failures')),
      h(
        'table',
        { id: 'failure-table' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('capacity.failed')), h('th', { scope: 'col' }, t('capacity.survivable')), h('th', { scope: 'col' }, t('capacity.shed')), h('th', { scope: 'col' }, t('capacity.late')), h('th', { scope: 'col', class: 'num' }, t('capacity.worst')))),
        h(
          'tbody',
          {},
          data.failures.map((row) =>
            h('tr', {}, h('td', {}, `${row.kind} ${row.ids.join(', ')}`), h('td', { class: row.survivable ? 'ok' : 'bad' }, row.survivable ? '✔' : '✘'), h('td', {}, row.shed.join(', ') || '—'), h('td', {}, [...row.late, ...row.lost].join(', ') || '—'), h('td', { class: 'num' }, row.worstRtoEstimateS)),
          ),
        ),
      ),
    ),
  );
  return () => cleanups.forEach((cleanup) => cleanup());
}
