/**
 * The security decisions, pure: a case opened by a detector's alert or by an operator's restore
 * request is stepped by securityStep() alone, from what the controller observes.
 */
import { describe, expect, it } from 'vitest';
import { rebalance } from '../../src/control/rebalance.ts';
import { openCase, securityStep, type SecurityCase, type SecurityCause } from '../../src/control/security.ts';
import { DEFAULT_TIMINGS } from '../../src/control/timings.ts';
import type { RestoreObservation, SnapshotObservation, VmMetrics } from '../../src/ports/index.ts';
import { tinyHospital, worldOf } from './world.ts';

const HOUR = 3_600_000;

function world() {
  const blueprint = tinyHospital({ hosts: 2, cores: 16, services: [{ name: 'lis', tier: 'critical', vcpu: 4 }] });
  return worldOf(blueprint, new Map([['lis-1', 'h1']]), 10 * HOUR);
}

const snapshot = (id: string, takenAtMs: number): SnapshotObservation => ({ id, vm: 'lis-1', datastore: 'ds-1', takenAtMs, retainUntilMs: takenAtMs + 24 * HOUR, immutable: true, digest: id });
const snapshots = [snapshot('s1', 1 * HOUR), snapshot('s2', 2 * HOUR), snapshot('s3', 3 * HOUR), snapshot('s4', 4 * HOUR)];

function step(w: ReturnType<typeof world>, securityCase: SecurityCase, nowMs: number, restore: RestoreObservation | null = null) {
  return securityStep({ securityCase, nowMs, model: w.model, state: w.state, snapshots, restore, timings: DEFAULT_TIMINGS });
}

describe('a security case', () => {
  it('opened by an alert, quarantines the VM and restores the newest snapshot taken before the anomalous writes', () => {
    const w = world();
    const cause: SecurityCause = {
      kind: 'alert',
      alert: { vm: 'lis-1', atMs: 10 * HOUR, score: 0.876, z: { writeEntropy: 9, diskWrite: 8, snapshotChange: 7 }, rule: 'entropy', files: null, anomalousWritesSinceMs: 3.5 * HOUR, estimatedIntrusionAtMs: 3 * HOUR, evidence: [] },
    };
    const opened = openCase(cause, w.state, 10 * HOUR);
    expect(opened.infectedInstances).toEqual(['lis-1#p']);
    const quarantine = step(w, opened, 10 * HOUR);
    expect(quarantine.action).toMatchObject({ type: 'quarantineVm', reason: expect.stringMatching(/^ransomware alert \(score 0\.88\): cut lis-1 off/) });
    const restore = step(w, quarantine.next, 10 * HOUR + 1_000);
    expect(restore.action).toMatchObject({ type: 'restoreSnapshot', snapshotId: 's3', restorePointMs: 3 * HOUR, host: 'h1' });
  });

  it('opened by an operator’s request, restores the chosen snapshot, acted on as a certain alert', () => {
    const w = world();
    const cause: SecurityCause = { kind: 'restore', request: { vm: 'lis-1', snapshotId: 's2', snapshotTakenAtMs: 2 * HOUR, requestedBy: 'user:operator', reason: 'bad patch', atMs: 10 * HOUR } };
    const quarantine = step(w, openCase(cause, w.state, 10 * HOUR), 10 * HOUR);
    expect(quarantine.action).toMatchObject({ type: 'quarantineVm', reason: expect.stringMatching(/^ransomware alert \(score 1\.00\)/) });
    const restore = step(w, quarantine.next, 10 * HOUR);
    expect(restore.action).toMatchObject({ type: 'restoreSnapshot', snapshotId: 's2', restorePointMs: 2 * HOUR });
    // Not healthy within its boot time (60 s) and restoreTimeoutExtraMs: given up, and the next older one comes next.
    const started = { ...restore.next, restore: { ...restore.next.restore!, id: 'r1' } };
    const booting: RestoreObservation = { id: 'r1', vm: 'lis-1', snapshotId: 's2', host: 'h1', network: 'recovery', state: 'booting', healthy: false, restorePointMs: 2 * HOUR };
    const late = 10 * HOUR + 60_000 + DEFAULT_TIMINGS.restoreTimeoutExtraMs + 1;
    expect(step(w, started, late - 2, booting).next.phase).toBe('restoring');
    const rejected = step(w, started, late, booting);
    expect(rejected.next).toMatchObject({ phase: 'quarantined', restore: null });
    expect(step(w, rejected.next, late).action).toMatchObject({ type: 'restoreSnapshot', snapshotId: 's1' });
  });
});

describe('the rebalancer', () => {
  it('moves nothing and changes no share while anything is being recovered', () => {
    const w = world();
    const metrics: VmMetrics[] = [{ vm: 'lis-1', instanceId: 'lis-1#p', host: 'h1', role: 'primary', demandCores: 4, allocatedCores: 4, readyPercent: 0, shares: 1 }];
    const input = { model: w.model, state: w.state, metrics, nowMs: 10 * HOUR, lastMigratedAtMs: new Map<string, number>() };
    expect(rebalance(input)).not.toEqual([]);
    w.state.inFlight.set('fence:h2', { issuedAtMs: 0, deadlineMs: 15_000 });
    expect(rebalance(input)).toEqual([]);
    w.state.inFlight.clear();
    w.state.vms.get('lis-1')!.pendingSinceMs = 10 * HOUR;
    expect(rebalance(input)).toEqual([]);
  });
});
