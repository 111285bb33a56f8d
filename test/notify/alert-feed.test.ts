/**
 * Incident alerts come from the service's journal fold: a host failure opens one incident with the
 * systems it ran and closes it with their measured RTOs; a crash first seen as an isolation (the
 * datastore heartbeat lagging) becomes the same failure, and closes only once its systems are back.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadBlueprint } from '../../src/model/index.ts';
import type { JournalEntry } from '../../src/ports/index.ts';
import { AlertFeed } from '../../src/service/alert-feed.ts';

const loaded = loadBlueprint(readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8'));
if (!loaded.ok) throw new Error('the small hospital does not load');
const blueprint = loaded.blueprint;

function journal(records: [number, string, string, Record<string, unknown>][]): JournalEntry[] {
  return records.map(([atMs, type, subject, data], index) => ({ seq: index + 1, atMs, kind: 'observation', type, subject, actor: 'controller', data, hash: '', previousHash: '' }));
}

const instance = (host: string, healthy: boolean) => ({ instance: `x@${host}`, host, role: 'primary', state: 'running', healthy, synced: false });

function alertsOf(entries: JournalEntry[]) {
  const feed = new AlertFeed(blueprint);
  return entries.flatMap((entry) => feed.next(entry)).filter((alert) => alert.kind.startsWith('incident.'));
}

describe('incident alerts from the journal fold', () => {
  it('a failed host opens one incident naming its systems and closes it with their RTOs', () => {
    const alerts = alertsOf(journal([
      [1_000, 'vm.instance', 'lis-1', instance('r1-h2', true)],
      [10_000, 'heartbeat.lost', 'r1-h2', { channel: 'management', lastSeenAtMs: 9_500 }],
      [12_000, 'host.status', 'r1-h2', { from: 'suspect', to: 'failed', reason: 'silent' }],
      [12_200, 'fence.completed', 'r1-h2', { method: 'storage', ok: true, detail: '' }],
      [12_300, 'host.status', 'r1-h2', { from: 'failed', to: 'fenced', reason: 'fenced' }],
      [72_000, 'vm.instance', 'lis-1', instance('r2-h2', true)],
    ]));
    expect(alerts.map((alert) => [alert.key, alert.services.map((service) => [service.name, service.rtoS])])).toEqual([
      ['incident.opened:incident-3', [['lis', null]]],
      ['incident.closed:incident-3', [['lis', 62.5]]],
    ]);
    expect(alerts[1]!.groupKey).toBe(alerts[0]!.key);
    expect(alerts[1]!.facts.outageS).toBe(62.5);
  });

  it('a crash first seen as an isolation is announced once it names its systems, and closes only when they are back', () => {
    const alerts = alertsOf(journal([
      [1_000, 'vm.instance', 'lis-1', instance('r1-h2', true)],
      [10_000, 'heartbeat.lost', 'r1-h2', { channel: 'management', lastSeenAtMs: 9_500 }],
      [11_000, 'host.status', 'r1-h2', { from: 'suspect', to: 'isolated', reason: 'datastore alive' }],
      [11_500, 'host.status', 'r1-h2', { from: 'isolated', to: 'failed', reason: 'silent' }],
      [11_700, 'host.status', 'r1-h2', { from: 'failed', to: 'fenced', reason: 'fenced' }],
      [72_000, 'vm.instance', 'lis-1', instance('r2-h2', true)],
    ]));
    expect(alerts.map((alert) => [alert.key, alert.facts.status ?? null, alert.services.map((service) => [service.name, service.rtoS])])).toEqual([
      // Announced once it names its systems (when the isolation turned out a failure), not before.
      ['incident.opened:incident-3', 'failed', [['lis', null]]],
      ['incident.closed:incident-3', null, [['lis', 62.5]]],
    ]);
    expect(alerts[1]!.facts.outageS).toBe(62.5);
  });

  it('an isolation that ends without hitting a system is announced when it closes, open then closed', () => {
    const alerts = alertsOf(journal([
      [1_000, 'vm.instance', 'lis-1', instance('r2-h2', true)],
      [10_000, 'heartbeat.lost', 'r1-h2', { channel: 'management', lastSeenAtMs: 9_500 }],
      [11_000, 'host.status', 'r1-h2', { from: 'suspect', to: 'isolated', reason: 'datastore alive' }],
      [20_000, 'heartbeat.restored', 'r1-h2', { channel: 'management' }],
      [20_000, 'host.status', 'r1-h2', { from: 'isolated', to: 'up', reason: 'back' }],
    ]));
    expect(alerts.map((alert) => alert.key)).toEqual(['incident.opened:incident-3', 'incident.closed:incident-3']);
    expect(alerts.every((alert) => alert.sourceSeq === 5)).toBe(true);
  });

  it('a new term is a leader change; a controller restarted in the same term (a blueprint applied) is not', () => {
    const feed = new AlertFeed(blueprint);
    const entries = journal([
      [1, 'controller.started', 'controller', { epoch: 1, hosts: 4, instances: 0 }],
      [2, 'controller.started', 'controller', { epoch: 1, hosts: 4, instances: 5 }],
      [3, 'controller.started', 'controller', { epoch: 2, hosts: 4, instances: 5 }],
    ]);
    expect(entries.flatMap((entry) => feed.next(entry)).map((alert) => [alert.kind, alert.facts.epoch])).toEqual([
      ['leader.changed', 1],
      ['leader.changed', 2],
    ]);
  });
});
