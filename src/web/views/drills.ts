/**
 * Drills: pick a scenario and a seed, run it on a fresh simulated twin, watch it, and read its
 * report — measured RTO/RPO per service against target (chart and table), the invariant counters,
 * the decisions taken and why — and open the printable report (the same document as
 * `tomaranai report`).
 */
import type { DrillDto } from '../../dto/index.ts';
import { api, ApiFailure } from '../api.ts';
import { announce, clear, h } from '../dom.ts';
import { lang, seconds, t } from '../i18n.ts';
import type { ViewContext } from '../context.ts';
import type { DrillReport } from '../../report/drill-report.ts';
import { renderDrillReportHtml } from '../../report/html.ts';
import { drawChart } from '../charts.ts';

/** A drill as the API answers (src/dto), its report typed as the drill report it is. */
type Drill = Omit<DrillDto, 'report'> & { readonly report?: DrillReport | null };

const POLL_MS = 400;
const POLL_LIMIT = 600;

async function scenarios(): Promise<string[]> {
  const response = await fetch('/openapi.json');
  const document = (await response.json()) as { paths: Record<string, Record<string, { requestBody?: { content: { 'application/json': { schema: { properties: { scenario: { enum: string[] } } } } } } }>> };
  return document.paths['/api/v1/drills']?.post?.requestBody?.content['application/json'].schema.properties.scenario.enum ?? ['host-failure'];
}

function reportSection(drill: Drill, report: DrillReport, cleanups: (() => void)[]): HTMLElement {
  const affected = report.services.filter((service) => service.affected || service.shed === true);
  const chart = h('div', { class: 'chart', id: 'rto-chart', role: 'img', 'aria-label': t('drills.rtoChart') });
  const section = h(
    'section',
    { id: 'drill-report', 'aria-labelledby': 'report-heading', 'data-drill': drill.id },
    h('h2', { id: 'report-heading' }, `${t('drills.report')}: ${report.scenario} (${t('drills.seed')} ${report.seed})`),
    h('p', {}, report.description),
    h('p', { class: 'summary' }, h('span', { class: 'state-up' }, `${t('drills.yes')}: ${report.summary.met}`), h('span', { class: 'state-down' }, `${t('drills.no')}: ${report.summary.missed}`), h('span', { class: 'state-shed' }, `${t('state.shed')}: ${report.summary.shed}`), h('span', {}, `${t('drills.unaffected')}: ${report.summary.unaffected}`)),
    h('button', { type: 'button', id: 'print-report', onclick: () => openPrintable(drill, report) }, t('drills.print')),
    h('h3', {}, t('drills.rtoChart')),
    chart,
    h(
      'table',
      { id: 'rto-table' },
      h('caption', { class: 'visually-hidden' }, t('drills.rtoChart')),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('drills.service')), h('th', { scope: 'col' }, t('drills.tier')), h('th', { scope: 'col', class: 'num' }, t('drills.rtoTarget')), h('th', { scope: 'col', class: 'num' }, t('drills.rtoMeasured')), h('th', { scope: 'col', class: 'num' }, t('drills.rpoTarget')), h('th', { scope: 'col', class: 'num' }, t('drills.rpoMeasured')), h('th', { scope: 'col' }, t('drills.met')))),
      h(
        'tbody',
        {},
        affected.map((service) =>
          h(
            'tr',
            { 'data-service': service.name },
            h('td', {}, service.name),
            h('td', {}, service.tier),
            h('td', { class: 'num' }, service.rtoTargetS),
            h('td', { class: 'num', 'data-rto': service.rtoMeasuredS ?? '' }, service.rtoMeasuredS ?? '—'),
            h('td', { class: 'num' }, service.rpoTargetS),
            h('td', { class: 'num' }, service.rpoMeasuredS ?? '—'),
            h('td', { class: service.met ? 'ok' : 'bad' }, service.met ? t('drills.yes') : `${t('drills.no')}${service.shed ? ` (${t('state.shed')}: ${service.reason ?? ''})` : ''}`),
          ),
        ),
      ),
    ),
    h('h3', {}, t('drills.invariants')),
    h(
      'ul',
      { id: 'invariants' },
      ([['drills.splitBrain', report.invariants.splitBrain], ['drills.lostVms', report.invariants.lostVms], ['drills.immutable', report.invariants.immutableViolations]] as const).map(([key, count]) =>
        h('li', { class: count === 0 ? 'ok' : 'bad' }, `${t(key)}: ${count}`),
      ),
    ),
    h('h3', {}, t('drills.decisions')),
    h('ol', { class: 'timeline', id: 'decisions' }, report.decisions.map((decision) => h('li', {}, h('span', { class: 't' }, `+${seconds(Math.max(0, decision.atS - report.faultAtS))}`), ' ', h('strong', {}, decision.type), ` ${decision.subject}`, decision.reason ? ` — ${decision.reason}` : ''))),
  );
  void drawChart(chart, {
    categories: affected.map((service) => service.name),
    yName: t('time.s'),
    logScale: true,
    series: [
      { name: t('drills.rtoMeasured'), kind: 'bar', color: '#1d4ed8', values: affected.map((service) => service.rtoMeasuredS) },
      { name: t('drills.rtoTarget'), kind: 'bar', color: '#9ca3af', values: affected.map((service) => service.rtoTargetS) },
    ],
  }).then((dispose) => cleanups.push(dispose));
  return section;
}

function openPrintable(drill: Drill, report: DrillReport): void {
  const html = renderDrillReportHtml(report, { lang: lang(), generatedAt: new Date().toISOString(), requestedBy: drill.actor, drillId: drill.id });
  const url = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
  const opened = window.open(url, '_blank');
  // Without a new window (a popup blocker), the report downloads instead.
  if (opened === null) {
    const link = h('a', { href: url, download: `drill-${report.scenario}-seed${report.seed}.html` });
    document.body.appendChild(link);
    link.click();
    link.remove();
  }
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function renderDrills({ me, main, rest }: ViewContext): Promise<() => void> {
  const cleanups: (() => void)[] = [];
  let stopped = false;
  main.appendChild(h('h1', {}, t('drills.title')));
  const mayStart = me.role === 'admin' || me.role === 'operator';
  const status = h('p', { id: 'drill-status', role: 'status' });
  const reportHost = h('div', {});
  const recent = h('section', { 'aria-labelledby': 'recent-heading' }, h('h2', { id: 'recent-heading' }, t('drills.recent')));
  if (mayStart) {
    const names = await scenarios();
    const form = h(
      'form',
      { id: 'drill-form', class: 'form-row', onsubmit: (event: Event) => {
        event.preventDefault();
        const data = new FormData(event.target as HTMLFormElement);
        void (async () => {
          try {
            const drill = await api<Drill>('/drills', { method: 'POST', body: { scenario: String(data.get('scenario')), seed: Number(data.get('seed')) } });
            location.hash = `#/drills/${drill.id}`;
          } catch (failure) {
            status.textContent = failure instanceof ApiFailure ? `${failure.code}: ${failure.message}` : String(failure);
          }
        })();
      } },
      h('div', {}, h('label', { for: 'scenario' }, t('drills.scenario')), h('select', { id: 'scenario', name: 'scenario' }, names.map((name) => h('option', { value: name }, name)))),
      h('div', {}, h('label', { for: 'seed' }, t('drills.seed')), h('input', { id: 'seed', name: 'seed', type: 'number', min: 0, max: 4294967295, value: 1, inputmode: 'numeric' })),
      h('button', { type: 'submit', id: 'run-drill' }, t('drills.run')),
    );
    main.appendChild(form);
  } else {
    main.appendChild(h('p', { class: 'muted' }, t('drills.readOnly')));
  }
  main.appendChild(status);
  main.appendChild(reportHost);
  main.appendChild(recent);

  const list = await api<{ drills: Drill[] }>('/drills');
  recent.appendChild(
    h('ul', { id: 'drill-list' }, [...list.drills].reverse().map((drill) => h('li', {}, h('a', { href: `#/drills/${drill.id}` }, `${drill.scenario} (${t('drills.seed')} ${drill.seed}) — ${drill.status} — ${drill.actor}`)))),
  );

  if (rest !== '') {
    void (async () => {
      for (let attempt = 0; attempt < POLL_LIMIT && !stopped; attempt++) {
        const drill = await api<Drill>(`/drills/${encodeURIComponent(rest)}`);
        if (stopped) return;
        if (drill.status === 'running') {
          status.textContent = `${t('drills.running')} (${drill.scenario}, ${t('drills.seed')} ${drill.seed})`;
          status.setAttribute('data-status', 'running');
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          continue;
        }
        status.setAttribute('data-status', drill.status);
        status.textContent = drill.status === 'failed' ? `${drill.status}: ${drill.error ?? ''}` : '';
        clear(reportHost);
        if (drill.report) reportHost.appendChild(reportSection(drill, drill.report, cleanups));
        announce(`${t('drills.report')}: ${drill.scenario}`);
        return;
      }
    })().catch((failure) => {
      status.textContent = failure instanceof ApiFailure ? `${failure.code}: ${failure.message}` : String(failure);
    });
  }
  return () => {
    stopped = true;
    for (const cleanup of cleanups) cleanup();
  };
}
