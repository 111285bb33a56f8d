/**
 * vSphere drift on the Hospital view: the latest reports of `serve --vsphere-drift` (journalled as
 * `vsphere.drift` audit entries), each with what appeared (vCenter's value against the blueprint's)
 * and what cleared. Reads /audit from the end, a page at a time, then only what is new.
 */
import { api, type JournalEntry } from '../api.ts';
import { clear, h } from '../dom.ts';
import { t } from '../i18n.ts';

const PAGE = 2000;
/** How far back the first read looks (the watch reports once when it starts, so a running watch shows up). */
const LOOK_BACK = 10_000;
const KEEP = 5;

interface DriftData {
  readonly differences?: number;
  readonly appeared?: readonly string[];
  readonly appearedCount?: number;
  readonly cleared?: readonly string[];
  readonly clearedCount?: number;
  readonly queuedAtMs?: number;
}

interface Page {
  readonly entries: JournalEntry[];
  readonly nextSeq: number | null;
  readonly length: number;
}

/** "AREA TARGET: VCENTER (blueprint: BLUEPRINT)", as the drift loop writes each appeared line. */
export function parseDifference(line: string): { kind: string; object: string; vcenter: string; blueprint: string } | null {
  const match = /^(\S+) (.*?): (.*) \(blueprint: (.*)\)$/.exec(line);
  return match === null ? null : { kind: match[1]!, object: match[2]!, vcenter: match[3]!, blueprint: match[4]! };
}

/** Keeps the newest `vsphere.drift` entries; `refresh` reads only entries it has not seen. */
export function driftReader(): { refresh(): Promise<{ reports: JournalEntry[]; scanned: number }> } {
  let reports: JournalEntry[] = [];
  let nextSeq: number | null = null;
  let scanned = 0;
  const keep = (entries: readonly JournalEntry[]) => {
    reports = reports.concat(entries.filter((entry) => entry.type === 'vsphere.drift')).sort((a, b) => a.seq - b.seq).slice(-KEEP);
  };
  return {
    async refresh() {
      if (nextSeq === null) {
        const { length } = await api<Page>('/audit?fromSeq=1&limit=1');
        // Backwards from the end, a page at a time, until enough reports or LOOK_BACK entries.
        let to = length;
        while (to >= 1 && scanned < LOOK_BACK && reports.length < KEEP) {
          const from = Math.max(1, to - PAGE + 1);
          keep((await api<Page>(`/audit?fromSeq=${from}&limit=${to - from + 1}`)).entries);
          scanned += to - from + 1;
          to = from - 1;
        }
        nextSeq = length + 1;
      }
      for (let pages = 0; pages < 5; pages++) {
        const page: Page = await api<Page>(`/audit?fromSeq=${nextSeq}&limit=${PAGE}`);
        keep(page.entries);
        scanned += page.entries.length;
        nextSeq = page.entries.at(-1) === undefined ? nextSeq : page.entries.at(-1)!.seq + 1;
        if (page.nextSeq === null) break;
      }
      return { reports, scanned };
    },
  };
}

function when(entry: JournalEntry): string {
  const data = entry.data as DriftData;
  const ms = typeof data.queuedAtMs === 'number' ? data.queuedAtMs : entry.atMs;
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

function report(entry: JournalEntry): HTMLElement {
  const data = entry.data as DriftData;
  const appeared = data.appeared ?? [];
  const cleared = data.cleared ?? [];
  const more = (count: number | undefined, shown: number) => (count !== undefined && count > shown ? h('p', { class: 'muted' }, `+${count - shown}`) : null);
  return h(
    'li',
    { class: 'drift-report', 'data-seq': entry.seq },
    h('p', {}, h('strong', {}, when(entry)), ` · ${entry.subject} · ${t('drift.now')}: `, h('span', { class: (data.differences ?? 0) > 0 ? 'bad' : 'ok', 'data-differences': data.differences ?? 0 }, String(data.differences ?? 0))),
    appeared.length === 0
      ? null
      : h(
          'table',
          { class: 'drift-table' },
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('drift.kind')), h('th', { scope: 'col' }, t('drift.object')), h('th', { scope: 'col' }, t('drift.vcenter')), h('th', { scope: 'col' }, t('drift.blueprint')))),
          h(
            'tbody',
            {},
            appeared.map((line) => {
              const parsed = parseDifference(line);
              return parsed === null
                ? h('tr', { class: 'drift-difference' }, h('td', { colspan: 4 }, line))
                : h('tr', { class: 'drift-difference' }, h('td', {}, parsed.kind), h('td', {}, parsed.object), h('td', {}, parsed.vcenter), h('td', {}, parsed.blueprint));
            }),
          ),
        ),
    more(data.appearedCount, appeared.length),
    cleared.length === 0 ? null : h('p', { class: 'drift-cleared' }, `${t('drift.cleared')}: ${cleared.join(', ')}`),
    more(data.clearedCount, cleared.length),
  );
}

/** Draws the section into `section` (emptied first). */
export function drawDrift(section: HTMLElement, reports: readonly JournalEntry[], scanned: number): void {
  clear(section);
  section.appendChild(h('h2', { id: 'drift-heading' }, t('drift.title')));
  const latest = reports.at(-1);
  if (latest === undefined) {
    section.setAttribute('data-drift', 'none');
    section.appendChild(h('p', { class: 'muted', id: 'drift-state' }, `${t('drift.notConfigured')} (${scanned} ${t('audit.entries')})`));
    return;
  }
  const differences = (latest.data as DriftData).differences ?? 0;
  section.setAttribute('data-drift', differences > 0 ? 'drift' : 'clean');
  section.appendChild(h('p', { id: 'drift-state', class: differences > 0 ? 'bad' : 'ok' }, differences > 0 ? `${t('drift.differs')}: ${differences}` : `✔ ${t('drift.none')}`));
  section.appendChild(h('ol', { class: 'drift-reports', reversed: true }, [...reports].reverse().map(report)));
}
