/** The notifier's delivery log (GET /api/v1/notifications), under the audit log: who was told what, and when it failed. */
import type { DeliveriesDto } from '../../dto/index.ts';
import { api, ApiFailure } from '../api.ts';
import { h } from '../dom.ts';
import { t } from '../i18n.ts';

export async function renderDeliveries(main: HTMLElement): Promise<void> {
  const section = h('section', { id: 'deliveries', 'aria-labelledby': 'deliveries-title' }, h('h2', { id: 'deliveries-title' }, t('deliveries.title')));
  main.appendChild(section);
  let log: DeliveriesDto;
  try {
    log = await api<DeliveriesDto>('/notifications?limit=100');
  } catch (failure) {
    section.appendChild(h('p', {}, failure instanceof ApiFailure ? failure.code : String(failure)));
    return;
  }
  if (log.deliveries.length === 0) {
    section.appendChild(h('p', { id: 'deliveries-none' }, t('deliveries.none')));
    return;
  }
  const rows = log.deliveries.map((delivery) =>
    h(
      'tr',
      { 'data-outcome': delivery.outcome },
      h('td', { class: 'num' }, delivery.seq),
      h('td', {}, delivery.receiver),
      h('td', {}, delivery.alert ?? '—'),
      h('td', { class: delivery.outcome === 'sent' ? 'ok' : delivery.outcome === 'cursor' ? '' : 'bad' }, delivery.outcome),
      h('td', { class: 'num' }, delivery.attempt ?? '—'),
      h('td', {}, delivery.detail),
    ),
  );
  section.appendChild(
    h(
      'table',
      { id: 'deliveries-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, '#'), h('th', { scope: 'col' }, t('deliveries.receiver')), h('th', { scope: 'col' }, t('deliveries.alert')), h('th', { scope: 'col' }, t('deliveries.outcome')), h('th', { scope: 'col', class: 'num' }, t('deliveries.attempt')), h('th', { scope: 'col' }, t('deliveries.detail')))),
      h('tbody', {}, ...rows),
    ),
  );
}
