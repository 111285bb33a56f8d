/**
 * An alert as people read it, in Japanese or English: a one-line title and a few lines of text.
 * Every receiver sends the same words (e-mail body, webhook `text`, SNMP trap message).
 */
import type { Alert, AlertKind, AlertService } from './alert.ts';

export type Language = 'ja' | 'en';

export interface Message {
  readonly title: string;
  readonly lines: readonly string[];
  readonly text: string;
}

const TITLES: Record<Language, Record<AlertKind, string>> = {
  en: {
    'incident.opened': 'INCIDENT: host {host} {status}',
    'incident.closed': 'RECOVERED: host {host}',
    'sla.missed': 'SLA MISSED: {subject}',
    'fence.failed': 'FENCE FAILED: host {host}',
    'host.degraded': 'HOST DEGRADED: {host} {status}',
    'ransomware.alert': 'RANSOMWARE ALERT: {vm}',
    'vm.quarantined': 'QUARANTINED: {vm}',
    'snapshot.failed': 'SNAPSHOT RESTORE FAILED: {vm}',
    'drill.finished': 'DRILL FINISHED: {scenario}',
    'audit.checkpoint-failed': 'AUDIT CHECKPOINT FAILED',
    'leader.changed': 'NEW LEADER: term {epoch}',
    test: 'TEST message to {receiver}',
  },
  ja: {
    'incident.opened': '障害発生: ホスト {host} ({status})',
    'incident.closed': '復旧: ホスト {host}',
    'sla.missed': 'SLA 未達: {subject}',
    'fence.failed': 'フェンシング失敗: ホスト {host}',
    'host.degraded': 'ホスト劣化: {host} ({status})',
    'ransomware.alert': 'ランサムウェア検知: {vm}',
    'vm.quarantined': '隔離: {vm}',
    'snapshot.failed': 'スナップショット復元失敗: {vm}',
    'drill.finished': '訓練終了: {scenario}',
    'audit.checkpoint-failed': '監査チェックポイント失敗',
    'leader.changed': 'リーダー交代: 期 {epoch}',
    test: 'テスト送信: {receiver}',
  },
};

const WORDS = {
  en: { services: 'Systems', none: 'no system affected', target: 'target', met: 'met', missed: 'MISSED', pending: 'measuring', severity: 'Severity', at: 'At', seconds: 's', test: 'This is a test message from Tomaranai; no action is needed.' },
  ja: { services: '対象システム', none: '影響を受けたシステムはありません', target: '目標', met: '達成', missed: '未達', pending: '計測中', severity: '重大度', at: '発生時刻', seconds: '秒', test: 'Tomaranai からのテスト送信です。対応は不要です。' },
} as const;

const FACT_NAMES: Record<Language, Record<string, string>> = {
  en: { outageS: 'outage (s)', rtoS: 'RTO (s)', targetS: 'target (s)' },
  ja: { host: 'ホスト', status: '状態', reason: '理由', vm: 'VM', detector: '検知器', score: 'スコア', by: '実施者', drill: '訓練', scenario: 'シナリオ', met: '達成', missed: '未達', error: 'エラー', leader: 'リーダー', epoch: '期', incident: 'インシデント', receiver: '受信先', kind: '種別', outageS: '停止時間 (秒)', service: 'システム', rtoS: 'RTO (秒)', targetS: '目標 (秒)', repeat: '再通知' },
};

function fill(template: string, alert: Alert): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'subject' ? alert.subject : String(alert.facts[name] ?? alert.subject)));
}

function serviceLine(service: AlertService, language: Language, kind: AlertKind): string {
  const words = WORDS[language];
  const head = `${service.name} (${service.title}, ${service.tier})`;
  if (kind === 'incident.opened' || service.rtoS === null) {
    return kind === 'incident.opened' ? `${head}: ${words.target} RTO ${service.rtoTargetS} ${words.seconds}` : `${head}: RTO ${words.pending}, ${words.target} ${service.rtoTargetS} ${words.seconds}`;
  }
  const met = service.rtoS <= service.rtoTargetS;
  return `${head}: RTO ${service.rtoS} ${words.seconds} / ${words.target} ${service.rtoTargetS} ${words.seconds} ${met ? `✓ ${words.met}` : `✗ ${words.missed}`}`;
}

/** The time of an alert in the receiver's language, on the wall clock (ISO 8601, UTC). */
function when(atMs: number): string {
  return new Date(atMs).toISOString().replace('.000Z', 'Z');
}

export function renderMessage(alert: Alert, language: Language): Message {
  const words = WORDS[language];
  const title = `[Tomaranai] ${fill(TITLES[language][alert.kind], alert)}`;
  const lines: string[] = [];
  if (alert.kind === 'test') lines.push(words.test);
  lines.push(`${words.severity}: ${alert.severity}${alert.resolved ? ' (resolved)' : ''}`, `${words.at}: ${when(alert.atMs)}`);
  for (const [name, value] of Object.entries(alert.facts)) lines.push(`${FACT_NAMES[language][name] ?? name}: ${value}`);
  if (alert.kind.startsWith('incident.') || alert.kind === 'sla.missed') {
    lines.push(`${words.services}:`);
    if (alert.services.length === 0) lines.push(`  ${words.none}`);
    for (const service of alert.services) lines.push(`  - ${serviceLine(service, language, alert.kind)}`);
  } else if (alert.services.length > 0) {
    lines.push(`${words.services}: ${alert.services.map((service) => `${service.name} (${service.tier})`).join(', ')}`);
  }
  lines.push(`key: ${alert.key}`);
  return { title, lines, text: `${title}\n${lines.join('\n')}` };
}
