/** Security: the segmentation graph and attack paths, quarantined VMs, recent anomalies. */
import { api } from '../api.ts';
import { h } from '../dom.ts';
import { t } from '../i18n.ts';
import type { ViewContext } from '../context.ts';

interface Security {
  totals: { rules: number; vms: number; vmPairsAllowed: number; vmPairsFlat: number; reductionPercent: number };
  nodes: { id: string; kind: string; tier: string | null }[];
  edges: { from: string; to: string; ports: number[] }[];
  entries: { entry: string; kind: string; description: string; vmsReached: number; continuousReached: number; paths: { service: string; hops: string[] | null }[] }[];
  flatVmsReachedMax: number;
  segmentedVmsReachedMax: number;
  cutFirst: { from: string; to: string; port: number; pairsCut: number }[];
  quarantined: string[];
  anomalies: { seq: number; atMs: number; type: string; subject: string; data: Record<string, unknown> }[];
}

const TIER_COLOUR: Record<string, string> = { continuous: '#991b1b', critical: '#9a3412', standard: '#1e40af', deferred: '#4b5563' };

/** The segmentation graph drawn as a circle of services and networks with their allowed flows (SVG). */
function graph(security: Security): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const size = 760;
  const radius = 300;
  const centre = size / 2;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${t('security.graph')}: ${security.nodes.length} nodes, ${security.edges.length} edges`);
  svg.style.maxWidth = '760px';
  svg.style.width = '100%';
  const position = new Map(security.nodes.map((node, index) => {
    const angle = (2 * Math.PI * index) / security.nodes.length;
    return [node.id, { x: centre + radius * Math.cos(angle), y: centre + radius * Math.sin(angle), angle }];
  }));
  for (const edge of security.edges) {
    const from = position.get(edge.from);
    const to = position.get(edge.to);
    if (!from || !to) continue;
    const line = document.createElementNS(ns, 'line');
    line.setAttribute('x1', String(from.x));
    line.setAttribute('y1', String(from.y));
    line.setAttribute('x2', String(to.x));
    line.setAttribute('y2', String(to.y));
    line.setAttribute('stroke', '#9ca3af');
    line.setAttribute('stroke-width', '0.6');
    svg.appendChild(line);
  }
  for (const node of security.nodes) {
    const place = position.get(node.id)!;
    const circle = document.createElementNS(ns, 'circle');
    circle.setAttribute('cx', String(place.x));
    circle.setAttribute('cy', String(place.y));
    circle.setAttribute('r', node.kind === 'service' ? '6' : '8');
    circle.setAttribute('fill', node.kind === 'service' ? TIER_COLOUR[node.tier ?? ''] ?? '#111827' : security.quarantined.length > 0 && node.kind === 'network:forensic' ? '#6b21a8' : '#111827');
    svg.appendChild(circle);
    const label = document.createElementNS(ns, 'text');
    const outward = Math.cos(place.angle) >= 0;
    label.setAttribute('x', String(place.x + (outward ? 10 : -10)));
    label.setAttribute('y', String(place.y + 4));
    label.setAttribute('font-size', '11');
    label.setAttribute('text-anchor', outward ? 'start' : 'end');
    label.textContent = node.id;
    svg.appendChild(label);
  }
  return svg;
}

export async function renderSecurity({ main }: ViewContext): Promise<void> {
  main.appendChild(h('h1', {}, t('security.title')));
  const security = await api<Security>('/security');
  main.appendChild(
    h('section', { class: 'panel' }, h('h2', {}, t('security.segmentation')), h('p', { id: 'segmentation-totals' }, `${security.totals.rules} ${t('security.rules')}; ${security.totals.vmPairsAllowed} / ${security.totals.vmPairsFlat} ${t('security.pairs')} (${security.totals.reductionPercent}% ${t('security.reduction')})`)),
  );
  main.appendChild(
    h(
      'div',
      { class: 'cols' },
      h('section', {}, h('h2', {}, t('security.quarantined')), h('ul', { id: 'quarantined' }, security.quarantined.length === 0 ? h('li', {}, t('security.none')) : security.quarantined.map((vm) => h('li', {}, vm)))),
      h(
        'section',
        {},
        h('h2', {}, t('security.anomalies')),
        h(
          'ul',
          { id: 'anomalies' },
          security.anomalies.length === 0
            ? h('li', {}, t('security.none'))
            : security.anomalies.map((anomaly) => {
                const intrusion = anomaly.data.estimatedIntrusionAtMs ?? anomaly.data.intrusionAtMs ?? anomaly.data.estimatedIntrusionMs;
                return h('li', {}, `#${anomaly.seq} ${anomaly.type} ${anomaly.subject}${typeof intrusion === 'number' ? ` — ${t('security.intrusion')} ${(intrusion / 1000).toFixed(0)} s` : ''}`);
              }),
        ),
      ),
    ),
  );
  main.appendChild(h('section', {}, h('h2', {}, t('security.graph')), graph(security)));
  main.appendChild(
    h(
      'section',
      {},
      h('h2', {}, t('security.paths')),
      h(
        'table',
        { id: 'attack-paths' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('security.entry')), h('th', { scope: 'col', class: 'num' }, t('security.reach')), h('th', { scope: 'col' }, t('security.paths')))),
        h('tbody', {}, security.entries.map((entry) => h('tr', {}, h('td', {}, `${entry.entry} — ${entry.description}`), h('td', { class: 'num' }, entry.vmsReached), h('td', {}, entry.paths.map((path) => h('div', {}, `${path.service}: ${path.hops === null ? t('security.unreachable') : path.hops.join(' → ')}`)))))),
      ),
      h('h3', {}, t('security.cut')),
      h('ol', {}, security.cutFirst.map((flow) => h('li', {}, `${flow.from} → ${flow.to}:${flow.port} (${flow.pairsCut})`))),
    ),
  );
}
