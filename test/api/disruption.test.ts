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
