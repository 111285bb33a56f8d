/**
 * The drill report, computed from the journal alone: measured values come from what was observed
 * (fault injected → health check passing again; last replicated write → fault), never from the plan.
 */
import { eventsOf, isEvent, type EventEntry, type JournalEntry, type JournalEventType } from '../ports/index.ts';
import type { Blueprint, Service } from '../model/index.ts';
import { effectiveRtoS, tierOf } from '../model/index.ts';
import { backAfterDegradedS, dependencyGaps, grayHosts, restoreFallBack, snapshotFailures, unscriptedDetection, type DependencyGap, type GrayHostIncident, type SnapshotFailureReport } from './unscripted.ts';

export interface ServiceResult {
  readonly name: string;
  readonly tier: string;
  readonly rtoTargetS: number;
  readonly rtoMeasuredS: number | null;
  readonly rpoTargetS: number;
  readonly rpoMeasuredS: number | null;
  readonly met: boolean;
  readonly affected: boolean;
  readonly shed?: true;
  readonly reason?: string;
  /** Set when the service was held to another tier's target, and why. */
  readonly effectiveTier?: string;
  readonly note?: string;
  /** Real VMs: writes the guest acknowledged (a probe saw them durable) that the recovered copy does not hold. */
  readonly ackedWritesLost?: number;
  /** Dependencies it was started without after the fault, and why (shed, quarantined, unrecoverable, late). */
  readonly runsWithout?: readonly DependencyGap[];
  /** Gray failure: its recovery counted from the moment its host was declared degraded. */
  readonly rtoAfterDegradedS?: number | null;
}

export interface Incident {
  readonly kind: string;
  readonly target: string;
  readonly vm: string | null;
  readonly startedAtS: number;
  readonly detectedAtS: number | null;
  readonly fencedAtS: number | null;
  readonly recoveredAtS: number | null;
  readonly vmsAffected: number;
  /** Attacks only (ransomware drills): what the issue asks of each incident. */
  readonly security?: SecurityIncident;
}

/** One attacked VM: detection, the intrusion-time estimate, containment and the clean recovery. */
export interface SecurityIncident {
  /** When the attacker took the VM (true) and what the detector estimated, never having been told. */
  readonly trueIntrusionAtS: number | null;
  readonly estimatedIntrusionAtS: number | null;
  readonly intrusionEstimateErrorS: number | null;
  readonly anomalousWritesSinceS: number | null;
  /** Encryption start (Te) → alert. */
  readonly detectionDelayS: number | null;
  readonly alertScore: number | null;
  readonly quarantinedAtS: number | null;
  readonly attackerWrittenBeforeQuarantineMiB: number | null;
  readonly restorePoint: {
    readonly snapshotId: string;
    readonly takenAtS: number;
    readonly beforeEncryption: boolean;
    /** Why it went back further than one snapshot interval (failed snapshots), when it did. */
    readonly fellBack?: string;
  } | null;
  /** Clean data lost: encryption start − restore point. */
  readonly rpoS: number | null;
  readonly snapshotIntervalS: number;
  /** Legitimate writes from the restore point to the quarantine that the restore could not bring back. */
  readonly dataLostMiB: number | null;
  /** Encryption start → the restored copy passing its health check in production. */
  readonly timeToCleanRecoveryS: number | null;
  readonly cleanRecoveryAtS: number | null;
  /** Systems that never stopped answering during the drill. */
  readonly systemsStayedUp: number;
  readonly systemsTotal: number;
  readonly snapshotDeletionsAttempted: number;
  readonly snapshotDeletionsRefused: number;
}

export interface DrillReport {
  readonly scenario: string;
  readonly description: string;
  readonly seed: number;
  readonly substrate: string;
  readonly blueprint: string;
  readonly faultAtS: number;
  readonly endedAtS: number;
  readonly services: readonly ServiceResult[];
  readonly invariants: { readonly splitBrain: number; readonly lostVms: number; readonly immutableViolations: number };
  /** Invariant 4 (cyber drills): times the enforced policy let a quarantined VM reach more than the forensic network, or cut another flow. */
  readonly quarantineViolations?: number;
  readonly summary: { readonly met: number; readonly missed: number; readonly shed: number; readonly unaffected: number };
  readonly incidents: readonly Incident[];
  readonly decisions: readonly { readonly atS: number; readonly type: string; readonly subject: string; readonly reason: string }[];
  /** Hosts degraded by a gray failure after the fault, with their evidence (absent when none). */
  readonly grayHosts?: readonly GrayHostIncident[];
  /** Snapshots that failed after the fault, per VM, with the RPO at risk (absent when none). */
  readonly snapshotFailures?: readonly SnapshotFailureReport[];
}

export interface ReportInput {
  readonly blueprint: Blueprint;
  readonly entries: readonly JournalEntry[];
  readonly scenario: string;
  readonly description: string;
  readonly seed: number;
  readonly substrate: string;
  readonly invariants: DrillReport['invariants'];
  readonly quarantineViolations?: number;
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** What the journal shows of each VM after the fault: outages, recoveries, data lost, and why. */
interface Observed {
  readonly faultAtMs: number;
  readonly affected: Set<string>;
  readonly downSince: Map<string, number>;
  readonly lastRecovery: Map<string, number>;
  readonly rpoMs: Map<string, number>;
  readonly coldRestart: Map<string, string>;
  readonly shedReason: Map<string, string>;
  readonly restoredFromSnapshot: Set<string>;
  /** Real VMs: acknowledged writes lost per probed VM (null: unknown). */
  readonly writesLost: Map<string, number | null>;
  /** The drill probed the guests itself (real VMs): its probes replace what the controller observed. */
  readonly probed: boolean;
  /** An attacked VM's outage counts from its encryption, not from an earlier fault of the drill (snapshot-failure). */
  readonly outageFromMs: Map<string, number>;
}

export function buildDrillReport(input: ReportInput): DrillReport {
  const { blueprint, entries } = input;
  const faults = eventsOf(entries, 'fault.injected').filter((entry) => entry.kind === 'fault');
  const faultAtMs = faults[0]?.atMs ?? 0;
  const endedAtMs = entries.length > 0 ? entries[entries.length - 1]!.atMs : 0;
  const observed = observe(blueprint, entries, faults, faultAtMs);
  if (observed.probed) observeProbes(entries, observed);
  const gaps = dependencyGaps(blueprint, entries, faultAtMs);
  const gray = grayHosts(entries, faultAtMs);
  const degradedAtMs = gray.length === 0 ? null : gray[0]!.degradedAtS * 1000;
  const services = blueprint.services.map((service) => withUnscripted(serviceResult(blueprint, service, observed), service, observed, gaps.get(service.name), degradedAtMs));
  const failedSnapshots = snapshotFailures(entries, faultAtMs);
  const systemsStayedUp = services.filter((service) => !service.affected).length;
  const incidents: Incident[] = faults.map((fault) =>
    fault.data.kind === 'ransomware-encryption'
      ? securityIncident(fault, entries, blueprint, { systemsStayedUp, systemsTotal: services.length })
      : faultIncident(fault, entries, blueprint, observed),
  );
  const shed = services.filter((service) => service.shed === true).length;
  const met = services.filter((service) => service.met).length;
  return {
    scenario: input.scenario,
    description: input.description,
    seed: input.seed,
    substrate: input.substrate,
    blueprint: blueprint.name,
    faultAtS: round(faultAtMs / 1000),
    endedAtS: round(endedAtMs / 1000),
    services,
    invariants: input.invariants,
    ...(input.quarantineViolations === undefined ? {} : { quarantineViolations: input.quarantineViolations }),
    summary: { met, missed: services.length - met, shed, unaffected: services.filter((service) => !service.affected).length },
    incidents,
    decisions: decisionsAfter(entries, faultAtMs),
    ...(gray.length === 0 ? {} : { grayHosts: gray }),
    ...(failedSnapshots.length === 0 ? {} : { snapshotFailures: failedSnapshots }),
  };
}

/** Adds what a service runs without, and (gray failure) its recovery counted from the degraded verdict. */
function withUnscripted(result: ServiceResult, service: Service, observed: Observed, gaps: readonly DependencyGap[] | undefined, degradedAtMs: number | null): ServiceResult {
  const hit = service.vms.map((vm) => vm.name).filter((vm) => observed.affected.has(vm));
  let extra: Partial<ServiceResult> = {};
  if (gaps !== undefined) {
    const without = `runs without ${gaps.map((gap) => `${gap.dependency} (${gap.reason})`).join(', ')}`;
    extra = { runsWithout: gaps, note: result.note === undefined ? without : `${result.note}; ${without}` };
  }
  if (degradedAtMs !== null && hit.length > 0) {
    const recoveries = hit.map((vm) => (observed.downSince.has(vm) ? null : (observed.lastRecovery.get(vm) ?? null)));
    const recoveredAtMs = recoveries.includes(null) ? null : Math.max(...(recoveries as number[]));
    extra = { ...extra, rtoAfterDegradedS: backAfterDegradedS(recoveredAtMs, degradedAtMs) };
  }
  return { ...result, ...extra };
}

/** Per VM: healthy primary instances over time, and the outages that began after the fault. */
function observe(blueprint: Blueprint, entries: readonly JournalEntry[], faults: readonly EventEntry<'fault.injected'>[], faultAtMs: number): Observed {
  const observed: Observed = {
    faultAtMs,
    affected: new Set(),
    downSince: new Map(),
    lastRecovery: new Map(),
    rpoMs: new Map(),
    coldRestart: new Map(),
    shedReason: new Map(),
    restoredFromSnapshot: new Set(),
    writesLost: new Map(),
    probed: entries.some((entry) => isEvent(entry, 'probe.started')),
    outageFromMs: new Map(),
  };
  const { affected, downSince, lastRecovery, rpoMs } = observed;
  const healthy = new Map<string, Set<string>>();
  // Restored from a snapshot after an attack: the encryption start of each attacked VM.
  const encryptedAtMs = new Map<string, number>();
  for (const fault of faults) if (fault.data.kind === 'ransomware-encryption') encryptedAtMs.set(fault.subject, fault.atMs);
  for (const [vm, atMs] of encryptedAtMs) observed.outageFromMs.set(vm, atMs);
  for (const vm of blueprint.vms) healthy.set(vm.name, new Set());

  const setHealthy = (vm: string, instance: string, isHealthy: boolean, atMs: number) => {
    const set = healthy.get(vm);
    if (set === undefined) return;
    const wasUp = set.size > 0;
    if (isHealthy) set.add(instance);
    else set.delete(instance);
    const isUp = set.size > 0;
    if (wasUp && !isUp && atMs >= faultAtMs && faults.length > 0) {
      downSince.set(vm, atMs);
      affected.add(vm);
    } else if (!wasUp && isUp && downSince.has(vm)) {
      downSince.delete(vm);
      lastRecovery.set(vm, atMs);
    }
  };

  for (const entry of entries) {
    if (isEvent(entry, 'vm.instance')) {
      const { data } = entry;
      setHealthy(entry.subject, data.instance, data.healthy === true && data.role === 'primary' && data.state === 'running', entry.atMs);
    } else if (isEvent(entry, 'vm.removed')) {
      setHealthy(entry.subject, entry.data.instance, false, entry.atMs);
    } else if (isEvent(entry, 'startVm') && entry.kind === 'action' && entry.data.ok === true && entry.data.role === 'primary' && entry.atMs >= faultAtMs && faults.length > 0) {
      const restorePointMs = typeof entry.data.restorePointMs === 'number' ? entry.data.restorePointMs : null;
      if (restorePointMs !== null) {
        const lostMs = Math.max(0, faultAtMs - restorePointMs);
        rpoMs.set(entry.subject, Math.max(rpoMs.get(entry.subject) ?? 0, lostMs));
      }
    } else if (isEvent(entry, 'promoteRestored') && entry.kind === 'action' && entry.data.ok === true && typeof entry.data.restorePointMs === 'number') {
      // Restored from an immutable snapshot: the clean data lost runs from the restore point to the encryption start.
      const startMs = encryptedAtMs.get(entry.subject) ?? faultAtMs;
      rpoMs.set(entry.subject, Math.max(rpoMs.get(entry.subject) ?? 0, Math.max(0, startMs - entry.data.restorePointMs)));
      observed.restoredFromSnapshot.add(entry.subject);
    } else if (isEvent(entry, 'vm.cold-restart') && entry.atMs >= faultAtMs) {
      observed.coldRestart.set(entry.subject, String(entry.data.reason));
    } else if (isEvent(entry, 'vm.shed') && entry.atMs >= faultAtMs) {
      observed.shedReason.set(entry.subject, String(entry.data.reason));
    }
  }
  return observed;
}

/**
 * Real VMs: the drill's own probes of each guest (health endpoint, acknowledged writes) measure
 * the outage and the data lost; they replace what the controller observed.
 */
function observeProbes(entries: readonly JournalEntry[], observed: Observed): void {
  const { affected, downSince, lastRecovery, rpoMs, writesLost } = observed;
  affected.clear();
  downSince.clear();
  lastRecovery.clear();
  rpoMs.clear();
  for (const entry of eventsOf(entries, 'probe.outage')) {
    const data = entry.data;
    affected.add(entry.subject);
    if (typeof data.upAtMs === 'number') lastRecovery.set(entry.subject, data.upAtMs);
    else downSince.set(entry.subject, Number(data.downAtMs));
    const lost = typeof data.writesLost === 'number' ? data.writesLost : null;
    writesLost.set(entry.subject, lost);
    if (lost !== null) rpoMs.set(entry.subject, lost * Number(data.writeIntervalMs));
  }
}

/** One service's measured RTO and RPO against its tier (or the tier it was held to), and why. */
function serviceResult(blueprint: Blueprint, service: Service, observed: Observed): ServiceResult {
  const { affected, downSince, lastRecovery, rpoMs, coldRestart, shedReason, writesLost, faultAtMs } = observed;
  const tier = tierOf(blueprint, service);
  const vms = service.vms.map((vm) => vm.name);
  const hit = vms.filter((vm) => affected.has(vm));
  const stillDown = hit.filter((vm) => downSince.has(vm));
  const cold = vms.find((vm) => coldRestart.has(vm));
  const rtoTargetS = effectiveRtoS(blueprint, tier, cold !== undefined);
  let rtoMeasuredS: number | null = 0;
  if (stillDown.length > 0) rtoMeasuredS = null;
  else if (hit.length > 0) rtoMeasuredS = round(Math.max(...hit.map((vm) => (lastRecovery.get(vm) ?? faultAtMs) - (observed.outageFromMs.get(vm) ?? faultAtMs))) / 1000);
  const rpoValues = vms.map((vm) => rpoMs.get(vm) ?? 0);
  const unknownLoss = vms.some((vm) => writesLost.has(vm) && writesLost.get(vm) === null);
  const rpoMeasuredS = unknownLoss || (stillDown.length > 0 && rpoValues.every((value) => value === 0)) ? null : round(Math.max(0, ...rpoValues) / 1000);
  const lostWrites = vms.filter((vm) => writesLost.has(vm)).map((vm) => writesLost.get(vm) ?? 0);
  const shedVm = stillDown.find((vm) => shedReason.has(vm));
  const restored = vms.find((vm) => observed.restoredFromSnapshot.has(vm));
  // Replication copies every write, encryption included: after ransomware the recovery point is
  // the last clean immutable snapshot, so the RPO a tier can promise is its snapshot interval.
  const effectiveRpoS = restored !== undefined ? Math.max(tier.rpoS, tier.snapshot.intervalS) : tier.rpoS;
  const met = rtoMeasuredS !== null && rpoMeasuredS !== null && rtoMeasuredS <= rtoTargetS + 1e-9 && rpoMeasuredS <= effectiveRpoS + 1e-9;
  const wasShed = vms.find((vm) => shedReason.has(vm));
  return {
    name: service.name,
    tier: service.tier,
    rtoTargetS: tier.rtoS,
    rtoMeasuredS,
    rpoTargetS: tier.rpoS,
    rpoMeasuredS,
    met,
    affected: hit.length > 0,
    ...(observed.probed && lostWrites.length > 0 && !unknownLoss ? { ackedWritesLost: lostWrites.reduce((sum, value) => sum + value, 0) } : {}),
    ...(shedVm !== undefined ? { shed: true as const, reason: shedReason.get(shedVm)! } : {}),
    ...(restored !== undefined && cold === undefined
      ? {
          note: `${restored} was restored from an immutable snapshot after ransomware (replicas hold the encryption too): RPO held to the snapshot interval, ${effectiveRpoS} s`,
        }
      : {}),
    ...(cold !== undefined
      ? {
          effectiveTier: 'critical',
          note: `both copies of ${cold} were lost at once; it was restarted like a critical VM, so its target became ${rtoTargetS} s`,
        }
      : wasShed !== undefined && shedVm === undefined
        ? { note: `shed for a while (${shedReason.get(wasShed)}) and restored` }
        : {}),
  };
}

/** A fault on a host, rack, room or feed: when it was detected, fenced and every VM it hit was back. */
function faultIncident(fault: EventEntry<'fault.injected'>, entries: readonly JournalEntry[], blueprint: Blueprint, observed: Observed): Incident {
  const target = String(fault.data.target);
  const hostsOfTarget = new Set(
    blueprint.hosts.filter((host) => host.name === target || host.rack === target || host.room === target || host.powerFeed === target).map((host) => host.name),
  );
  const detected =
    entries.find(
      (entry) => entry.atMs >= fault.atMs && isEvent(entry, 'host.status') && hostsOfTarget.has(entry.subject) && ['failed', 'isolated', 'storage-lost'].includes(String(entry.data.to)),
    ) ?? unscriptedDetection(entries, { atMs: fault.atMs, kind: String(fault.data.kind), target });
  const fenced = entries.find((entry) => entry.atMs >= fault.atMs && isEvent(entry, 'fence.completed') && entry.data.ok === true && hostsOfTarget.has(entry.subject));
  const vmToService = new Map(blueprint.vms.map((vm) => [vm.name, vm.service]));
  const hitVms = [...observed.affected];
  const recoveries = hitVms.map((vm) => (observed.downSince.has(vm) ? null : observed.lastRecovery.get(vm) ?? null));
  const recoveredAtMs = recoveries.length === 0 ? fault.atMs : recoveries.includes(null) ? null : Math.max(...(recoveries as number[]));
  return {
    kind: String(fault.data.kind),
    target,
    vm: null,
    startedAtS: round(fault.atMs / 1000),
    detectedAtS: detected === undefined ? null : round(detected.atMs / 1000),
    fencedAtS: fenced === undefined ? null : round(fenced.atMs / 1000),
    recoveredAtS: recoveredAtMs === null ? null : round(recoveredAtMs / 1000),
    vmsAffected: hitVms.filter((vm) => vmToService.has(vm)).length,
  };
}

/** The controller's decisions after the fault that explain the outcome: sheds, cold restarts, host verdicts. */
function decisionsAfter(entries: readonly JournalEntry[], faultAtMs: number): DrillReport['decisions'] {
  const decisions: DrillReport['decisions'][number][] = [];
  for (const entry of entries) {
    if (entry.atMs < faultAtMs) continue;
    if (isEvent(entry, 'host.status')) {
      if (entry.data.to !== 'suspect') decisions.push({ atS: round(entry.atMs / 1000), type: `host.${String(entry.data.to)}`, subject: entry.subject, reason: String(entry.data.reason ?? '') });
    } else if (isEvent(entry, 'vm.shed') || isEvent(entry, 'vm.unshed') || isEvent(entry, 'vm.cold-restart')) {
      decisions.push({ atS: round(entry.atMs / 1000), type: entry.type, subject: entry.subject, reason: String(entry.data.reason ?? '') });
    }
  }
  return decisions;
}

const MIB_PER_KIB = 1 / 1024;

function restorePointOf(entries: readonly JournalEntry[], vm: string, restorePointMs: number | null, snapshotId: string | undefined, startMs: number, intervalS: number): SecurityIncident['restorePoint'] {
  if (restorePointMs === null) return null;
  const fellBack = restoreFallBack(entries, vm, restorePointMs, startMs, intervalS);
  return { snapshotId: String(snapshotId ?? ''), takenAtS: round(restorePointMs / 1000), beforeEncryption: restorePointMs < startMs, ...(fellBack === null ? {} : { fellBack }) };
}

/** A ransomware incident, from the journal: the attacker's moves (drill ground truth) and the controller's. */
function securityIncident(
  fault: EventEntry<'fault.injected'>,
  entries: readonly JournalEntry[],
  blueprint: Blueprint,
  systems: { systemsStayedUp: number; systemsTotal: number },
): Incident {
  const vm = fault.subject;
  const startMs = fault.atMs;
  const of = <T extends JournalEventType>(type: T, predicate: (entry: EventEntry<T>) => boolean = () => true) =>
    entries.find((entry): entry is EventEntry<T> => isEvent(entry, type) && entry.subject === vm && predicate(entry));
  const intrusion = of('attack.intrusion') ?? of('attack.foothold');
  const alert = of('security.alert', (entry) => entry.atMs >= (intrusion?.atMs ?? 0));
  const quarantined = of('quarantineVm', (entry) => entry.data.ok === true && entry.atMs >= (alert?.atMs ?? startMs));
  const promoted = of('promoteRestored', (entry) => entry.data.ok === true && entry.atMs >= startMs);
  const restoreAction = eventsOf(entries, 'restoreSnapshot').filter((entry) => entry.subject === vm && entry.data.ok === true && entry.atMs <= (promoted?.atMs ?? Infinity)).pop();
  const healthyAfter =
    promoted === undefined ? undefined : of('vm.instance', (entry) => entry.atMs >= promoted.atMs && entry.data.role === 'primary' && entry.data.healthy === true);
  const truth = of('security.truth');
  const deletions = eventsOf(entries, 'attack.snapshot-delete').filter((entry) => entry.subject === vm);
  const service = blueprint.services.find((candidate) => candidate.vms.some((entry) => entry.name === vm));
  const tier = service === undefined ? undefined : tierOf(blueprint, service);
  const seconds = (ms: number | null | undefined) => (typeof ms === 'number' ? round(ms / 1000) : null);
  const estimatedMs = typeof alert?.data.estimatedIntrusionAtMs === 'number' ? alert.data.estimatedIntrusionAtMs : null;
  const restorePointMs = typeof promoted?.data.restorePointMs === 'number' ? promoted.data.restorePointMs : null;
  const written = typeof truth?.data.attackerWrittenBeforeQuarantineKiB === 'number' ? truth.data.attackerWrittenBeforeQuarantineKiB : null;
  const lost = typeof truth?.data.legitimateWritesLostKiB === 'number' ? truth.data.legitimateWritesLostKiB : null;
  const security: SecurityIncident = {
    trueIntrusionAtS: seconds(intrusion?.atMs),
    estimatedIntrusionAtS: seconds(estimatedMs),
    intrusionEstimateErrorS: estimatedMs !== null && intrusion !== undefined ? round((estimatedMs - intrusion.atMs) / 1000) : null,
    anomalousWritesSinceS: seconds(typeof alert?.data.anomalousWritesSinceMs === 'number' ? alert.data.anomalousWritesSinceMs : null),
    detectionDelayS: alert === undefined ? null : round((alert.atMs - startMs) / 1000),
    alertScore: typeof alert?.data.score === 'number' ? alert.data.score : null,
    quarantinedAtS: seconds(quarantined?.atMs),
    attackerWrittenBeforeQuarantineMiB: written === null ? null : Math.round(written * MIB_PER_KIB),
    restorePoint: restorePointOf(entries, vm, restorePointMs, restoreAction?.data.snapshotId, startMs, tier?.snapshot.intervalS ?? 0),
    rpoS: restorePointMs === null ? null : round(Math.max(0, startMs - restorePointMs) / 1000),
    snapshotIntervalS: tier?.snapshot.intervalS ?? 0,
    dataLostMiB: lost === null ? null : Math.round(lost * MIB_PER_KIB),
    timeToCleanRecoveryS: healthyAfter === undefined ? null : round((healthyAfter.atMs - startMs) / 1000),
    cleanRecoveryAtS: seconds(healthyAfter?.atMs),
    systemsStayedUp: systems.systemsStayedUp,
    systemsTotal: systems.systemsTotal,
    snapshotDeletionsAttempted: deletions.reduce((sum, entry) => sum + Number(entry.data.attempted ?? 0), 0),
    snapshotDeletionsRefused: deletions.reduce((sum, entry) => sum + Number(entry.data.refused ?? 0), 0),
  };
  return {
    kind: 'ransomware-encryption',
    target: vm,
    vm,
    startedAtS: round(startMs / 1000),
    detectedAtS: seconds(alert?.atMs),
    fencedAtS: seconds(quarantined?.atMs),
    recoveredAtS: seconds(healthyAfter?.atMs),
    vmsAffected: 1,
    security,
  };
}
