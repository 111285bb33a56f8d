/** Audit: the journal with filters (type, actor, subject), paged, and the chain's verification. */
import { api, ApiFailure } from '../api.ts';
import { clear, h } from '../dom.ts';
import { t } from '../i18n.ts';
import type { ViewContext } from '../context.ts';
import type { JournalEntry } from '../api.ts';
import { renderDeliveries } from './deliveries.ts';

const PAGE = 2000;
const SHOWN = 300;

export async function renderAudit({ me, main }: ViewContext): Promise<void> {
  main.appendChild(h('h1', {}, t('audit.title')));
  const verdict = h('p', { id: 'audit-verdict', role: 'status' });
  const verify = async () => {
    try {
      const result = await api<{ ok: boolean; checked: number; firstBad: { seq: number; reason: string } | null }>('/audit/verify');
      verdict.className = result.ok ? 'ok' : 'bad';
      verdict.setAttribute('data-ok', String(result.ok));
      verdict.textContent = result.ok ? `✔ ${t('audit.verified')} (${result.checked} ${t('audit.entries')})` : `✘ ${t('audit.tampered')} #${result.firstBad?.seq}: ${result.firstBad?.reason}`;
    } catch (failure) {
      verdict.textContent = failure instanceof ApiFailure ? failure.code : String(failure);
    }
  };
  const filters = { type: '', actor: '', subject: '' };
  const body = h('tbody', {});
  const count = h('p', { id: 'audit-count' });
  let entries: JournalEntry[] = [];
  let nextSeq: number | null = 1;
  const draw = () => {
    clear(body);
    const shown = entries.filter((entry) => entry.type.includes(filters.type) && entry.actor.includes(filters.actor) && entry.subject.includes(filters.subject)).slice(-SHOWN).reverse();
    count.textContent = `${shown.length} / ${entries.length} ${t('audit.entries')}`;
    for (const entry of shown) {
      body.appendChild(h('tr', {}, h('td', { class: 'num' }, entry.seq), h('td', { class: 'num' }, (entry.atMs / 1000).toFixed(1)), h('td', {}, entry.type), h('td', {}, entry.subject), h('td', {}, entry.actor)));
    }
  };
  const loadMore = async () => {
    // Reads forward from where it stopped: the newest entries are the ones people look for.
    for (let pages = 0; pages < 20 && nextSeq !== null; pages++) {
      const page = await api<{ entries: JournalEntry[]; nextSeq: number | null }>(`/audit?fromSeq=${nextSeq}&limit=${PAGE}`);
      entries = entries.concat(page.entries).slice(-50_000);
      nextSeq = page.nextSeq;
    }
    draw();
  };
  const input = (key: keyof typeof filters, label: string) =>
    h('div', {}, h('label', { for: `filter-${key}` }, label), h('input', { id: `filter-${key}`, name: key, type: 'search' }));
  const form = h(
    'form',
    { class: 'form-row', id: 'audit-filter', onsubmit: (event: Event) => {
      event.preventDefault();
      const data = new FormData(event.target as HTMLFormElement);
      filters.type = String(data.get('type') ?? '');
      filters.actor = String(data.get('actor') ?? '');
      filters.subject = String(data.get('subject') ?? '');
      draw();
    } },
    input('type', t('audit.filter.type')),
    input('actor', t('audit.filter.actor')),
    input('subject', t('audit.filter.subject')),
    h('button', { type: 'submit' }, t('audit.filter.apply')),
    h('button', { type: 'button', class: 'secondary', id: 'verify', onclick: () => void verify() }, t('audit.verify')),
    h('button', { type: 'button', class: 'secondary', onclick: () => void loadMore() }, t('audit.older')),
  );
  main.appendChild(verdict);
  main.appendChild(form);
  main.appendChild(count);
  main.appendChild(
    h('table', { id: 'audit-table' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, t('audit.seq')), h('th', { scope: 'col', class: 'num' }, `${t('audit.time')} (s)`), h('th', { scope: 'col' }, t('audit.type')), h('th', { scope: 'col' }, t('audit.subject')), h('th', { scope: 'col' }, t('audit.actor')))), body),
  );
  void me;
  await Promise.all([verify(), loadMore(), renderDeliveries(main)]);
}
