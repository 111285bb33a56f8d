/**
 * The disruption budget (issue 14, point 2). Before: two restarts of the EHR database 1.5 s apart,
 * both accepted, stopped both copies — a cold restart, 151 s of outage against 5 s.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { harness, type Harness } from './harness.ts';

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const restart = (h: Harness, vm: string, role: 'operator' | 'admin' | 'vendor:vendor-a' | 'vendor:vendor-b') =>
  h.app.inject({ method: 'POST', url: `/api/v1/vms/${vm}/restart`, headers: h.as(role), payload: { reason: 'apply a patch' } });

describe('disruption budget', () => {
  it('refuses a second restart of a continuous VM before its secondary is synchronised again: no cold restart', async () => {
    h = await harness();
    expect((await restart(h, 'ehr-db-1', 'operator')).statusCode).toBe(202);
    h.advance(1_500);
    const second = await restart(h, 'ehr-db-1', 'operator');
    expect(second.statusCode, second.body).toBe(409);
    expect(second.json().error.code).toBe('TMR_API_DISRUPTION');
    expect(second.json().error.message).toMatch(/ehr-db-1 is failing over now .*ehr-db \(continuous, RTO 5 s\)/);
    // Promoted, its new secondary not yet synchronised: still refused, now for that reason.
    h.advance(5_000);
    const third = await restart(h, 'ehr-db-1', 'operator');
    expect(third.json().error.code).toBe('TMR_API_DISRUPTION');
    expect(third.json().error.message).toMatch(/ehr-db-1 has no synchronised secondary now: restarting it would stop ehr-db \(continuous, RTO 5 s\) for a cold restart/);
    h.advance(10 * 60_000);
    expect(h.journal.entries().some((entry) => entry.type === 'vm.cold-restart')).toBe(false);
    // Protected again: a synchronised secondary on another host than the promoted primary. (It was
    // never rebuilt before: the recovery target still named the promoted copy's host for it.)
    const copies = [...h.plane.controller!.state.instances.values()].filter((instance) => instance.vm === 'ehr-db-1');
    const primary = copies.find((instance) => instance.role === 'primary')!;
    const secondary = copies.find((instance) => instance.role === 'secondary' && instance.synced);
    expect(secondary?.host).toBeDefined();
    expect(secondary!.host).not.toBe(primary.host);
    // Once protected again, a restart goes ahead.
    const later = await restart(h, 'ehr-db-1', 'operator');
    expect(later.statusCode, later.body).toBe(202);
  });

  it('lets a vendor restart its systems only inside a maintenance window of that service', async () => {
    h = await harness();
    const outside = await restart(h, 'lis-1', 'vendor:vendor-b');
    expect(outside.statusCode).toBe(409);
    expect(outside.json().error.code).toBe('TMR_API_OUTSIDE_WINDOW');
    const now = h.scheduler.nowMs();
    await h.app.inject({ method: 'POST', url: '/api/v1/services/lis/maintenance-windows', headers: h.as('vendor:vendor-b'), payload: { fromMs: now + 3600_000, toMs: now + 7200_000, reason: 'tonight' } });
    expect((await restart(h, 'lis-1', 'vendor:vendor-b')).json().error.code).toBe('TMR_API_OUTSIDE_WINDOW');
    await h.app.inject({ method: 'POST', url: '/api/v1/services/lis/maintenance-windows', headers: h.as('vendor:vendor-b'), payload: { fromMs: now, toMs: now + 600_000, reason: 'now' } });
    expect((await restart(h, 'lis-1', 'vendor:vendor-b')).statusCode).toBe(202);
    // The hospital's own operators are not bound to windows.
    h.advance(5 * 60_000);
    expect((await restart(h, 'dwh-1', 'operator')).statusCode).toBe(202);
  });

  it('limits one account to 6 disruptive actions in 10 minutes', async () => {
    h = await harness();
    for (let index = 0; index < 6; index++) {
      const response = await restart(h, 'dwh-1', 'admin');
      expect(response.statusCode, `restart ${index + 1}: ${response.body}`).toBe(202);
      h.advance(10 * 60_000);
    }
    const seventh = await restart(h, 'dwh-1', 'admin');
    expect(seventh.statusCode).toBe(429);
    expect(seventh.json().error.code).toBe('TMR_API_ACTION_RATE_LIMITED');
    expect((await restart(h, 'dwh-1', 'operator')).statusCode).toBe(202);
  });
});

describe('held for approval', () => {
  const ask = (h: Harness, vm: string, role: 'operator' | 'admin' | 'vendor:vendor-a') =>
    h.app.inject({ method: 'POST', url: `/api/v1/vms/${vm}/restart`, headers: h.as(role), payload: { reason: 'apply a patch', askApproval: true } });
  const decide = (h: Harness, id: string, verb: 'approve' | 'reject', role: 'operator' | 'admin' | 'vendor:vendor-a' | 'auditor') =>
    h.app.inject({ method: 'POST', url: `/api/v1/approvals/${id}/${verb}`, headers: h.as(role), payload: { reason: 'the secondary is known broken; the vendor must patch now' } });

  it('a refused restart can be held; someone else with approval rights carries it out, accepting what it breaks; all journaled', async () => {
    h = await harness();
    const now = h.scheduler.nowMs();
    await h.app.inject({ method: 'POST', url: '/api/v1/services/ehr-db/maintenance-windows', headers: h.as('vendor:vendor-a'), payload: { fromMs: now, toMs: now + 3600_000, reason: 'patch night' } });
    expect((await restart(h, 'ehr-db-1', 'vendor:vendor-a')).statusCode).toBe(202);
    // Failed over; its new secondary not yet synchronised.
    h.advance(6_500);
    // Refused outright without askApproval (the hint says how to ask); held with it.
    const refused = await restart(h, 'ehr-db-1', 'vendor:vendor-a');
    expect(refused.json().error.hint).toMatch(/askApproval/);
    const held = await ask(h, 'ehr-db-1', 'vendor:vendor-a');
    expect(held.statusCode, held.body).toBe(202);
    const approval = held.json().approval;
    expect(approval).toMatchObject({ status: 'awaiting-approval', vm: 'ehr-db-1', requestedBy: 'user:vendor-vendor-a', expired: false });
    expect(approval.breaks).toMatch(/ehr-db-1 has no synchronised secondary now/);
    // Nothing was stopped yet.
    expect(h.journal.entries().filter((entry) => entry.type === 'vm.restart')).toHaveLength(1);
    // A vendor and an auditor may not approve; the vendor sees its request.
    expect((await decide(h, approval.id, 'approve', 'vendor:vendor-a')).statusCode).toBe(403);
    expect((await decide(h, approval.id, 'approve', 'auditor')).statusCode).toBe(403);
    expect((await h.app.inject({ method: 'GET', url: '/api/v1/approvals', headers: h.as('vendor:vendor-a') })).json().approvals).toHaveLength(1);
    const approved = await decide(h, approval.id, 'approve', 'operator');
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ status: 'approved', decidedBy: 'user:operator' });
    const restarts = h.journal.entries().filter((entry) => entry.type === 'vm.restart');
    expect(restarts).toHaveLength(2);
    expect(restarts[1]).toMatchObject({ actor: 'user:operator', data: { approval: approval.id, requestedBy: 'user:vendor-vendor-a' } });
    expect(h.journal.entries().find((entry) => entry.type === 'disruption.approval.decided')).toMatchObject({ actor: 'user:operator', data: { id: approval.id, approved: true } });
    // Decided once.
    expect((await decide(h, approval.id, 'reject', 'admin')).statusCode).toBe(409);
  });

  it('the requester cannot approve its own request; a request expires after 30 minutes; a rejection stops nothing', async () => {
    h = await harness();
    expect((await restart(h, 'ehr-db-1', 'operator')).statusCode).toBe(202);
    h.advance(1_500);
    const first = (await ask(h, 'ehr-db-1', 'operator')).json().approval;
    expect((await decide(h, first.id, 'approve', 'operator')).json().error.message).toMatch(/someone other than who asked/);
    const rejected = await decide(h, first.id, 'reject', 'admin');
    expect(rejected.json()).toMatchObject({ status: 'rejected', decidedBy: 'user:admin' });
    const second = (await ask(h, 'ehr-db-1', 'operator')).json().approval;
    h.advance(31 * 60_000);
    const late = await decide(h, second.id, 'approve', 'admin');
    expect(late.statusCode).toBe(409);
    expect(late.json().error.message).toMatch(/expired/);
    expect(h.journal.entries().filter((entry) => entry.type === 'vm.restart')).toHaveLength(1);
  });

  it('an approval accepts only what the request said it would break: if the danger changed, it is refused', async () => {
    h = await harness();
    expect((await restart(h, 'ehr-db-1', 'operator')).statusCode).toBe(202);
    h.advance(1_500);
    const held = (await ask(h, 'ehr-db-1', 'operator')).json().approval;
    expect(held.breaks).toMatch(/failing over now/);
    // Promoted; its new secondary not yet synchronised: a different danger than the one approved.
    h.advance(5_000);
    const changed = await decide(h, held.id, 'approve', 'admin');
    expect(changed.statusCode).toBe(409);
    expect(changed.json().error.message).toMatch(/the situation changed since the request: now ehr-db-1 has no synchronised secondary/);
    expect(h.journal.entries().filter((entry) => entry.type === 'vm.restart')).toHaveLength(1);
  });

  it('askApproval does not hold what the budget does not govern: a vendor outside its window is refused', async () => {
    h = await harness();
    const response = await ask(h, 'ehr-db-1', 'vendor:vendor-a');
    expect(response.json().error.code).toBe('TMR_API_OUTSIDE_WINDOW');
    expect(h.plane.approvals()).toEqual([]);
  });
});
