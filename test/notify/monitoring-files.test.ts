/**
 * The monitoring files shipped in monitoring/ hold against the real tools and the real /metrics:
 * promtool checks and unit-tests the alerting rules; the Grafana dashboard is loaded and every
 * metric its queries name is one the service exposes (so are the rules'); the MIB loads in
 * net-snmp's MIB parser and names the OIDs the SNMP receiver sends.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import snmp from 'net-snmp';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALERT_KINDS } from '../../src/notify/index.ts';
import { notificationOidOf, OBJECTS } from '../../src/notify/receivers/snmp.ts';
import { harness, type Harness } from '../api/harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RULES = `${ROOT}monitoring/prometheus/tomaranai.rules.yml`;
const RULE_TESTS = `${ROOT}monitoring/prometheus/tomaranai.rules.test.yml`;
const DASHBOARD = `${ROOT}monitoring/grafana/tomaranai.json`;
const MIB = `${ROOT}monitoring/TOMARANAI-MIB.txt`;

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!promtool) console.warn('test/notify/monitoring-files.test.ts: promtool checks skipped: promtool is not installed (bash scripts/ci-monitoring.sh installs it; CI does)');

/** Metric names a PromQL expression reads (identifiers followed by a selector, a range or a comparison). */
function metricNames(expr: string): string[] {
  const functions = new Set(['sum', 'max', 'min', 'rate', 'histogram_quantile', 'by', 'on', 'and', 'or', 'up', 'label_values']);
  return [...expr.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=\{|\[|\s*[><=!]|\s*\)|\s*\*|$)/g)].map((match) => match[1]!).filter((name) => !functions.has(name) && name.includes('_'));
}

describe('monitoring files', () => {
  let h: Harness;
  let exposed: Set<string>;
  beforeAll(async () => {
    h = await harness();
    const text = (await h.app.inject({ method: 'GET', url: '/metrics', headers: h.as('auditor') })).body;
    exposed = new Set(text.split('\n').filter((line) => line.startsWith('# TYPE ')).flatMap((line) => {
      const [, , name, type] = line.split(' ');
      return type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!];
    }));
  });
  afterAll(async () => h.close());

  it.skipIf(!promtool)('promtool accepts the alerting rules and their unit tests pass', () => {
    expect(execFileSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' })).toMatch(/SUCCESS: \d+ rules found/);
    expect(execFileSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8', cwd: `${ROOT}monitoring/prometheus` })).toContain('SUCCESS');
  });

  it('the rules read only metrics the service exposes', () => {
    const rules = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const names = rules.groups.flatMap((group) => group.rules.flatMap((rule) => metricNames(rule.expr)));
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((name) => !exposed.has(name))).toEqual([]);
  });

  it('the Grafana dashboard loads: unique panel ids, panels inside the 24-column grid, every query on an exposed metric', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      title: string;
      schemaVersion: number;
      templating: { list: { name: string }[] };
      panels: { id: number; type: string; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string; refId: string }[] }[];
    };
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((variable) => variable.name)).toEqual(['datasource', 'instance']);
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.gridPos.x + panel.gridPos.w, `panel ${panel.id}`).toBeLessThanOrEqual(24);
      if (panel.type === 'row') continue;
      expect(panel.targets?.length, `panel ${panel.id} has queries`).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) {
        const names = metricNames(target.expr.replace(/\{[^}]*\}/g, '{}'));
        expect(names.length, target.expr).toBeGreaterThan(0);
        expect(names.filter((name) => !exposed.has(name)), target.expr).toEqual([]);
      }
    }
  });

  it('the MIB loads in net-snmp and names the OIDs the SNMP receiver sends', () => {
    const store = snmp.createModuleStore();
    store.loadFromFile(MIB);
    const module = store.getModule('TOMARANAI-MIB') as Record<string, { OID: string }>;
    const notifications = ['tmrIncidentOpened', 'tmrIncidentClosed', 'tmrSlaMissed', 'tmrFenceFailed', 'tmrHostDegraded', 'tmrRansomwareAlert', 'tmrVmQuarantined', 'tmrSnapshotFailed', 'tmrDrillFinished', 'tmrAuditCheckpointFailed', 'tmrLeaderChanged', 'tmrTest'];
    expect(notifications.length).toBe(ALERT_KINDS.length);
    ALERT_KINDS.forEach((kind, index) => expect(module[notifications[index]!]!.OID, kind).toBe(notificationOidOf(kind)));
    const objects: Record<keyof typeof OBJECTS, string> = { key: 'tmrAlertKey', kind: 'tmrAlertKind', severity: 'tmrAlertSeverity', subject: 'tmrAlertSubject', services: 'tmrAlertServices', message: 'tmrAlertMessage', group: 'tmrAlertGroup', resolved: 'tmrAlertResolved' };
    for (const [field, name] of Object.entries(objects)) expect(module[name]!.OID, name).toBe(OBJECTS[field as keyof typeof OBJECTS]);
  });
});
