/**
 * The printable drill report (HTML) for the hospital's business-continuity plan and its auditors:
 * scope, scenario, timeline, measured RTO/RPO per service against its SLA, what was shed and why,
 * the invariants, and the evidence mapped to the backup, restore-test and incident-response items
 * of MHLW's Guidelines on the Security Management of Medical Information Systems, version 6.0.
 * A pure function of the report (the caller passes the time it was generated): the same report
 * gives the same document, and it runs in the dashboard as well as in the CLI.
 */
import type { DrillReport, ServiceResult } from './drill-report.ts';

export type ReportLang = 'ja' | 'en';

export interface ReportContext {
  readonly lang?: ReportLang;
  /** When the document was made (ISO 8601), written by the caller. */
  readonly generatedAt?: string;
  /** The size of what the drill covered, when the caller has the blueprint. */
  readonly scope?: { readonly hospital?: string; readonly services: number; readonly vms: number; readonly hosts: number; readonly rooms?: number };
  /** Who asked for the drill (a dashboard drill knows it). */
  readonly requestedBy?: string;
  readonly drillId?: string;
}

const TEXT = {
  en: {
    title: 'Failure drill report',
    subtitle: 'Evidence for the business-continuity plan and for auditors',
    scope: 'Scope',
    hospital: 'Hospital (blueprint)',
    substrate: 'Where it ran',
    seed: 'Seed (replays the drill exactly)',
    size: 'Systems covered',
    sizeValue: (s: { services: number; vms: number; hosts: number; rooms?: number }) => `${s.services} services, ${s.vms} VMs, ${s.hosts} hosts${s.rooms ? ` in ${s.rooms} rooms` : ''}`,
    generated: 'Generated',
    requestedBy: 'Requested by',
    drill: 'Drill',
    replay: 'Replay',
    scenario: 'Scenario',
    faultAt: 'Fault at (simulated time)',
    endedAt: 'Drill ended (simulated time)',
    summary: 'Summary',
    summaryLine: (r: DrillReport) => `${r.summary.met} of ${r.services.length} services met their targets; ${r.summary.missed} missed (of which ${r.summary.shed} shed by decision); ${r.summary.unaffected} were not affected.`,
    timeline: 'Timeline',
    at: 'Time after the fault',
    event: 'Event',
    rtoRpo: 'Measured RTO and RPO per service against the SLA',
    rtoNote: 'Measured from the journal: fault injected → health check passing again (RTO); last replicated write → fault (RPO). Never taken from the plan.',
    service: 'Service',
    tier: 'Tier',
    rtoTarget: 'RTO target',
    rtoMeasured: 'RTO measured',
    rpoTarget: 'RPO target',
    rpoMeasured: 'RPO measured',
    met: 'Met',
    note: 'Note',
    yes: 'met',
    no: 'MISSED',
    notRecovered: 'not recovered',
    affectedOnly: 'Affected services (the others were untouched and are listed in the appendix).',
    chart: 'RTO measured against target, affected services (seconds, log scale)',
    shed: 'What was shed, and why',
    noShed: 'Nothing was shed: there was capacity for every service.',
    invariants: 'Safety invariants',
    invariant: 'Invariant',
    count: 'Count',
    verdict: 'Verdict',
    splitBrain: 'Two running copies of one VM (split brain)',
    lostVms: 'VMs lost (neither running, shed, quarantined nor being recovered)',
    immutable: 'Immutable snapshots deleted or changed before their retention ended',
    held: 'held',
    broken: 'BROKEN',
    mhlw: 'Evidence mapped to MHLW Security Guideline 6.0',
    mhlwNote: "This maps the drill's measured evidence to the items of the Ministry of Health, Labour and Welfare's Guidelines on the Security Management of Medical Information Systems, version 6.0 (May 2023), and the MHLW cybersecurity checklist for medical institutions. It is Tomaranai's reading of those items, for the hospital's own assessment; it is not a certification.",
    item: 'Guideline item',
    requirement: 'What it asks',
    evidence: 'Evidence from this drill',
    status: 'Status',
    satisfied: 'evidence present',
    gap: 'gap: see evidence',
    backup: 'Backups',
    backupReq: 'Backups kept in several generations, with at least one that an attacker on the network cannot alter (offline or immutable).',
    backupEvidence: (r: DrillReport, rpoMax: number | null) => `${r.invariants.immutableViolations} immutable-snapshot violations during the drill; the largest data loss measured was ${rpoMax === null ? 'not measurable (a service did not recover)' : `${fmt(rpoMax)} s`}; ${r.services.filter((s) => s.affected && s.rpoMeasuredS !== null && s.rpoMeasuredS <= s.rpoTargetS).length} of ${r.services.filter((s) => s.affected).length} affected services within their RPO.`,
    restore: 'Restore tests',
    restoreReq: 'Regular tests that systems and data can actually be restored, with the time it took.',
    restoreEvidence: (r: DrillReport, affected: number, metAffected: number) => `This drill (${r.scenario}, seed ${r.seed}) restored ${affected} affected services and measured each: ${metAffected} within their RTO. The same seed replays it exactly, so the test can be repeated and compared.`,
    response: 'Incident response and business continuity',
    responseReq: 'A business-continuity plan that covers system failures and cyber attacks; an incident response and recovery plan with an order of restoration.',
    responseEvidence: (r: DrillReport) => {
      const incident = r.incidents[0];
      const parts = incident
        ? [`fault ${incident.kind} on ${incident.target}`, incident.detectedAtS === null ? 'not detected' : `detected after ${fmt(incident.detectedAtS - incident.startedAtS)} s`, incident.fencedAtS === null ? 'no fencing needed' : `fenced after ${fmt(incident.fencedAtS - incident.startedAtS)} s`, incident.recoveredAtS === null ? 'NOT fully recovered' : `all recovered after ${fmt(incident.recoveredAtS - incident.startedAtS)} s`]
        : ['no incident recorded'];
      return `${parts.join('; ')}. Restart order followed the tiers (continuous, critical, standard, deferred); ${r.decisions.filter((d) => d.type === 'vm.shed').length} shed decisions recorded with their reasons; split-brain VMs: ${r.invariants.splitBrain}.`;
    },
    logs: 'Logs and accountability',
    logsReq: 'Access control and logs per user; actions traceable to who took them.',
    logsEvidence: (requestedBy: string | undefined) => `Every observation, decision and action of the drill is in an append-only, hash-chained journal${requestedBy ? `; the drill was requested by ${requestedBy}` : ''}. \`tomaranai audit verify\` checks the chain of the running service.`,
    appendix: 'Appendix: services not affected',
    decisions: 'Decisions',
    footer: 'Tomaranai — SLA-driven continuity control plane. Measured values come from the journal of the drill.',
    tierNames: { continuous: 'continuous', critical: 'critical', standard: 'standard', deferred: 'deferred' } as Record<string, string>,
    kinds: { fault: 'Fault injected', detected: 'Failure detected', fenced: 'Failed hosts fenced', recovered: 'Every affected service recovered', back: 'back' } as Record<string, string>,
  },
  ja: {
    title: '障害訓練報告書',
    subtitle: '事業継続計画（BCP）および監査のための証跡',
    scope: '対象範囲',
    hospital: '病院（ブループリント）',
    substrate: '実行環境',
    seed: 'シード（同じ訓練を正確に再現）',
    size: '対象システム',
    sizeValue: (s: { services: number; vms: number; hosts: number; rooms?: number }) => `${s.services} システム、${s.vms} VM、${s.hosts} ホスト${s.rooms ? `（サーバー室 ${s.rooms}）` : ''}`,
    generated: '作成日時',
    requestedBy: '実施依頼者',
    drill: '訓練 ID',
    replay: '再現コマンド',
    scenario: 'シナリオ',
    faultAt: '障害発生（シミュレーション時刻）',
    endedAt: '訓練終了（シミュレーション時刻）',
    summary: '概要',
    summaryLine: (r: DrillReport) => `${r.services.length} システム中 ${r.summary.met} が目標を達成、${r.summary.missed} が未達（うち判断による負荷制限 ${r.summary.shed}）、${r.summary.unaffected} は影響なし。`,
    timeline: 'タイムライン',
    at: '障害からの経過',
    event: '事象',
    rtoRpo: 'システムごとの RTO・RPO 実測値と SLA 目標',
    rtoNote: 'ジャーナルから実測：障害発生 → ヘルスチェック再成功（RTO）、最後に複製された書き込み → 障害（RPO）。計画値は使用していません。',
    service: 'システム',
    tier: '階層',
    rtoTarget: 'RTO 目標',
    rtoMeasured: 'RTO 実測',
    rpoTarget: 'RPO 目標',
    rpoMeasured: 'RPO 実測',
    met: '判定',
    note: '備考',
    yes: '達成',
    no: '未達',
    notRecovered: '未復旧',
    affectedOnly: '影響を受けたシステム（影響のなかったシステムは付録に記載）。',
    chart: '影響を受けたシステムの RTO 実測値と目標（秒、対数目盛）',
    shed: '負荷制限（停止）したシステムとその理由',
    noShed: '負荷制限はありません。すべてのシステムに十分な容量がありました。',
    invariants: '安全性の不変条件',
    invariant: '不変条件',
    count: '件数',
    verdict: '判定',
    splitBrain: '同一 VM の二重起動（スプリットブレイン）',
    lostVms: '喪失した VM（稼働・負荷制限・隔離・復旧中のいずれでもない）',
    immutable: '保持期間内の不変スナップショットの削除・変更',
    held: '維持',
    broken: '違反',
    mhlw: '医療情報システムの安全管理に関するガイドライン第6.0版との対応',
    mhlwNote: '本訓練で実測した証跡を、厚生労働省「医療情報システムの安全管理に関するガイドライン 第6.0版」（2023年5月）および「医療機関におけるサイバーセキュリティ対策チェックリスト」の項目に対応付けたものです。病院自身の評価のための Tomaranai による解釈であり、認証ではありません。',
    item: 'ガイドライン項目',
    requirement: '求められていること',
    evidence: '本訓練の証跡',
    status: '状況',
    satisfied: '証跡あり',
    gap: '要対応（証跡参照）',
    backup: 'バックアップ',
    backupReq: '複数世代のバックアップを保持し、少なくとも1つはネットワーク上の攻撃者が改変できない状態（オフラインまたは改変不可）で保管すること。',
    backupEvidence: (r: DrillReport, rpoMax: number | null) => `訓練中の不変スナップショット違反 ${r.invariants.immutableViolations} 件。実測した最大データ損失 ${rpoMax === null ? '測定不能（未復旧のシステムあり）' : `${fmt(rpoMax)} 秒`}。影響を受けた ${r.services.filter((s) => s.affected).length} システム中 ${r.services.filter((s) => s.affected && s.rpoMeasuredS !== null && s.rpoMeasuredS <= s.rpoTargetS).length} が RPO 内。`,
    restore: '復旧テスト',
    restoreReq: 'システムとデータが実際に復旧できることを定期的に確認し、要した時間を記録すること。',
    restoreEvidence: (r: DrillReport, affected: number, metAffected: number) => `本訓練（${r.scenario}、シード ${r.seed}）で影響を受けた ${affected} システムを復旧し、それぞれの時間を実測：${metAffected} が RTO 内。同じシードで正確に再現でき、繰り返し比較できます。`,
    response: 'インシデント対応・事業継続',
    responseReq: 'システム障害およびサイバー攻撃を想定した事業継続計画、復旧の優先順位を含むインシデント対応・復旧計画を備えること。',
    responseEvidence: (r: DrillReport) => {
      const incident = r.incidents[0];
      const parts = incident
        ? [`${incident.target} で ${incident.kind} が発生`, incident.detectedAtS === null ? '検知なし' : `${fmt(incident.detectedAtS - incident.startedAtS)} 秒後に検知`, incident.fencedAtS === null ? 'フェンシング不要' : `${fmt(incident.fencedAtS - incident.startedAtS)} 秒後にフェンシング`, incident.recoveredAtS === null ? '全面復旧せず' : `${fmt(incident.recoveredAtS - incident.startedAtS)} 秒後に全面復旧`]
        : ['障害の記録なし'];
      return `${parts.join('、')}。再起動は階層順（無停止、最重要、標準、後回し）。負荷制限の判断 ${r.decisions.filter((d) => d.type === 'vm.shed').length} 件を理由とともに記録。二重起動 VM ${r.invariants.splitBrain} 件。`;
    },
    logs: 'ログと説明責任',
    logsReq: '利用者ごとのアクセス制御とログ。操作を誰が行ったか追跡できること。',
    logsEvidence: (requestedBy: string | undefined) => `訓練中の観測・判断・操作はすべて追記専用のハッシュチェーン付きジャーナルに記録${requestedBy ? `。実施依頼者：${requestedBy}` : ''}。稼働中サービスのチェーンは \`tomaranai audit verify\` で検証できます。`,
    appendix: '付録：影響のなかったシステム',
    decisions: '判断',
    footer: 'Tomaranai — SLA 駆動の事業継続コントロールプレーン。実測値は訓練のジャーナルに基づきます。',
    tierNames: { continuous: '無停止', critical: '最重要', standard: '標準', deferred: '後回し' } as Record<string, string>,
    kinds: { fault: '障害発生', detected: '障害を検知', fenced: '障害ホストをフェンシング', recovered: '影響を受けた全システムが復旧', back: '復旧' } as Record<string, string>,
  },
};

function fmt(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);
}

function duration(value: number | null, lang: ReportLang): string {
  if (value === null) return '—';
  const s = lang === 'ja' ? ' 秒' : ' s';
  if (value < 120) return `${fmt(value)}${s}`;
  if (value < 7200) return `${fmt(value / 60)}${lang === 'ja' ? ' 分' : ' min'}`;
  return `${fmt(value / 3600)}${lang === 'ja' ? ' 時間' : ' h'}`;
}

function clock(seconds: number): string {
  const total = Math.floor(seconds);
  const days = Math.floor(total / 86400);
  const hh = String(Math.floor((total % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, '0');
  const ss = String(total % 60).padStart(2, '0');
  return `${days > 0 ? `day ${days + 1} ` : ''}${hh}:${mm}:${ss}`;
}

/** A horizontal bar chart as inline SVG (prints sharply, needs no script): measured bar, target tick. */
function rtoChart(services: readonly ServiceResult[], caption: string): string {
  if (services.length === 0) return '';
  const rowHeight = 22;
  const labelWidth = 170;
  const width = 640;
  const plotWidth = width - labelWidth - 120;
  const height = services.length * rowHeight + 30;
  const max = Math.max(1, ...services.flatMap((service) => [service.rtoTargetS, service.rtoMeasuredS ?? 0]));
  // A log scale: targets range from 5 s to a day.
  const x = (value: number) => labelWidth + (plotWidth * Math.log10(1 + Math.max(0, value))) / Math.log10(1 + max);
  const rows = services
    .map((service, index) => {
      const y = 20 + index * rowHeight;
      const measured = service.rtoMeasuredS;
      const colour = service.met ? '#166534' : '#991b1b';
      return `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end" font-size="12">${escapeHtml(service.name)}</text>
<rect x="${labelWidth}" y="${y + 3}" width="${measured === null ? 0 : Math.max(1, x(measured) - labelWidth)}" height="14" fill="${colour}"><title>${escapeHtml(service.name)}: ${measured ?? '—'} s</title></rect>
<line x1="${x(service.rtoTargetS)}" x2="${x(service.rtoTargetS)}" y1="${y}" y2="${y + 20}" stroke="#111827" stroke-width="2" stroke-dasharray="3 2"/>
<text x="${Math.max(x(measured ?? 0), x(service.rtoTargetS)) + 6}" y="${y + 14}" font-size="11">${measured === null ? '—' : fmt(measured)} / ${fmt(service.rtoTargetS)} s</text>`;
    })
    .join('\n');
  return `<figure><svg role="img" aria-label="${escapeHtml(caption)}" viewBox="0 0 ${width} ${height}" width="100%" xmlns="http://www.w3.org/2000/svg">${rows}</svg><figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

export function renderDrillReportHtml(report: DrillReport, context: ReportContext = {}): string {
  const lang = context.lang ?? 'ja';
  const T = TEXT[lang];
  const tierName = (tier: string) => T.tierNames[tier] ?? tier;
  const affected = report.services.filter((service) => service.affected || service.shed === true);
  const unaffected = report.services.filter((service) => !service.affected && service.shed !== true);
  const metAffected = affected.filter((service) => service.met).length;
  const rpoValues = affected.map((service) => service.rpoMeasuredS);
  const rpoMax = rpoValues.includes(null) ? null : Math.max(0, ...(rpoValues as number[]));
  const since = (atS: number) => `+${duration(Math.max(0, atS - report.faultAtS), lang)}`;

  const timeline: { atS: number; text: string }[] = [];
  for (const incident of report.incidents) {
    timeline.push({ atS: incident.startedAtS, text: `${T.kinds.fault}: ${incident.kind} — ${incident.target}` });
    if (incident.detectedAtS !== null) timeline.push({ atS: incident.detectedAtS, text: `${T.kinds.detected}: ${incident.target}` });
    if (incident.fencedAtS !== null) timeline.push({ atS: incident.fencedAtS, text: `${T.kinds.fenced}: ${incident.target}` });
    if (incident.recoveredAtS !== null) timeline.push({ atS: incident.recoveredAtS, text: `${T.kinds.recovered} (${incident.vmsAffected} VM)` });
  }
  for (const decision of report.decisions) {
    if (decision.type.startsWith('host.')) continue;
    timeline.push({ atS: decision.atS, text: `${T.decisions}: ${decision.type} ${decision.subject}${decision.reason ? ` — ${decision.reason}` : ''}` });
  }
  for (const service of affected) {
    if (service.rtoMeasuredS !== null && service.rtoMeasuredS > 0) timeline.push({ atS: report.faultAtS + service.rtoMeasuredS, text: `${service.name} ${T.kinds.back} (${duration(service.rtoMeasuredS, lang)} / ${T.rtoTarget} ${duration(service.rtoTargetS, lang)})` });
  }
  timeline.sort((a, b) => a.atS - b.atS);

  const serviceRow = (service: ServiceResult) => `<tr class="${service.met ? 'met' : 'missed'}">
<td>${escapeHtml(service.name)}</td><td>${escapeHtml(tierName(service.tier))}${service.effectiveTier ? ` → ${escapeHtml(tierName(service.effectiveTier))}` : ''}</td>
<td class="num">${duration(service.rtoTargetS, lang)}</td><td class="num">${service.rtoMeasuredS === null ? T.notRecovered : duration(service.rtoMeasuredS, lang)}</td>
<td class="num">${duration(service.rpoTargetS, lang)}</td><td class="num">${duration(service.rpoMeasuredS, lang)}</td>
<td>${service.met ? T.yes : `<strong>${T.no}</strong>`}</td><td>${escapeHtml([service.shed ? `shed: ${service.reason ?? ''}` : '', service.note ?? ''].filter(Boolean).join(' '))}</td></tr>`;
  const serviceHead = `<tr><th>${T.service}</th><th>${T.tier}</th><th class="num">${T.rtoTarget}</th><th class="num">${T.rtoMeasured}</th><th class="num">${T.rpoTarget}</th><th class="num">${T.rpoMeasured}</th><th>${T.met}</th><th>${T.note}</th></tr>`;

  const shedDecisions = report.decisions.filter((decision) => decision.type === 'vm.shed' || decision.type === 'vm.unshed');
  const invariantRows = (
    [
      [T.splitBrain, report.invariants.splitBrain],
      [T.lostVms, report.invariants.lostVms],
      [T.immutable, report.invariants.immutableViolations],
    ] as const
  )
    .map(([name, count]) => `<tr><td>${escapeHtml(name)}</td><td class="num">${count}</td><td>${count === 0 ? T.held : `<strong>${T.broken}</strong>`}</td></tr>`)
    .join('');
  const invariantsHeld = report.invariants.splitBrain === 0 && report.invariants.lostVms === 0 && report.invariants.immutableViolations === 0;
  const incidentRecovered = report.incidents.every((incident) => incident.recoveredAtS !== null);
  const mhlwRows = [
    [T.backup, T.backupReq, T.backupEvidence(report, rpoMax), report.invariants.immutableViolations === 0 && rpoMax !== null],
    [T.restore, T.restoreReq, T.restoreEvidence(report, affected.length, metAffected), incidentRecovered],
    [T.response, T.responseReq, T.responseEvidence(report), invariantsHeld && incidentRecovered],
    [T.logs, T.logsReq, T.logsEvidence(context.requestedBy), true],
  ] as const;

  const scopeRows: [string, string][] = [
    [T.hospital, report.blueprint],
    [T.scenario, `${report.scenario} — ${report.description}`],
    [T.substrate, report.substrate],
    [T.seed, String(report.seed)],
    ...(context.scope ? [[T.size, T.sizeValue(context.scope)] as [string, string]] : []),
    ...(context.drillId ? [[T.drill, context.drillId] as [string, string]] : []),
    ...(context.requestedBy ? [[T.requestedBy, context.requestedBy] as [string, string]] : []),
    ...(context.generatedAt ? [[T.generated, context.generatedAt] as [string, string]] : []),
    [T.faultAt, clock(report.faultAtS)],
    [T.endedAt, clock(report.endedAtS)],
    [T.replay, `npx tomaranai drill FILE --scenario ${report.scenario} --seed ${report.seed} --json`],
  ];

  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`${T.title} — ${report.scenario} (${report.blueprint})`)}</title>
<style>
  @page { size: A4; margin: 16mm 14mm; }
  body { font-family: 'Noto Sans CJK JP', 'Noto Sans JP', 'Hiragino Sans', 'Yu Gothic', system-ui, sans-serif; color: #111827; font-size: 11pt; line-height: 1.5; max-width: 190mm; margin: 0 auto; padding: 1em; }
  h1 { font-size: 18pt; margin: 0; } h2 { font-size: 13pt; border-bottom: 2px solid #1d4ed8; margin-top: 1.4em; page-break-after: avoid; }
  .subtitle { color: #374151; margin: .2em 0 1em; }
  table { border-collapse: collapse; width: 100%; margin: .5em 0; page-break-inside: auto; }
  tr { page-break-inside: avoid; }
  th, td { border: 1px solid #9ca3af; padding: .25em .4em; text-align: left; vertical-align: top; font-size: 9.5pt; }
  th { background: #f3f4f6; }
  td.num, th.num { text-align: right; white-space: nowrap; }
  tr.missed td { background: #fef2f2; }
  .verdict { font-weight: 700; }
  .note { color: #374151; font-size: 9.5pt; }
  figure { margin: .5em 0; } figcaption { font-size: 9pt; color: #374151; }
  footer { margin-top: 2em; font-size: 8.5pt; color: #374151; border-top: 1px solid #9ca3af; padding-top: .4em; }
  ol.timeline { padding-left: 1.2em; } ol.timeline li { margin: .1em 0; }
  ol.timeline .t { display: inline-block; min-width: 6.5em; font-variant-numeric: tabular-nums; color: #374151; }
</style>
</head>
<body>
<header><h1>${T.title}</h1><p class="subtitle">${T.subtitle}</p></header>
<section id="scope"><h2>1. ${T.scope}</h2><table>${scopeRows.map(([key, value]) => `<tr><th scope="row">${escapeHtml(key)}</th><td>${escapeHtml(value)}</td></tr>`).join('')}</table>
<p class="verdict" id="summary">${escapeHtml(T.summaryLine(report))}</p></section>
<section id="timeline"><h2>2. ${T.timeline}</h2><ol class="timeline">${timeline.map((item) => `<li><span class="t">${since(item.atS)}</span> ${escapeHtml(item.text)}</li>`).join('')}</ol></section>
<section id="rto-rpo"><h2>3. ${T.rtoRpo}</h2><p class="note">${T.rtoNote}</p><p>${T.affectedOnly}</p>
${rtoChart(affected, T.chart)}
<table><thead>${serviceHead}</thead><tbody>${affected.map(serviceRow).join('')}</tbody></table></section>
<section id="shed"><h2>4. ${T.shed}</h2>${
    shedDecisions.length === 0 && report.services.every((service) => service.shed !== true)
      ? `<p>${T.noShed}</p>`
      : `<table><tr><th>${T.at}</th><th>${T.event}</th><th>VM</th><th>${T.note}</th></tr>${shedDecisions.map((decision) => `<tr><td class="num">${since(decision.atS)}</td><td>${escapeHtml(decision.type)}</td><td>${escapeHtml(decision.subject)}</td><td>${escapeHtml(decision.reason)}</td></tr>`).join('')}</table>`
  }</section>
<section id="invariants"><h2>5. ${T.invariants}</h2><table><tr><th>${T.invariant}</th><th class="num">${T.count}</th><th>${T.verdict}</th></tr>${invariantRows}</table></section>
<section id="mhlw"><h2>6. ${T.mhlw}</h2><p class="note">${T.mhlwNote}</p>
<table class="mhlw"><colgroup><col style="width:17%"><col style="width:29%"><col style="width:42%"><col style="width:12%"></colgroup><tr><th>${T.item}</th><th>${T.requirement}</th><th>${T.evidence}</th><th>${T.status}</th></tr>${mhlwRows
    .map(([item, requirement, evidence, ok]) => `<tr><td>${escapeHtml(item)}</td><td>${escapeHtml(requirement)}</td><td>${escapeHtml(evidence)}</td><td class="verdict">${ok ? T.satisfied : T.gap}</td></tr>`)
    .join('')}</table></section>
<section id="appendix"><h2>${T.appendix}</h2><p>${unaffected.map((service) => escapeHtml(`${service.name} (${tierName(service.tier)})`)).join(', ') || '—'}</p></section>
<footer>${T.footer}</footer>
</body>
</html>
`;
}
