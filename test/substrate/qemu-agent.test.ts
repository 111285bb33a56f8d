/**
 * The real-VM pieces that need neither root nor QEMU: the lab's plan (addresses, limits), the
 * lease rules that keep one writable copy, the agent's HTTP edge (authentication, validation,
 * fencing tokens), and the report taking its numbers from the drill's probes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shipped } from '../support/blueprints.ts';
import type { JournalEntry } from '../../src/ports/index.ts';
import { buildDrillReport } from '../../src/report/drill-report.ts';
import { HostAgent } from '../../src/substrate/qemu/agent.ts';
import { LabLayout, labPlan, leaseFree, revokes, type Lease, type Revocation } from '../../src/substrate/qemu/lab.ts';
import { TomaranaiError } from '../../src/errors/index.ts';

const lab = shipped('lab');

describe('the lab plan', () => {
  it('gives every host and VM a fixed address and every VM its own MAC', () => {
    const manifest = labPlan(lab, { blueprintFile: 'blueprints/lab.yaml', imageDirectory: '/nonexistent', accelerator: 'tcg' });
    expect(manifest.hosts.map((host) => host.address)).toEqual(['10.77.0.11', '10.77.0.12', '10.77.0.13']);
    expect(manifest.hosts.map((host) => host.namespace)).toEqual(['tmr-lab-a1', 'tmr-lab-a2', 'tmr-lab-b1']);
    expect(new Set(manifest.vms.map((vm) => vm.address)).size).toBe(lab.vms.length);
    expect(new Set(manifest.vms.map((vm) => vm.mac)).size).toBe(lab.vms.length);
    expect(manifest.vms.find((vm) => vm.name === 'ehr-1')).toMatchObject({ tier: 'continuous', datastore: 'ds-lab' });
  });

  it('refuses a blueprint too large for one machine, naming the limit and the way out', () => {
    const hospital = shipped('university-hospital');
    let error: unknown = null;
    try {
      labPlan(hospital, { blueprintFile: 'x', imageDirectory: '/nonexistent', accelerator: 'tcg' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TomaranaiError);
    expect((error as TomaranaiError).code).toBe('TMR_LAB_TOO_LARGE');
    expect((error as TomaranaiError).message).toMatch(/74 VMs/);
    expect((error as TomaranaiError).hint).toMatch(/twin/);
  });
});

describe('leases', () => {
  const now = 1_000_000;
  const held: Lease = { vm: 'ehr-1', host: 'lab-a1', instanceId: 'ehr-1.g3', epoch: 2, generation: 3, renewedAtMs: now - 500, expiresAtMs: now + 2_500 };

  it('another host may not take a live lease; the holder, one unrenewed for a whole lease (by the reader\'s clock) or a revoked one, yes', () => {
    expect(leaseFree(null, null, 'lab-b1', 0, 3_000)).toBe(true);
    expect(leaseFree(held, null, 'lab-b1', 2_999, 3_000)).toBe(false);
    expect(leaseFree(held, null, 'lab-a1', 0, 3_000)).toBe(true);
    expect(leaseFree(held, null, 'lab-b1', 3_000, 3_000)).toBe(true);
    const revocation: Revocation = { vm: 'ehr-1', host: 'lab-a1', instanceId: 'ehr-1.g3', epoch: 2, atMs: now };
    expect(leaseFree(held, revocation, 'lab-b1', 0, 3_000)).toBe(true);
  });

  it('a revocation binds only the copy it names: a newer copy on the same host keeps its lease', () => {
    const old: Revocation = { vm: 'ehr-1', host: 'lab-a1', instanceId: 'ehr-1.g1', epoch: 1, atMs: now - 60_000 };
    expect(revokes(old, held)).toBe(false);
    expect(leaseFree(held, old, 'lab-b1', 0, 3_000)).toBe(false);
    expect(revokes({ ...old, instanceId: 'ehr-1.g3' }, held)).toBe(true);
  });
});

describe('the host agent over HTTP', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tmr-agent-'));
  afterAll(() => rm(directory, { recursive: true, force: true }));
  const layout = new LabLayout(directory);
  const manifest = labPlan(lab, { blueprintFile: 'blueprints/lab.yaml', imageDirectory: join(directory, 'image'), accelerator: 'tcg' });
  const token = 'a'.repeat(64);
  const agent = new HostAgent({ layout, manifest, host: 'lab-a1', token });
  const app = agent.buildServer();
  const auth = { authorization: `Bearer ${token}` };

  it('refuses every call without the bearer token, or with a wrong one, and changes nothing', async () => {
    expect((await app.inject({ method: 'GET', url: '/state' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/state', headers: { authorization: `Bearer ${'b'.repeat(64)}` } })).statusCode).toBe(401);
    const refused = await app.inject({ method: 'POST', url: '/epoch', headers: { authorization: 'Bearer short' }, payload: { epoch: 99 } });
    expect(refused.statusCode).toBe(401);
    const state = await app.inject({ method: 'GET', url: '/state', headers: auth });
    expect(state.statusCode).toBe(200);
    expect(state.json()).toMatchObject({ host: 'lab-a1', epoch: 0, instances: [], fenced: false });
  });

  it('rejects a malformed request naming the field, and a VM that is not in the lab', async () => {
    const bad = await app.inject({ method: 'POST', url: '/vms/start', headers: auth, payload: { epoch: 1, vm: '../../etc', instanceId: 'x', generation: 1, role: 'primary' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().reason).toMatch(/^bad request at vm:/);
    const extra = await app.inject({ method: 'POST', url: '/vms/stop', headers: auth, payload: { epoch: 1, vm: 'ehr-1', instanceId: 'x', shell: 'rm -rf /' } });
    expect(extra.statusCode).toBe(400);
    const unknown = await app.inject({ method: 'POST', url: '/vms/start', headers: auth, payload: { epoch: 1, vm: 'not-here', instanceId: 'x', generation: 1, role: 'primary' } });
    expect(unknown.statusCode).toBe(409);
    expect(unknown.json().reason).toMatch(/not in this lab/);
  });

  it('refuses an older controller epoch once a newer one has spoken', async () => {
    expect((await app.inject({ method: 'POST', url: '/epoch', headers: auth, payload: { epoch: 5 } })).json()).toEqual({ ok: true });
    const stale = await app.inject({ method: 'POST', url: '/vms/stop', headers: auth, payload: { epoch: 4, vm: 'ehr-1', instanceId: 'ehr-1.g1' } });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().reason).toMatch(/epoch 4 is older than 5/);
    expect((await app.inject({ method: 'GET', url: '/state', headers: auth })).json().epoch).toBe(5);
  });
});

describe('the drill report on real VMs', () => {
  const entry = (seq: number, atMs: number, kind: JournalEntry['kind'], type: string, subject: string, data: Record<string, unknown>): JournalEntry => ({
    seq,
    atMs,
    kind,
    type,
    subject,
    actor: 'drill',
    data,
    hash: String(seq),
    previousHash: String(seq - 1),
  });

  it('takes RTO and RPO from the probes: outage from the fault to the first answer, acknowledged writes lost', () => {
    const entries = [
      entry(1, 1_000, 'drill', 'probe.started', 'probes', { intervalMs: 100 }),
      entry(2, 2_000, 'fault', 'fault.injected', 'lab-a1', { kind: 'host-power-loss', target: 'lab-a1' }),
      // The controller saw the EHR healthy again earlier than the probes did: the probes win.
      entry(3, 3_000, 'observation', 'vm.instance', 'ehr-1', { instance: 'ehr-1.g2', host: 'lab-b1', role: 'primary', state: 'running', healthy: true }),
      entry(4, 9_000, 'drill', 'probe.outage', 'ehr-1', { downAtMs: 2_100, upAtMs: 3_900, ackedBefore: 50, resumedAfter: 50, writesLost: 0, writeIntervalMs: 100 }),
      entry(5, 9_000, 'drill', 'probe.outage', 'pacs-1', { downAtMs: 2_100, upAtMs: 14_000, ackedBefore: 80, resumedAfter: 77, writesLost: 3, writeIntervalMs: 100 }),
      entry(6, 9_000, 'drill', 'probe.outage', 'lis-1', { downAtMs: 2_100, upAtMs: null, ackedBefore: 10, resumedAfter: null, writesLost: null, writeIntervalMs: 100 }),
    ];
    const report = buildDrillReport({ blueprint: lab, entries, scenario: 'host-failure', description: '', seed: 0, substrate: 'qemu', invariants: { splitBrain: 0, lostVms: 0, immutableViolations: 0 } });
    const byName = new Map(report.services.map((service) => [service.name, service]));
    expect(byName.get('ehr')).toMatchObject({ rtoMeasuredS: 1.9, rpoMeasuredS: 0, ackedWritesLost: 0, met: true });
    expect(byName.get('pacs')).toMatchObject({ rtoMeasuredS: 12, rpoMeasuredS: 0.3, ackedWritesLost: 3, met: false });
    expect(byName.get('lis')).toMatchObject({ rtoMeasuredS: null, rpoMeasuredS: null, met: false });
    expect(byName.get('pharmacy')).toMatchObject({ affected: false, rtoMeasuredS: 0 });
  });
});
