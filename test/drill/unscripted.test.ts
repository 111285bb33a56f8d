/**
 * The drills of failures nobody scripted (issue 13), each held to what it is about: a gray host is
 * degraded on evidence and emptied, and nothing is started on it; an intermittent failure is caught
 * over a window; a crash loop backs off and moves; a failing snapshot store is journaled and alerted
 * at once and a restore says how far back it went and why; a dependency that will not come is not
 * waited for; a paused leader catches up; a flapping link and a clock step change nothing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runDrill } from '../../src/drill/sim/run.ts';
import { faultsScenario } from '../../src/drill/sim/scenarios.ts';
import { UNSCRIPTED_SCENARIOS } from '../../src/drill/sim/unscripted.ts';
import { planPlacement } from '../../src/capacity/placement.ts';
import { loadBlueprint } from '../../src/model/index.ts';
import { alertsOfEvent } from '../../src/notify/alert.ts';
import { eventsOf, type JournalEntry } from '../../src/ports/index.ts';
import { ROOT, shipped } from '../support/blueprints.ts';

const reference = shipped('university-hospital');

/** The controller's own acts and verdicts after `fromMs` (what a fault could change), without times of observation. */
function decisionsAfter(entries: readonly JournalEntry[], fromMs: number): string[] {
  return entries.filter((entry) => entry.atMs >= fromMs && (entry.kind === 'action' || entry.kind === 'decision')).map((entry) => `${entry.atMs} ${entry.type} ${entry.subject} ${JSON.stringify(entry.data)}`);
}

const placements = (entries: readonly JournalEntry[], host: string, fromMs: number, toMs: number) =>
  entries.filter(
    (entry) =>
      entry.kind === 'action' &&
      entry.atMs >= fromMs &&
      entry.atMs < toMs &&
      ((entry.type === 'startVm' && entry.data.host === host) || (entry.type === 'migrateVm' && entry.data.to === host)),
  );

describe('drills of failures nobody scripted, on the reference hospital', () => {
  for (const scenario of UNSCRIPTED_SCENARIOS) {
    for (const seed of [1, 2]) {
      it(`${scenario.name} (seed ${seed}): no split brain, no lost VM, converges`, () => {
        const { report, unconverged } = runDrill({ blueprint: reference, scenario: scenario.name, seed });
        expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
        expect(unconverged).toEqual([]);
        expect(report.incidents.length).toBeGreaterThan(0);
      });
    }
  }

  it('gray-host: the slowed host is degraded on evidence across its copies, nothing is started or moved onto it, and continuous and critical services are back within their RTO of the verdict', () => {
    for (const seed of [1, 2, 3]) {
      const { report, journal } = runDrill({ blueprint: reference, scenario: 'gray-host', seed });
      const entries = journal.entries();
      const host = report.incidents[0]!.target;
      expect(report.grayHosts?.map((gray) => gray.host)).toEqual([host]);
      const gray = report.grayHosts![0]!;
      expect(gray.failing.length).toBeGreaterThanOrEqual(2);
      expect(gray.estateFailingShare).toBeLessThanOrEqual(0.2);
      // Evidence takes time (half a 30 s window of failures), but comes before any restart for health (60 s).
      expect(gray.degradedAtS - report.faultAtS).toBeGreaterThan(5);
      expect(gray.degradedAtS - report.faultAtS).toBeLessThan(60);
      const trustedMs = (gray.trustedAgainAtS ?? Number.POSITIVE_INFINITY) * 1000;
      expect(placements(entries, host, gray.degradedAtS * 1000, trustedMs)).toEqual([]);
      expect(gray.placedWhileDegraded).toBe(0);
      // No restart for health on the gray host before the verdict either: nothing is restarted where it fails.
      expect(entries.filter((entry) => entry.type === 'startVm' && entry.atMs >= report.faultAtS * 1000 && entry.data.host === host)).toEqual([]);
      for (const service of report.services.filter((candidate) => candidate.rtoAfterDegradedS !== undefined)) {
        if (service.tier === 'continuous') expect(service.rtoAfterDegradedS, service.name).toBeLessThanOrEqual(5);
        if (service.tier === 'critical') expect(service.rtoAfterDegradedS, service.name).toBeLessThanOrEqual(300);
      }
      // Every continuous VM keeps a synchronised secondary, none on the gray host.
      const degradedAlert = entries.filter((entry) => entry.type === 'host.degraded').flatMap((entry) => alertsOfEvent(entry, reference));
      expect(degradedAlert.map((alert) => alert.kind)).toEqual(['host.degraded']);
    }
  });

  it('a gray host holding continuous primaries: each fails over within its RTO of the verdict and keeps a synchronised secondary elsewhere', () => {
    const plan = planPlacement(reference).placements;
    for (const vm of ['ehr-db-1', 'icu-1', 'ehr-app-1']) {
      const host = plan.get(vm)!.primary;
      const scenario = faultsScenario('gray', `${host} slowed`, [{ kind: 'host-slowdown', host, speed: 0.05 }]);
      const { report, journal, twin } = runDrill({ blueprint: reference, scenario, seed: 1, horizonAfterFaultS: 3600 });
      expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
      const gray = report.grayHosts![0]!;
      expect(gray.host).toBe(host);
      expect(placements(journal.entries(), host, gray.degradedAtS * 1000, Number.POSITIVE_INFINITY)).toEqual([]);
      const continuous = report.services.filter((service) => service.tier === 'continuous' && service.rtoAfterDegradedS !== undefined);
      expect(continuous.length).toBeGreaterThan(0);
      for (const service of continuous) expect(service.rtoAfterDegradedS!, `${service.name} on ${host}`).toBeLessThanOrEqual(5);
      for (const service of reference.services.filter((candidate) => candidate.tier === 'continuous')) {
        for (const { name } of service.vms) {
          const copies = twin.snapshot().instances.filter((instance) => instance.vm === name);
          expect(copies.some((copy) => copy.role === 'secondary' && copy.synced && copy.host !== host), name).toBe(true);
          expect(copies.every((copy) => copy.host !== host), name).toBe(true);
        }
      }
    }
  });

  it('a 55 s failing / 1 s passing health pattern is caught over the window (a 60 s streak never comes) and the VM is restarted', () => {
    const vm = 'lis-1';
    const scenario = faultsScenario('pattern', 'lis-1 fails 55 s, passes 1 s', [{ kind: 'vm-health-pattern', vm, failS: 55, passS: 1 }]);
    const { journal, report } = runDrill({ blueprint: reference, scenario, seed: 1, horizonAfterFaultS: 900 });
    const stops = journal.entries().filter((entry) => entry.type === 'stopVm' && entry.subject === vm && entry.atMs >= report.faultAtS * 1000);
    expect(stops.length).toBeGreaterThan(0);
    expect(String(stops[0]!.data.reason)).toMatch(/intermittently/);
    expect((stops[0]!.atMs - report.faultAtS * 1000) / 1000).toBeLessThan(120);
  });

  it('crash-loop: restarted once where it was, then after a backoff elsewhere, and journaled as a crash loop', () => {
    const { report, journal } = runDrill({ blueprint: reference, scenario: 'crash-loop', seed: 1 });
    const entries = journal.entries();
    const vm = report.incidents[0]!.target;
    const fault = entries.find((entry) => entry.type === 'fault.injected')!;
    const loops = eventsOf(entries, 'vm.crash-loop').filter((entry) => entry.subject === vm);
    expect(loops.length).toBeGreaterThan(0);
    expect(loops[0]!.data.avoiding).toEqual([loops[0]!.data.host]);
    const starts = entries.filter((entry) => entry.type === 'startVm' && entry.subject === vm && entry.atMs >= fault.atMs);
    expect(starts.length).toBeLessThanOrEqual(3);
    const last = starts[starts.length - 1]!;
    expect(last.data.host).not.toBe(loops[0]!.data.host);
    expect(last.atMs - loops[0]!.atMs).toBeGreaterThanOrEqual(loops[0]!.data.backoffS * 1000);
    expect(report.services.find((service) => service.name === report.services.find((candidate) => candidate.affected)!.name)!.met).toBe(true);
  });

  it('snapshot-failure: every failed snapshot is journaled at once with the RPO at risk, the first of each VM alerts, and the restore after ransomware says how far back it went and why', () => {
    const { report, journal } = runDrill({ blueprint: reference, scenario: 'snapshot-failure', seed: 1 });
    const entries = journal.entries();
    const failed = eventsOf(entries, 'snapshot.failed');
    expect(failed.length).toBeGreaterThan(0);
    const fault = entries.find((entry) => entry.type === 'fault.injected')!;
    // At once: each at its VM's scheduled snapshot, within one snapshot interval of the fault.
    for (const entry of failed) expect(entry.atMs).toBe(entry.data.scheduledAtMs);
    const first = failed.filter((entry) => entry.data.first === true);
    expect(new Set(first.map((entry) => entry.subject)).size).toBe(first.length);
    expect(first.every((entry) => entry.atMs - fault.atMs <= entry.data.snapshotIntervalS * 1000)).toBe(true);
    const alerts = first.flatMap((entry) => alertsOfEvent(entry, reference));
    expect(alerts.length).toBe(first.length);
    expect(alerts.every((alert) => alert.kind === 'snapshot.failed' && typeof alert.facts.rpoAtRiskS === 'number')).toBe(true);
    expect(report.snapshotFailures!.length).toBe(first.length);
    const attacked = report.incidents.find((incident) => incident.kind === 'ransomware-encryption');
    expect(attacked?.security?.restorePoint?.fellBack).toMatch(/went back \d+ s .* scheduled snapshot\(s\) after the restore point failed — datastore .* is full/);
  });

  it('controller-pause: the paused leader decides nothing; after it resumes it fences the crashed host and recovers', () => {
    const { report, journal } = runDrill({ blueprint: reference, scenario: 'controller-pause', seed: 1 });
    const entries = journal.entries();
    const paused = entries.find((entry) => entry.type === 'controller.paused')!;
    const resumed = entries.find((entry) => entry.type === 'controller.resumed')!;
    expect(resumed.atMs - paused.atMs).toBe(25_000);
    expect(entries.filter((entry) => entry.kind === 'action' && entry.atMs > paused.atMs && entry.atMs < resumed.atMs)).toEqual([]);
    expect(entries.some((entry) => entry.type === 'fence.completed' && entry.atMs > resumed.atMs && entry.data.ok === true)).toBe(true);
    for (const service of report.services) if (service.tier === 'critical') expect(service.met, service.name).toBe(true);
  });

  it('flapping-network: the flapping host is seen isolated and up again, and no VM is stopped, started or fenced', () => {
    const { report, journal } = runDrill({ blueprint: reference, scenario: 'flapping-network', seed: 1 });
    const entries = journal.entries().filter((entry) => entry.atMs >= report.faultAtS * 1000);
    expect(entries.some((entry) => entry.type === 'host.status' && entry.data.to === 'isolated')).toBe(true);
    expect(entries.filter((entry) => entry.kind === 'action')).toEqual([]);
    expect(report.services.every((service) => service.rtoMeasuredS === 0)).toBe(true);
  });
});

describe('a clock step on one host changes no decision', () => {
  it('clock-step: stepping the busiest host +30 s and then to −30 s makes the controller do nothing', () => {
    const { report, journal } = runDrill({ blueprint: reference, scenario: 'clock-step', seed: 1 });
    const after = journal.entries().filter((entry) => entry.atMs >= report.faultAtS * 1000);
    expect(after.filter((entry) => entry.kind === 'action' || entry.type === 'host.status')).toEqual([]);
  });

  for (const stepMs of [30_000, -30_000]) {
    it(`a host crash while its clock is stepped ${stepMs > 0 ? '+' : '−'}30 s is detected, fenced and recovered exactly as without the step`, () => {
      const host = 'a1-h4';
      const plain = runDrill({ blueprint: reference, scenario: faultsScenario('crash', 'crash', [{ kind: 'host-crash', host }]), seed: 3, horizonAfterFaultS: 3600 });
      const stepped = runDrill({ blueprint: reference, scenario: faultsScenario('crash', 'crash', [{ kind: 'clock-step', host, stepMs }, { kind: 'host-crash', host }]), seed: 3, horizonAfterFaultS: 3600 });
      const faultAtMs = plain.report.faultAtS * 1000;
      expect(stepped.report.faultAtS * 1000).toBe(faultAtMs);
      expect(decisionsAfter(stepped.journal.entries(), faultAtMs)).toEqual(decisionsAfter(plain.journal.entries(), faultAtMs));
      // The host's own stamp is recorded, off by the step; the verdict used the reader's time.
      const lost = eventsOf(stepped.journal.entries(), 'heartbeat.lost').find((entry) => entry.subject === host)!;
      expect(lost.data.hostStampAtMs! - lost.data.lastSeenAtMs).toBe(stepMs);
    });
  }
});

describe('a dependency that will not come', () => {
  const result = loadBlueprint(readFileSync(`${ROOT}test/fixtures/valid/tier-inversion.yaml`));
  if (!result.ok) throw new Error('fixture invalid');
  const inversion = result.blueprint;

  it('a critical service whose deferred dependency is shed in the same recovery starts at once, and the report says it runs without it', () => {
    const { report, journal } = runDrill({ blueprint: inversion, scenario: 'rack-failure', seed: 1 });
    const orders = report.services.find((service) => service.name === 'orders')!;
    expect(orders.runsWithout).toEqual([{ dependency: 'reporting', reason: expect.stringMatching(/^shed/) }]);
    expect(orders.note).toMatch(/runs without reporting/);
    // Detection and fencing (~2 s) and its 60 s boot: no 120 s wait for a dependency that is not coming.
    expect(orders.rtoMeasuredS!).toBeLessThan(60 + 30);
    const starts = eventsOf(journal.entries(), 'startVm').filter((entry) => entry.subject.startsWith('orders') && entry.atMs >= report.faultAtS * 1000);
    expect(starts.length).toBeGreaterThan(0);
    for (const start of starts) expect(start.data.withoutDependencies?.[0]?.service).toBe('reporting');
  });

  it('dependency-lost on the reference hospital: lower tiers are shed, the top tiers recover, and every restart that lacks a dependency says which', () => {
    const { report, journal } = runDrill({ blueprint: reference, scenario: 'dependency-lost', seed: 1 });
    expect(report.invariants).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
    for (const service of report.services) if (service.tier === 'critical') expect(service.met, service.name).toBe(true);
    const faultAtMs = report.faultAtS * 1000;
    for (const start of eventsOf(journal.entries(), 'startVm').filter((entry) => entry.atMs >= faultAtMs && entry.data.role === 'primary')) {
      for (const gap of start.data.withoutDependencies ?? []) expect(gap.reason.length).toBeGreaterThan(0);
    }
  });
});
