/**
 * The ransomware drill on real VMs (`tomaranai drill blueprints/lab.yaml --substrate qemu
 * --scenario ransomware [--variant V]`). The controller runs unchanged, with its security loop on:
 * it reads the lab's security telemetry every second (bytes written, changed blocks and their
 * entropy from a dirty bitmap read over NBD, denied flows from nftables counters), and on an alert
 * quarantines the VM, restores its newest snapshot from before the anomalous writes into an
 * isolated network, has the guest verify its documents there, and cuts over.
 *
 * The drill is the attacker and the judge, never the controller's helper: it drives the snapshot
 * schedule the lab's substrate lacks (every few seconds, immutable, out of the guest's reach), starts
 * the guest's encryptor over HTTP from the forensic workstation's address (the attacker's session),
 * and measures from outside: the detection delay from the start of the encryptor (its first write
 * follows within a second), the restore point, and — reading the VM's disk from the host — whether
 * every write the guest acknowledged before that point is still there, and whether any document is
 * still encrypted.
 */
import { join } from 'node:path';
import type { ControllerTimings } from '../../control/timings.ts';
import { eventsOf, isEvent } from '../../ports/index.ts';
import { parseHexDump } from '../../substrate/qemu/block-telemetry.ts';
import { run } from '../../substrate/qemu/command.ts';
import type { DocumentCheck } from '../../substrate/qemu/lab-restore.ts';
import { readDiskRecords } from '../../substrate/qemu/vm.ts';
import { TomaranaiError } from '../../errors/index.ts';
import { delay } from './probes.ts';
import { conclude, type LabDrill, type LabRansomwareChecks, type LabRansomwareVariant, labWaits, type RealDrillRun, warmUp } from './lab-drill.ts';

export { LAB_RANSOMWARE_VARIANTS, type LabRansomwareChecks, type LabRansomwareVariant } from './lab-drill.ts';
import { LAB_RANSOMWARE_VARIANTS } from './lab-drill.ts';

/**
 * The security loop on the lab: telemetry every 2 s (the twin reads every 10 s of simulated time;
 * each reading costs every host a QMP transaction, an NBD export and two short processes per VM),
 * a 15-sample warm-up of the detector's baselines instead of 60 (a drill cannot wait 10 minutes),
 * denied destinations learned as habits for as long.
 */
export const LAB_SECURITY = Object.freeze({ intervalMs: 2_000, caseStepMs: 500, detector: Object.freeze({ warmupSamples: 15, deniedLearningSamples: 15 }) });
/**
 * A restored guest boots beside six others under TCG: its check gets time. And this drill strikes
 * a guest, not a host: it calls a host failed after 30 s of silence on both channels (the host
 * drills: 1.5 s) and fences an isolated host whose VMs do not answer after 60 s (0.5 s). On a
 * saturated 2-core machine the host drills' timings fence healthy hosts whose agents answered a
 * poll late (seen: all three fenced while other jobs kept the load at 20, and again with 10 s and
 * 15 s), which would be a host drill inside the ransomware drill.
 */
export const LAB_SECURITY_TIMINGS: Partial<ControllerTimings> = Object.freeze({ restoredUnhealthyGraceMs: 90_000, detectionTimeoutMs: 30_000, isolationResponseMs: 60_000 });

/** The guest's documents (scripts/vm-image.sh, /etc/tmr-layout): 16 of 64 KiB from sector 65536. */
export const GUEST_DOCUMENTS = Object.freeze({ firstSector: 65_536, count: 16, sectors: 128 });
const SNAPSHOT_EVERY_MS = 3_000;
const SNAPSHOT_RETAIN_MS = 15 * 60_000;


/** The VM a ransomware drill strikes: the one asked for, else the first critical service's first VM. */
export function ransomwareTarget(lab: Pick<LabDrill, 'options' | 'manifest'>): string {
  const asked = lab.options.target;
  if (asked !== undefined) {
    const vm = lab.manifest.vms.find((candidate) => candidate.name === asked || candidate.service === asked);
    if (vm === undefined) throw new TomaranaiError('TMR_DRILL_UNKNOWN_SCENARIO', `no VM or system "${asked}" in the lab`, `use one of: ${lab.manifest.vms.map((candidate) => candidate.name).join(', ')}`);
    return vm.name;
  }
  return (lab.manifest.vms.find((vm) => vm.tier === 'critical') ?? lab.manifest.vms[0]!).name;
}

function variantOf(value: string | undefined): LabRansomwareVariant {
  const variant = value === undefined || value === 'full' ? 'whole' : value;
  if (!(LAB_RANSOMWARE_VARIANTS as readonly string[]).includes(variant)) {
    throw new TomaranaiError('TMR_DRILL_UNKNOWN_SCENARIO', `the lab's encryptor cannot play the variant "${variant}"`, `use one of: ${LAB_RANSOMWARE_VARIANTS.join(', ')}`);
  }
  return variant as LabRansomwareVariant;
}

/** Snapshots of one VM every few seconds, and what the probes had seen acknowledged when each began. */
class SnapshotSchedule {
  readonly ackedAtSnapshot = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly lab: LabDrill,
    private readonly vm: string,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const acked = this.lab.probes.vms.get(this.vm)?.lastAckedSeq ?? 0;
        const outcome = await this.lab.substrate.takeSnapshot({ epoch: this.lab.epoch, vm: this.vm, retainMs: SNAPSHOT_RETAIN_MS });
        // A write acknowledged before the backup began is in it: the backup is point-in-time at its start.
        if (outcome.ok && outcome.detail !== undefined) this.ackedAtSnapshot.set(outcome.detail.replace(/^.*\//, '').replace(/\.qcow2$/, ''), acked);
        await delay(SNAPSHOT_EVERY_MS);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

export async function runLabRansomware(lab: LabDrill): Promise<RealDrillRun> {
  const { options, manifest, clock, controller, probes, record, substrate, epoch } = lab;
  const variant = variantOf(options.variant);
  const vm = ransomwareTarget(lab);
  const address = manifest.vms.find((candidate) => candidate.name === vm)!.address;
  await warmUp(lab);
  await probes.start();
  const schedule = new SnapshotSchedule(lab, vm);
  schedule.start();
  try {
    // The detector's baselines learn the guest's own writes first, and a few snapshots exist.
    const learnMs = (LAB_SECURITY.detector.warmupSamples + 5) * LAB_SECURITY.intervalMs;
    const learningStarted = Date.now();
    while (Date.now() - learningStarted < learnMs || schedule.ackedAtSnapshot.size < 2) await delay(250);
    const primaries = [...controller.state.instances.values()].filter((instance) => instance.role === 'primary');
    const seqAtFault = Object.fromEntries([...probes.vms].map(([name, state]) => [name, state.lastAckedSeq]));
    const attackAtMs = clock.nowMs();
    probes.faultAtMs = attackAtMs;
    record('drill', 'scenario.planned', 'ransomware', { description: `the lab's encryptor (${variant}) in ${vm}`, steps: 1 });
    record('fault', 'fault.injected', vm, { kind: 'ransomware-encryption', target: vm });
    const started = await fetchWithin(`http://${address}/cgi-bin/attack?variant=${variant}`, 10_000);
    if (started === null || !started.startsWith('started')) {
      throw new TomaranaiError('TMR_DRILL_WARMUP', `the encryptor in ${vm} did not start (${started ?? 'no answer'})`, 'rebuild the guest image: npm run vm:image');
    }
    // The controller's turn: alert, quarantine, restore, verify, cut over.
    // Detection, quarantine, a restored guest's boot and check, and the cut-over's boot: longer
    // than one host drill's recovery.
    const deadline = Date.now() + 2 * labWaits(manifest.bootMs).recoveryMs;
    while (Date.now() < deadline) {
      const phase = controller.securityCases.get(vm)?.phase;
      if (phase !== undefined && phase !== 'detected') await schedule.stop();
      if (phase === 'recovered' || phase === 'unrecoverable') break;
      await delay(250);
    }
    await schedule.stop();
    while (Date.now() < deadline && !(probes.allUp() && controller.state.inFlight.size === 0)) await delay(250);
    await delay(2_000);
    await probes.stop();
    const fault = {
      target: vm,
      description: `${vm}: the lab's encryptor (${variant}) overwrites its documents`,
      plan: { strike: [], repair: [] },
      atMs: attackAtMs,
      seqAtFault,
      primariesBefore: new Map(primaries.map((instance) => [instance.vm, instance.id])),
      primaryHostBefore: Object.fromEntries(primaries.map((instance) => [instance.vm, instance.host])),
    };
    const checks = await measure(lab, { vm, variant, attackAtMs, schedule });
    const concluded = await conclude(lab, fault);
    return { ...concluded, ransomware: checks };
  } finally {
    await schedule.stop();
    await substrate.closeRestores(epoch);
  }
}

/** What the drill measures from outside: the journal's times, and the VM's disks read from the host. */
async function measure(lab: LabDrill, context: { vm: string; variant: LabRansomwareVariant; attackAtMs: number; schedule: SnapshotSchedule }): Promise<LabRansomwareChecks> {
  const { journal, layout, manifest, controller, probes, record } = lab;
  const { vm, variant, attackAtMs, schedule } = context;
  const entries = journal.entries().filter((entry) => entry.atMs >= attackAtMs && entry.subject === vm);
  const alert = entries.find((entry) => isEvent(entry, 'security.alert'));
  const falseAlerts = eventsOf(journal.entries(), 'security.alert')
    .filter((entry) => entry.atMs < attackAtMs || entry.subject !== vm)
    .map((entry) => ({ vm: entry.subject, atMs: entry.atMs - attackAtMs, rule: entry.data.rule ?? null, z: entry.data.z }));
  const quarantined = entries.find((entry) => isEvent(entry, 'quarantineVm') && entry.data.ok === true);
  const recovered = eventsOf(entries, 'security.recovered')[0];
  const promoted = eventsOf(entries, 'promoteRestored').find((entry) => entry.data.ok === true);
  const restored = eventsOf(entries, 'restoreSnapshot').filter((entry) => entry.data.ok === true && (promoted === undefined || entry.atMs <= promoted.atMs)).pop();
  const snapshotId = promoted !== undefined && restored !== undefined ? String(restored.data.snapshotId) : null;
  const restorePointMs = promoted !== undefined && typeof promoted.data.restorePointMs === 'number' ? promoted.data.restorePointMs : null;
  const restoreId = restored !== undefined && typeof restored.data.restore === 'string' ? restored.data.restore : null;
  const datastore = manifest.vms.find((candidate) => candidate.name === vm)!.datastore;
  const disk = layout.disk(datastore, vm);
  const evidence = promoted !== undefined && restoreId !== null ? layout.evidenceDisk(datastore, `${vm}-${restoreId}`) : null;
  const acked = snapshotId === null ? undefined : schedule.ackedAtSnapshot.get(snapshotId);
  let lost: number | null = null;
  if (acked !== undefined && evidence !== null) {
    // Every record the guest acknowledged before the snapshot began, on the disk now, as the infected run wrote it.
    const now = await readDiskRecords({ disk, sectors: acked + 8 });
    const before = await readDiskRecords({ disk: evidence, sectors: acked + 8 });
    lost = 0;
    for (let seq = 1; seq <= acked; seq++) if (now.get(seq) === undefined || now.get(seq) !== before.get(seq)) lost += 1;
  }
  const newestAcked = probes.vms.get(vm)?.runs.reduce((most, run) => Math.max(most, run.maxSeq), 0) ?? null;
  const checks: LabRansomwareChecks = {
    vm,
    variant,
    attackAtMs,
    detectionDelayMs: alert === undefined ? null : alert.atMs - attackAtMs,
    falseAlerts,
    quarantinedAfterMs: quarantined === undefined ? null : quarantined.atMs - attackAtMs,
    recoveredAfterMs: recovered === undefined ? null : recovered.atMs - attackAtMs,
    phase: controller.securityCases.get(vm)?.phase ?? null,
    snapshotId,
    restorePointBeforeAttackMs: restorePointMs === null ? null : attackAtMs - restorePointMs,
    restoredSnapshotDocuments: snapshotId === null ? null : await documentsOnDisk(join(layout.snapshots(datastore, vm), `${snapshotId}.qcow2`)),
    ackedBeforeRestorePoint: acked ?? null,
    ackedWritesLostBeforeRestorePoint: lost,
    writesAfterRestorePoint: acked === undefined || newestAcked === null ? null : Math.max(0, newestAcked - acked),
    documents: await documentsOnDisk(disk),
    evidenceDocuments: evidence === null ? null : await documentsOnDisk(evidence),
    snapshotsTaken: schedule.ackedAtSnapshot.size,
  };
  record('drill', 'drill.ransomware', vm, {
    variant,
    attackAtMs,
    alertAtMs: alert?.atMs ?? null,
    quarantinedAtMs: quarantined?.atMs ?? null,
    recoveredAtMs: recovered?.atMs ?? null,
    snapshotId,
    restorePointMs,
    ackedBeforeRestorePoint: checks.ackedBeforeRestorePoint,
    ackedWritesLostBeforeRestorePoint: lost,
    writesAfterRestorePoint: checks.writesAfterRestorePoint,
    documents: checks.documents,
    evidenceDocuments: checks.evidenceDocuments,
    snapshotsTaken: checks.snapshotsTaken,
  });
  return checks;
}

/** Each document's first bytes, read from the host through the disk's backing chain: clean (TMRFILE), encrypted (TMRCRYPT) or neither. */
export async function documentsOnDisk(disk: string): Promise<DocumentCheck | null> {
  const { firstSector, count, sectors } = GUEST_DOCUMENTS;
  const reads = Array.from({ length: count }, (_, index) => ['-c', `read -v ${(firstSector + index * sectors) * 512} 16`]).flat();
  const output = await run(['qemu-io', '-r', '-U', '-f', 'qcow2', disk, ...reads]).catch(() => null);
  if (output === null) return null;
  const bytes = parseHexDump(output.stdout);
  if (bytes.length !== count * 16) return null;
  return documentCheck(Array.from({ length: count }, (_, index) => bytes.subarray(index * 16, index * 16 + 16).toString('latin1')));
}

/** Tallies document headers as the guest's /cgi-bin/verify does. */
export function documentCheck(headers: readonly string[]): DocumentCheck {
  let clean = 0;
  let encrypted = 0;
  for (const header of headers) {
    if (header.startsWith('TMRFILE')) clean += 1;
    else if (header.startsWith('TMRCRYPT')) encrypted += 1;
  }
  return { files: headers.length, clean, encrypted, unreadable: headers.length - clean - encrypted };
}

async function fetchWithin(url: string, timeoutMs: number): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}

/**
 * Whether the drill did what the issue asks: detected, quarantined, recovered from a snapshot whose
 * documents are all clean (it predates the first malicious write), every document of the VM clean
 * afterwards, no write acknowledged before the restore point lost.
 */
export function labRansomwareHeld(checks: LabRansomwareChecks): boolean {
  return (
    checks.detectionDelayMs !== null &&
    checks.falseAlerts.length === 0 &&
    checks.quarantinedAfterMs !== null &&
    checks.phase === 'recovered' &&
    checks.restoredSnapshotDocuments !== null &&
    checks.restoredSnapshotDocuments.clean === checks.restoredSnapshotDocuments.files &&
    checks.ackedWritesLostBeforeRestorePoint === 0 &&
    checks.documents !== null &&
    checks.documents.clean === checks.documents.files
  );
}

/** The drill's own lines under the report. */
export function formatLabRansomware(checks: LabRansomwareChecks): string {
  const s = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`);
  const documents = (check: DocumentCheck | null) => (check === null ? 'unreadable' : `${check.clean} of ${check.files} clean, ${check.encrypted} encrypted, ${check.unreadable} unreadable`);
  return [
    `Ransomware (${checks.variant}) in ${checks.vm}: detected ${s(checks.detectionDelayMs)} after the encryptor started, quarantined after ${s(checks.quarantinedAfterMs)}, recovered (cut over, healthy) after ${s(checks.recoveredAfterMs)}; case ${checks.phase ?? 'none'}`,
    `Restore point: ${checks.snapshotId ?? 'none'}, taken ${checks.restorePointBeforeAttackMs === null ? '—' : checks.restorePointBeforeAttackMs >= 0 ? `${s(checks.restorePointBeforeAttackMs)} before` : `${s(-checks.restorePointBeforeAttackMs)} after`} the drill started the encryptor; its documents: ${documents(checks.restoredSnapshotDocuments)} (${checks.snapshotsTaken} snapshots taken, every ${SNAPSHOT_EVERY_MS / 1000} s)`,
    `Acknowledged writes before the restore point: ${checks.ackedBeforeRestorePoint ?? '?'}, lost ${checks.ackedWritesLostBeforeRestorePoint ?? '?'}; writes after it, discarded with the infected disk (RPO): ${checks.writesAfterRestorePoint ?? '?'}`,
    `Documents now: ${documents(checks.documents)}; on the infected disk kept as evidence: ${documents(checks.evidenceDocuments)}`,
    ...checks.falseAlerts.map(
      (alert) =>
        `FALSE ALERT on ${alert.vm} ${alert.atMs < 0 ? `${s(-alert.atMs)} before` : `${s(alert.atMs)} after`} the encryptor started (rule ${alert.rule ?? '?'}; z ${Object.entries(alert.z).map(([metric, z]) => `${metric} ${z}`).join(', ')})`,
    ),
    `Result: ${labRansomwareHeld(checks) ? 'held' : 'NOT held'}`,
  ].join('\n');
}
