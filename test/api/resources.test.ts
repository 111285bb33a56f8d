/** The resources through the API, on the twin: what each answers and what each changes. */
import { afterEach, describe, expect, it } from 'vitest';
import { verifyExport, type AuditExport } from '../../src/service/audit.ts';
import { harness, SMALL_SOURCE, type Harness } from './harness.ts';

let h: Harness;
afterEach(async () => h?.close());

const json = <T = Record<string, unknown>>(body: string) => JSON.parse(body) as T;

describe('API resources', () => {
  it('reports every service running after boot, with its VMs and their secondaries', async () => {
    h = await harness();
    const response = await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: h.as('viewer') });
    expect(response.statusCode).toBe(200);
    const body = json<{ summary: { up: number }; services: { name: string; vms: { secondary: unknown }[] }[] }>(response.body);
    expect(body.summary.up).toBe(4);
    expect(body.services.find((service) => service.name === 'ehr-db')!.vms[0]!.secondary).not.toBeNull();
  });

  it('reviews a candidate blueprint without changing anything, then applies it and bumps the version', async () => {
    h = await harness();
    const candidate = SMALL_SOURCE.replace('tier: deferred', 'tier: standard');
    const before = h.journal.length;
    const review = await h.app.inject({ method: 'POST', url: '/api/v1/blueprint/review', headers: h.as('operator'), payload: { source: candidate } });
    expect(review.statusCode).toBe(200);
    const reviewed = json<{ baseVersion: number; diff: { services: { changed: { name: string; changes: string[] }[] } } }>(review.body);
    expect(reviewed.diff.services.changed).toEqual([{ name: 'dwh', changes: ['tier: "deferred" → "standard"'] }]);
    expect(h.plane.blueprintVersion).toBe(1);
    expect(h.journal.entries().slice(before).filter((entry) => entry.type !== 'api.request')).toEqual([]);

    const apply = await h.app.inject({ method: 'PUT', url: '/api/v1/blueprint', headers: h.as('operator'), payload: { source: candidate, baseVersion: reviewed.baseVersion, reason: 'dwh becomes standard' } });
    expect(apply.statusCode, apply.body).toBe(200);
    expect(json(apply.body).version).toBe(2);
    expect(h.plane.blueprint.services.find((service) => service.name === 'dwh')!.tier).toBe('standard');
    const applied = h.journal.entries().find((entry) => entry.type === 'blueprint.applied')!;
    expect(applied.actor).toBe('user:operator');

    const stale = await h.app.inject({ method: 'PUT', url: '/api/v1/blueprint', headers: h.as('operator'), payload: { source: candidate, baseVersion: 1, reason: 'again' } });
    expect(stale.statusCode).toBe(409);
    expect(json<{ error: { code: string } }>(stale.body).error.code).toBe('TMR_API_BLUEPRINT_STALE');
  });

  it('refuses an invalid blueprint with its problems and changes nothing', async () => {
    h = await harness();
    const before = h.journal.length;
    const response = await h.app.inject({ method: 'PUT', url: '/api/v1/blueprint', headers: h.as('admin'), payload: { source: SMALL_SOURCE.replace('tier: critical', 'tier: critcal'), baseVersion: 1, reason: 'typo' } });
    expect(response.statusCode).toBe(422);
    const error = json<{ error: { code: string; issues: { message: string }[] } }>(response.body).error;
    expect(error.code).toBe('TMR_API_BLUEPRINT_INVALID');
    expect(error.issues[0]!.message).toContain('critcal');
    expect(h.plane.blueprintVersion).toBe(1);
    expect(h.journal.length).toBe(before);
  });

  it('records a host failure as an incident with its timeline, and the measured RTO as a metric', async () => {
    h = await harness();
    const lisHost = (await h.plane.services()).find((service) => service.name === 'lis')!.vms[0]!.host!;
    h.twin.inject({ kind: 'host-crash', host: lisHost });
    h.advance(10 * 60_000);
    const list = json<{ incidents: { id: string; kind: string; host: string; recoveredAtMs: number | null; vmsAffected: string[] }[] }>(
      (await h.app.inject({ method: 'GET', url: '/api/v1/incidents', headers: h.as('auditor') })).body,
    );
    expect(list.incidents).toHaveLength(1);
    const incident = list.incidents[0]!;
    expect(incident).toMatchObject({ kind: 'host-failed', host: lisHost });
    expect(incident.vmsAffected).toContain('lis-1');
    expect(incident.recoveredAtMs).not.toBeNull();
    const detail = json<{ timeline: { type: string }[] }>((await h.app.inject({ method: 'GET', url: `/api/v1/incidents/${incident.id}`, headers: h.as('auditor') })).body);
    const types = detail.timeline.map((entry) => entry.type);
    expect(types).toContain('host.status');
    expect(types).toContain('fenceHost');
    const metrics = (await h.app.inject({ method: 'GET', url: '/metrics', headers: h.as('auditor') })).body;
    expect(metrics).toMatch(/tomaranai_service_rto_seconds\{service="lis",tier="critical"\} \d+/);
    expect(metrics).toContain('tomaranai_incidents_total 1');
  });

  it('runs a drill on a fresh twin and serves its report', async () => {
    h = await harness();
    const started = await h.app.inject({ method: 'POST', url: '/api/v1/drills', headers: h.as('operator'), payload: { scenario: 'host-failure', seed: 3 } });
    expect(started.statusCode).toBe(202);
    const id = json<{ id: string }>(started.body).id;
    let drill: { status: string; report: { scenario: string; invariants: { splitBrain: number } } | null } = { status: 'running', report: null };
    for (let attempt = 0; attempt < 200 && drill.status === 'running'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      drill = json((await h.app.inject({ method: 'GET', url: `/api/v1/drills/${id}`, headers: h.as('auditor') })).body);
    }
    expect(drill.status).toBe('finished');
    expect(drill.report!.scenario).toBe('host-failure');
    expect(drill.report!.invariants.splitBrain).toBe(0);
  });

  it("lists snapshots; an operator's restore is approved at once, a vendor's waits for someone else's approval", async () => {
    h = await harness();
    h.advance(3 * 3600_000);
    const list = json<{ snapshots: { id: string }[] }>((await h.app.inject({ method: 'GET', url: '/api/v1/vms/lis-1/snapshots', headers: h.as('vendor:vendor-b') })).body);
    expect(list.snapshots.length).toBeGreaterThan(0);
    const snapshot = list.snapshots[0]!.id;
    const byOperator = json<{ status: string }>((await h.app.inject({ method: 'POST', url: `/api/v1/vms/lis-1/snapshots/${snapshot}/restore`, headers: h.as('operator'), payload: { reason: 'ransomware on lis-1' } })).body);
    expect(byOperator.status).toBe('approved');
    const byVendor = json<{ id: string; status: string }>((await h.app.inject({ method: 'POST', url: `/api/v1/vms/lis-1/snapshots/${snapshot}/restore`, headers: h.as('vendor:vendor-b'), payload: { reason: 'bad patch' } })).body);
    expect(byVendor.status).toBe('awaiting-approval');
    const approved = await h.app.inject({ method: 'POST', url: `/api/v1/restores/${byVendor.id}/approve`, headers: h.as('operator'), payload: { reason: 'checked with the vendor' } });
    expect(json<{ status: string; decidedBy: string }>(approved.body)).toMatchObject({ status: 'approved', decidedBy: 'user:operator' });
    const again = await h.app.inject({ method: 'POST', url: `/api/v1/restores/${byVendor.id}/approve`, headers: h.as('admin'), payload: { reason: 'twice' } });
    expect(again.statusCode).toBe(409);
    // An approved restore is carried out: quarantine, boot the snapshot isolated, check, cut over.
    const started = h.journal.entries().filter((entry) => entry.type === 'snapshot.restore.started');
    expect(started[0]!.data.ok).toBe(true);
    for (let step = 0; step < 600; step++) {
      h.advance(1000);
      expect(h.twin.truth().splitBrainVms).toEqual([]);
    }
    expect(h.journal.entries().some((entry) => entry.type === 'security.recovered' && entry.subject === 'lis-1')).toBe(true);
  });

  it('quarantines and releases a VM, journaling each with its actor', async () => {
    h = await harness();
    const quarantine = await h.app.inject({ method: 'POST', url: '/api/v1/vms/lis-1/quarantine', headers: h.as('operator'), payload: { reason: 'beaconing to an unknown host' } });
    expect(quarantine.statusCode).toBe(200);
    const twice = await h.app.inject({ method: 'POST', url: '/api/v1/vms/lis-1/quarantine', headers: h.as('operator'), payload: { reason: 'again' } });
    expect(json<{ error: { code: string } }>(twice.body).error.code).toBe('TMR_API_CONFLICT');
    const services = json<{ services: { name: string; vms: { state: string }[] }[] }>((await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: h.as('viewer') })).body);
    expect(services.services.find((service) => service.name === 'lis')!.vms[0]!.state).toBe('quarantined');
    const release = await h.app.inject({ method: 'DELETE', url: '/api/v1/vms/lis-1/quarantine', headers: h.as('operator'), payload: { reason: 'forensics done' } });
    expect(release.statusCode).toBe(200);
    const entries = h.journal.entries().filter((entry) => entry.type === 'vm.quarantined' || entry.type === 'vm.released');
    expect(entries.map((entry) => [entry.type, entry.actor])).toEqual([
      ['vm.quarantined', 'user:operator'],
      ['vm.released', 'user:operator'],
    ]);
    // The twin enforces it at the network layer: the substrate, not only the journal, isolates the VM.
    expect(entries.map((entry) => entry.data.enforced)).toEqual([true, true]);
  });

  it('evacuates a host for maintenance, holds it, and brings it back when released, never two copies of a VM', async () => {
    h = await harness();
    const busiest = (await h.plane.hosts()).sort((a, b) => b.vms.length - a.vms.length)[0]!.name;
    const evacuate = await h.app.inject({ method: 'POST', url: `/api/v1/hosts/${busiest}/maintenance`, headers: h.as('operator'), payload: { reason: 'firmware update' } });
    expect(evacuate.statusCode, evacuate.body).toBe(202);
    for (let step = 0; step < 600; step++) {
      h.advance(1000);
      expect(h.twin.truth().splitBrainVms).toEqual([]);
    }
    let hosts = json<{ hosts: { name: string; status: string; vms: string[]; maintenance: unknown }[] }>((await h.app.inject({ method: 'GET', url: '/api/v1/hosts', headers: h.as('viewer') })).body).hosts;
    const held = hosts.find((host) => host.name === busiest)!;
    expect(held.vms).toEqual([]);
    expect(held.maintenance).not.toBeNull();
    const services = json<{ summary: { up: number } }>((await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: h.as('viewer') })).body);
    expect(services.summary.up).toBe(4);
    // Evacuation is by live migration: nothing was fenced, stopped or restarted to empty the host.
    const duringMaintenance = h.journal.entries().filter((entry) => entry.seq > h.journal.entries().findIndex((candidate) => candidate.type === 'host.maintenance.started'));
    expect(duringMaintenance.some((entry) => entry.type === 'migrateVm' && entry.data.ok === true)).toBe(true);
    expect(duringMaintenance.filter((entry) => entry.type === 'fenceHost' || entry.type === 'stopVm' || (entry.type === 'startVm' && entry.data.role === 'primary'))).toEqual([]);
    const release = await h.app.inject({ method: 'DELETE', url: `/api/v1/hosts/${busiest}/maintenance`, headers: h.as('operator'), payload: { reason: 'firmware done' } });
    expect(release.statusCode).toBe(200);
    h.advance(5 * 60_000);
    hosts = json<typeof hosts extends infer T ? { hosts: T } : never>((await h.app.inject({ method: 'GET', url: '/api/v1/hosts', headers: h.as('viewer') })).body).hosts;
    expect(hosts.find((host) => host.name === busiest)).toMatchObject({ status: 'up', maintenance: null });
  });

  it('lets a vendor restart its own VM inside a maintenance window, which the controller starts again', async () => {
    h = await harness();
    const now = h.scheduler.nowMs();
    const window = await h.app.inject({ method: 'POST', url: '/api/v1/services/lis/maintenance-windows', headers: h.as('vendor:vendor-b'), payload: { fromMs: now, toMs: now + 3600_000, reason: 'apply a patch' } });
    expect(window.statusCode, window.body).toBe(201);
    const restart = await h.app.inject({ method: 'POST', url: '/api/v1/vms/lis-1/restart', headers: h.as('vendor:vendor-b'), payload: { reason: 'apply a patch' } });
    expect(restart.statusCode, restart.body).toBe(202);
    h.advance(5 * 60_000);
    const lis = json<{ state: string; vms: { state: string; healthy: boolean }[] }>((await h.app.inject({ method: 'GET', url: '/api/v1/services/lis', headers: h.as('vendor:vendor-b') })).body);
    expect(lis.state).toBe('up');
    expect(h.journal.entries().some((entry) => entry.type === 'vm.restart' && entry.actor === 'user:vendor-vendor-b')).toBe(true);
  });

  it('verifies the journal and gives an auditor a signed export that detects a change', async () => {
    h = await harness();
    const verdict = json<{ ok: boolean; checked: number }>((await h.app.inject({ method: 'GET', url: '/api/v1/audit/verify', headers: h.as('auditor') })).body);
    expect(verdict.ok).toBe(true);
    expect(verdict.checked).toBe(h.journal.length);
    const exported = json<AuditExport>((await h.app.inject({ method: 'GET', url: '/api/v1/audit/export?from=0&to=600000', headers: h.as('auditor') })).body);
    expect(exported.entries.length).toBeGreaterThan(10);
    expect(verifyExport(exported)).toEqual({ ok: true, reason: null });
    const tampered = { ...exported, entries: exported.entries.map((entry, index) => (index === 3 ? { ...entry, actor: 'someone-else' } : entry)) };
    expect(verifyExport(tampered).ok).toBe(false);
  });

  it('pages through the audit log', async () => {
    h = await harness();
    const page = json<{ entries: { seq: number }[]; nextSeq: number }>((await h.app.inject({ method: 'GET', url: '/api/v1/audit?fromSeq=5&limit=10', headers: h.as('auditor') })).body);
    expect(page.entries.map((entry) => entry.seq)).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(page.nextSeq).toBe(15);
  });

  it('never changes state on bad input, and answers each with a coded error', async () => {
    h = await harness();
    const before = { length: h.journal.length, version: h.plane.blueprintVersion };
    const bad: { method: 'POST' | 'PUT' | 'DELETE'; url: string; payload?: unknown; code: string; contentType?: string }[] = [
      { method: 'POST', url: '/api/v1/vms/lis-1/quarantine', payload: {}, code: 'TMR_API_VALIDATION' },
      { method: 'POST', url: '/api/v1/vms/lis-1/quarantine', payload: { reason: 'x' }, code: 'TMR_API_VALIDATION' },
      { method: 'POST', url: '/api/v1/vms/lis-1/quarantine', payload: { reason: 'valid reason', extra: 1 }, code: 'TMR_API_VALIDATION' },
      { method: 'POST', url: '/api/v1/vms/no-such-vm/quarantine', payload: { reason: 'valid reason' }, code: 'TMR_API_NOT_FOUND' },
      { method: 'POST', url: '/api/v1/vms/lis-1/quarantine', payload: '{"reason": ', code: 'TMR_API_VALIDATION', contentType: 'application/json' },
      { method: 'POST', url: '/api/v1/vms/lis-1/quarantine', payload: 'reason=abc', code: 'TMR_API_VALIDATION', contentType: 'text/plain' },
      { method: 'POST', url: '/api/v1/drills', payload: { scenario: 'meteor', seed: 1 }, code: 'TMR_API_VALIDATION' },
      { method: 'POST', url: '/api/v1/drills', payload: { scenario: 'host-failure', seed: -1 }, code: 'TMR_API_VALIDATION' },
      { method: 'PUT', url: '/api/v1/blueprint', payload: { source: '', baseVersion: 1, reason: 'empty' }, code: 'TMR_API_VALIDATION' },
      { method: 'PUT', url: '/api/v1/blueprint', payload: { source: ':::', baseVersion: 1, reason: 'garbage' }, code: 'TMR_API_BLUEPRINT_INVALID' },
      { method: 'POST', url: '/api/v1/hosts/no-such-host/maintenance', payload: { reason: 'valid reason' }, code: 'TMR_API_NOT_FOUND' },
      { method: 'DELETE', url: '/api/v1/hosts/r1-h1/maintenance', payload: { reason: 'not held' }, code: 'TMR_API_CONFLICT' },
      { method: 'POST', url: '/api/v1/services/lis/maintenance-windows', payload: { fromMs: 10, toMs: 5, reason: 'backwards' }, code: 'TMR_API_CONFLICT' },
      { method: 'POST', url: '/api/v1/users', payload: { username: 'x', password: 'short', role: 'viewer' }, code: 'TMR_API_VALIDATION' },
      { method: 'POST', url: '/api/v1/users', payload: { username: 'y', password: 'a long enough password', role: 'root' }, code: 'TMR_API_VALIDATION' },
      { method: 'POST', url: '/api/v1/nowhere', payload: {}, code: 'TMR_API_ROUTE_NOT_FOUND' },
    ];
    for (const request of bad) {
      const response = await h.app.inject({
        method: request.method,
        url: request.url,
        headers: { ...h.as('admin'), ...(request.contentType ? { 'content-type': request.contentType } : {}) },
        ...(request.payload === undefined ? {} : { payload: request.payload as string }),
      });
      const body = json<{ error: { code: string; message: string; hint: string } }>(response.body);
      expect(body.error.code, `${request.method} ${request.url} ${JSON.stringify(request.payload)}`).toBe(request.code);
      expect(body.error.message.length).toBeGreaterThan(0);
      expect(body.error.hint.length).toBeGreaterThan(0);
      expect(response.statusCode).toBeGreaterThanOrEqual(400);
    }
    expect(h.journal.length).toBe(before.length);
    expect(h.plane.blueprintVersion).toBe(before.version);
    expect(h.plane.view.quarantined.size).toBe(0);
    expect(await h.accounts.users()).toHaveLength(6);
  });

  it('declares every route with its schemas in /openapi.json', async () => {
    h = await harness();
    const document = json<{ openapi: string; paths: Record<string, Record<string, { requestBody?: { content: { 'application/json': { schema: { properties: Record<string, unknown> } } } } }>> }>(
      (await h.app.inject({ method: 'GET', url: '/openapi.json' })).body,
    );
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/healthz', '/metrics', '/api/v1/services', '/api/v1/events', '/api/v1/blueprint', '/api/v1/vms/{vm}/quarantine']));
    expect(Object.keys(document.paths['/api/v1/drills']!.post!.requestBody!.content['application/json'].schema.properties)).toEqual(['scenario', 'seed']);
  });
});
