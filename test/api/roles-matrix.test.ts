/**
 * The whole matrix of roles × endpoints: every allow and every deny, written out by hand here (not
 * derived from src/api/auth/roles.ts), so a change to the grants that nobody meant fails a test.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, PASSWORD, ROLES, type Harness, type TestRole } from './harness.ts';

type Row = {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly url: string | ((h: Harness) => Promise<string>);
  readonly body?: unknown;
  readonly allowed: readonly TestRole[];
  /** For a URL made at run time: a fixed one of the same route (the 401 and coverage checks use it). */
  readonly sample?: string;
};

const A = 'admin', O = 'operator', AU = 'auditor', V = 'viewer', VA = 'vendor:vendor-a', VB = 'vendor:vendor-b';
const EVERYONE: readonly TestRole[] = [A, O, AU, V, VA, VB];
const why = { reason: 'matrix test' };

async function firstSnapshot(h: Harness): Promise<string> {
  const snapshots = await h.plane.snapshots('ehr-db-1');
  return snapshots[0]!.id;
}

async function pendingRestore(h: Harness): Promise<string> {
  const snapshot = await firstSnapshot(h);
  const request = await h.plane.requestRestore('ehr-db-1', snapshot, 'a vendor asks', 'user:vendor-vendor-a', false);
  return request.id;
}

/** A restart a vendor asked for and the budget held: recorded as the service does. */
function pendingApproval(h: Harness): string {
  const id = `approval-matrix-${Math.random().toString(36).slice(2, 10)}`;
  h.plane.record('audit', 'disruption.approval.requested', 'dwh-1', 'user:vendor-vendor-b', { id, kind: 'restart', reason: 'a vendor asks', breaks: 'nothing now' });
  return id;
}

/** A throwaway account for the admin-only account changes (disable, reset, delete): never one the test logs in with. */
async function target(h: Harness, fresh = false): Promise<string> {
  const name = fresh ? `matrix-${Math.random().toString(36).slice(2, 10)}` : 'matrix-target';
  await h.accounts.addUser(name, 'a long enough password', 'viewer', true);
  return name;
}

const MATRIX: readonly Row[] = [
  { method: 'GET', url: '/api/v1/me', allowed: EVERYONE },
  { method: 'POST', url: '/api/v1/tokens', body: { name: 'cli' }, allowed: EVERYONE },
  { method: 'GET', url: '/api/v1/users', allowed: [A] },
  { method: 'POST', url: '/api/v1/users', body: { username: 'new-user', password: 'a long enough password', role: 'viewer' }, allowed: [A] },
  { method: 'GET', url: '/api/v1/services', allowed: EVERYONE },
  { method: 'GET', url: '/api/v1/services/ehr-db', allowed: [A, O, AU, V, VA] },
  { method: 'GET', url: '/api/v1/services/ehr-db/maintenance-windows', allowed: [A, O, AU, VA] },
  { method: 'POST', url: '/api/v1/services/ehr-db/maintenance-windows', body: { fromMs: 1_000_000, toMs: 2_000_000, ...why }, allowed: [A, O, VA] },
  { method: 'GET', url: '/api/v1/hosts', allowed: [A, O, AU, V] },
  { method: 'POST', url: '/api/v1/hosts/r2-h2/maintenance', body: why, allowed: [A, O] },
  { method: 'DELETE', url: '/api/v1/hosts/r2-h2/maintenance', body: why, allowed: [A, O] },
  { method: 'GET', url: '/api/v1/blueprint', allowed: [A, O, AU] },
  { method: 'POST', url: '/api/v1/blueprint/review', body: { source: 'apiVersion: tomaranai/v1' }, allowed: [A, O] },
  { method: 'PUT', url: '/api/v1/blueprint', body: { source: 'apiVersion: tomaranai/v1', baseVersion: 1, ...why }, allowed: [A, O] },
  { method: 'GET', url: '/api/v1/plan', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/incidents', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/incidents/incident-1', allowed: [A, O, AU] },
  { method: 'POST', url: '/api/v1/drills', body: { scenario: 'host-failure', seed: 1 }, allowed: [A, O] },
  { method: 'GET', url: '/api/v1/drills', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/drills/drill-none', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/vms/ehr-db-1/snapshots', allowed: [A, O, AU, VA] },
  { method: 'POST', url: async (h) => `/api/v1/vms/ehr-db-1/snapshots/${await firstSnapshot(h)}/restore`, body: why, allowed: [A, O, VA] },
  { method: 'GET', url: '/api/v1/restores', allowed: [A, O, AU, VA, VB] },
  { method: 'POST', url: async (h) => `/api/v1/restores/${await pendingRestore(h)}/approve`, body: why, allowed: [A, O] },
  { method: 'POST', url: async (h) => `/api/v1/restores/${await pendingRestore(h)}/reject`, body: why, allowed: [A, O] },
  { method: 'GET', url: '/api/v1/approvals', allowed: [A, O, AU, VA, VB] },
  { method: 'POST', url: async (h) => `/api/v1/approvals/${pendingApproval(h)}/approve`, body: why, allowed: [A, O] },
  { method: 'POST', url: async (h) => `/api/v1/approvals/${pendingApproval(h)}/reject`, body: why, allowed: [A, O] },
  { method: 'POST', url: '/api/v1/vms/ehr-db-1/quarantine', body: why, allowed: [A, O] },
  { method: 'DELETE', url: '/api/v1/vms/ehr-db-1/quarantine', body: why, allowed: [A, O] },
  { method: 'POST', url: '/api/v1/vms/ehr-db-1/restart', body: why, allowed: [A, O, VA] },
  { method: 'GET', url: '/api/v1/audit', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/audit/verify', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/audit/export?from=0&to=99999999999999', allowed: [A, AU] },
  { method: 'GET', url: '/api/v1/audit/public-key', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/notifications', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/tiers', allowed: EVERYONE },
  { method: 'GET', url: '/api/v1/topology', allowed: [A, O, AU, V] },
  { method: 'GET', url: '/api/v1/capacity', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/security', allowed: [A, O, AU] },
  { method: 'GET', url: '/metrics', allowed: [A, O, AU] },
  { method: 'GET', url: '/api/v1/tokens', allowed: EVERYONE },
  { method: 'DELETE', url: '/api/v1/tokens/tok-none', allowed: EVERYONE },
  { method: 'PUT', url: '/api/v1/me/password', body: { currentPassword: PASSWORD, newPassword: PASSWORD }, allowed: EVERYONE },
  { method: 'GET', url: '/api/v1/users/viewer/tokens', allowed: [A] },
  { method: 'DELETE', url: async (h) => `/api/v1/users/${await target(h)}/tokens`, sample: '/api/v1/users/matrix-target/tokens', body: why, allowed: [A] },
  { method: 'PUT', url: async (h) => `/api/v1/users/${await target(h)}/password`, sample: '/api/v1/users/matrix-target/password', body: { password: 'another long enough password', ...why }, allowed: [A] },
  { method: 'POST', url: async (h) => `/api/v1/users/${await target(h)}/disable`, sample: '/api/v1/users/matrix-target/disable', body: why, allowed: [A] },
  { method: 'POST', url: async (h) => `/api/v1/users/${await target(h)}/enable`, sample: '/api/v1/users/matrix-target/enable', body: why, allowed: [A] },
  { method: 'DELETE', url: async (h) => `/api/v1/users/${await target(h, true)}`, sample: '/api/v1/users/matrix-gone', body: why, allowed: [A] },
  { method: 'DELETE', url: '/api/v1/tokens/current', allowed: EVERYONE },
];

const DENY_CODES = new Set(['TMR_API_FORBIDDEN', 'TMR_API_NOT_YOUR_SYSTEM']);

describe('who may do what: every role against every endpoint', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => h.close());

  for (const row of MATRIX) {
    const label = typeof row.url === 'string' ? row.url : row.url.toString().match(/`([^`]+)`/)?.[1] ?? 'dynamic';
    it(`${row.method} ${label}`, async () => {
      for (const role of ROLES) {
        const url = typeof row.url === 'string' ? row.url : await row.url(h);
        // A throwaway token per call, so that logging out does not log the next call out.
        const token = (await h.accounts.createToken(role.replace(':', '-'), 'matrix', null)).token;
        const response = await h.app.inject({ method: row.method, url, headers: { authorization: `Bearer ${token}` }, ...(row.body === undefined ? {} : { payload: row.body as object }) });
        const expected = row.allowed.includes(role);
        const body = response.body === '' || !String(response.headers['content-type'] ?? '').includes('json') ? {} : (JSON.parse(response.body) as { error?: { code: string } });
        if (expected) {
          expect(response.statusCode, `${role} may ${row.method} ${url}: ${response.body.slice(0, 300)}`).not.toBe(403);
          expect(response.statusCode, `${role} may ${row.method} ${url}`).not.toBe(401);
        } else {
          expect(response.statusCode, `${role} may not ${row.method} ${url}: ${response.body.slice(0, 300)}`).toBe(403);
          expect(DENY_CODES.has(body.error?.code ?? ''), `${role} ${row.method} ${url} code ${body.error?.code}`).toBe(true);
        }
      }
    });
  }

  it('answers 401 with a coded body to every protected endpoint called without a token', async () => {
    for (const row of MATRIX) {
      const url = typeof row.url === 'string' ? row.url : row.sample ?? '/api/v1/restores/x/approve';
      const response = await h.app.inject({ method: row.method, url, ...(row.body === undefined ? {} : { payload: row.body as object }) });
      expect(response.statusCode, `${row.method} ${url}`).toBe(401);
      expect(JSON.parse(response.body).error.code).toBe('TMR_API_UNAUTHENTICATED');
    }
  });

  it('streams events to operators, auditors and vendors, and refuses viewers', async () => {
    const allowed: readonly TestRole[] = [A, O, AU, VA, VB];
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (h.app.server.address() as AddressInfo).port;
    for (const role of ROLES) {
      const controller = new AbortController();
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { headers: h.as(role), signal: controller.signal });
      expect(response.status, role).toBe(allowed.includes(role) ? 200 : 403);
      controller.abort();
    }
  });

  it('shows a vendor only its own services', async () => {
    const response = await h.app.inject({ method: 'GET', url: '/api/v1/services', headers: h.as(VB) });
    const names = (JSON.parse(response.body) as { services: { name: string }[] }).services.map((service) => service.name);
    expect(names.sort()).toEqual(['dwh', 'lis']);
  });

  it('covers every route the API declares', async () => {
    const document = JSON.parse((await h.app.inject({ method: 'GET', url: '/openapi.json' })).body) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    const covered = new Set(MATRIX.map((row) => `${row.method} ${(typeof row.url === 'string' ? row.url : row.sample ?? '').split('?')[0]}`));
    const protectedRoutes: string[] = [];
    for (const [path, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) if (operation.security === undefined) protectedRoutes.push(`${method.toUpperCase()} ${path}`);
    }
    const dynamic = ['POST /api/v1/vms/{vm}/snapshots/{snapshot}/restore', 'POST /api/v1/restores/{id}/approve', 'POST /api/v1/restores/{id}/reject', 'POST /api/v1/approvals/{id}/approve', 'POST /api/v1/approvals/{id}/reject', 'GET /api/v1/events'];
    const concrete = (route: string) => [...covered].some((row) => new RegExp(`^${route.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(row));
    const missing = protectedRoutes.filter((route) => !dynamic.includes(route) && !concrete(route));
    expect(missing).toEqual([]);
  });
});
