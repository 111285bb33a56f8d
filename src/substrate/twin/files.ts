/**
 * The twin's file-level model, behind the file activity of its security telemetry: each VM's file
 * tree (size, decoy files), its legitimate activity — steady edits plus the scheduled bursts a
 * hospital's servers really have: log rotation every night, backups (some dumping a compressed
 * archive locally first), batch jobs rewriting their working set, weekly database maintenance,
 * software updates that replace hundreds of files, clean-ups that delete thousands — and what an
 * attack does to the files, variant by variant (security-model.ts, AttackProfile). Stateless like
 * telemetry.ts: a window's activity is a function of (seed, VM, window), never of earlier calls.
 */
import type { VmFileActivity } from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import { noise, poisson } from './noise.ts';
import type { Encryption, SecurityModel, VmBaseline, VmFileBaseline } from './security-model.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/** What the twin adds to one VM's window beyond its steady behaviour. */
export interface FileWindow {
  readonly files: VmFileActivity;
  /** The attacker's writes and their entropy (0 KiB: none). */
  readonly attackerKiB: number;
  readonly attackerEntropy: number;
  /** Legitimate burst writes (dumps, batch jobs, maintenance, updates) and their entropy. */
  readonly burstKiB: number;
  readonly burstEntropy: number;
  /** Share of burst writes landing on blocks unchanged since the last snapshot. */
  readonly burstFreshShare: number;
  /** Extra outbound traffic (backups, exfiltration), KiB. */
  readonly outboundKiB: number;
}

/** Overlap in ms of (fromMs, toMs] with a job that starts at `offsetMs` of every period and runs `durationMs`. */
function periodicOverlapMs(fromMs: number, toMs: number, offsetMs: number, durationMs: number, periodMs: number): number {
  let total = 0;
  const last = Math.floor((toMs - offsetMs) / periodMs);
  for (let cycle = last; cycle >= last - 1; cycle--) {
    const start = cycle * periodMs + offsetMs;
    total += Math.max(0, Math.min(toMs, start + durationMs) - Math.max(fromMs, start));
  }
  return total;
}

/** Whether a job's start falls in (fromMs, toMs]. */
function startsIn(fromMs: number, toMs: number, offsetMs: number, periodMs: number): boolean {
  const cycle = Math.floor((toMs - offsetMs) / periodMs);
  const start = cycle * periodMs + offsetMs;
  return start > fromMs && start <= toMs;
}

/** Draws a VM's file tree and its legitimate jobs. */
export function drawFileBaseline(random: Random): VmFileBaseline {
  const files = Math.round(5_000 + random.next() * 45_000);
  const canaryCount = Math.max(3, Math.round(files / 2_000));
  const canaries = Array.from({ length: canaryCount }, () => random.int(files)).sort((a, b) => a - b);
  const hourIn = (from: number, to: number) => (from + random.next() * (to - from)) * HOUR_MS;
  const weekly = (from: number, to: number) => random.int(7) * DAY_MS + hourIn(from, to);
  return {
    files,
    meanFileKiB: 64 + random.next() * 4_000,
    modifiedPerMin: 0.5 + random.next() * 10,
    createdPerMin: 0.2 + random.next() * 4,
    renamedPerMin: random.next() * 0.3,
    deletedPerMin: 0.1 + random.next() * 2,
    overwritePerMin: random.next() * 0.3,
    firstTimePerMin: random.next() * 0.1,
    magicPerDay: random.next() * 2,
    canaries,
    logRotation: { atMs: random.int(30) * MINUTE_MS, files: 10 + random.int(60) },
    backup: { atMs: hourIn(0.5, 5), durationMs: (20 + random.next() * 60) * MINUTE_MS, localDump: random.next() < 0.4, outFactor: 5 + random.next() * 20 },
    batch: random.next() < 0.5 ? { atMs: hourIn(0, 7), durationMs: (10 + random.next() * 40) * MINUTE_MS, filesPerMin: 20 + random.next() * 400 } : null,
    dbMaintenance: random.next() < 0.4 ? { atMs: weekly(0, 6), durationMs: (30 + random.next() * 90) * MINUTE_MS, writeFactor: 3 + random.next() * 6 } : null,
    update: random.next() < 0.3 ? { atMs: weekly(1, 6), durationMs: (5 + random.next() * 20) * MINUTE_MS, files: 200 + random.int(3_000), magicChanged: random.int(3) } : null,
    cleanup: random.next() < 0.3 ? { atMs: weekly(0, 24), durationMs: (5 + random.next() * 15) * MINUTE_MS, files: 500 + random.int(5_000) } : null,
  };
}

/** Active milliseconds of an attack between its start and `atMs` (intermittent attacks idle between bursts). */
export function attackActiveMs(encryption: Encryption, atMs: number): number {
  const { profile } = encryption;
  const end = Math.min(atMs, encryption.untilMs ?? atMs);
  if (end <= encryption.fromMs) return 0;
  if (profile.onMs === null) return end - encryption.fromMs;
  let active = 0;
  let cycleStart = encryption.fromMs;
  for (let cycle = 0; cycleStart < end && cycle < 100_000; cycle++) {
    active += Math.min(profile.onMs, end - cycleStart);
    const off = profile.offMinMs + (profile.offMaxMs - profile.offMinMs) * noise(profile.cycleSeed, encryption.vm, cycle, 50);
    cycleStart += profile.onMs + off;
  }
  return active;
}

/** Files the attack has started on by `atMs` (a file counts from its first write), at most the whole tree. */
export function attackFiles(encryption: Encryption, atMs: number, tree: number): number {
  const active = attackActiveMs(encryption, atMs);
  return active <= 0 ? 0 : Math.min(tree, Math.ceil((encryption.profile.filesPerS * active) / 1000));
}

/** KiB the attack wrote between two moments (it stops once every file is done). */
export function attackKiB(encryption: Encryption, fromMs: number, toMs: number, tree: number): number {
  const doneActiveMs = (tree / encryption.profile.filesPerS) * 1000;
  const active = (atMs: number) => Math.min(doneActiveMs, attackActiveMs(encryption, atMs));
  return (encryption.rateKiBps * Math.max(0, active(toMs) - active(fromMs))) / 1000;
}

/** One running copy's file activity and burst writes in (fromMs, toMs] (the attacker's only on the copy it works through). */
export function fileWindow(security: SecurityModel, copy: { vm: string; instanceId: string }, base: VmBaseline, files: VmFileBaseline, fromMs: number, toMs: number): FileWindow {
  const vm = copy.vm;
  const seed = security.noiseSeed;
  const windowIndex = Math.floor(toMs / 1000);
  const minutes = (toMs - fromMs) / MINUTE_MS;
  const draw = (mean: number, stream: number) => poisson(mean, noise(seed, vm, windowIndex, 20 + stream));
  const counts = {
    modified: draw(files.modifiedPerMin * minutes, 0),
    created: draw(files.createdPerMin * minutes, 1),
    renamed: draw(files.renamedPerMin * minutes, 2),
    deleted: draw(files.deletedPerMin * minutes, 3),
    magicChanged: draw((files.magicPerDay * (toMs - fromMs)) / DAY_MS, 4),
    overwrittenAfterRead: draw(files.overwritePerMin * minutes, 5),
    firstTimeModified: draw(files.firstTimePerMin * minutes, 6),
    // Someone opens an old document and saves it: about half of the first-time edits read it first.
    firstTimeReplaced: draw(files.firstTimePerMin * 0.5 * minutes, 12),
    canariesTouched: 0,
    writtenKiB: 0,
  };
  let burstKiB = 0;
  let burstEntropyKiB = 0;
  let burstFreshKiB = 0;
  let outboundKiB = 0;
  const burst = (kib: number, entropy: number, fresh: number) => {
    burstKiB += kib;
    burstEntropyKiB += kib * entropy;
    burstFreshKiB += kib * fresh;
  };
  const legitKiBps = base.writeKiBps;
  // Log rotation: each night, yesterday's logs renamed, compressed, the oldest deleted.
  if (startsIn(fromMs, toMs, files.logRotation.atMs, DAY_MS)) {
    counts.renamed += files.logRotation.files;
    counts.created += files.logRotation.files;
    counts.deleted += Math.ceil(files.logRotation.files / 7);
    burst(files.logRotation.files * 256, 0.95, 0.9);
  }
  // Backups: reads and outbound traffic; some dump a compressed archive locally first.
  const backupMs = periodicOverlapMs(fromMs, toMs, files.backup.atMs, files.backup.durationMs, DAY_MS);
  if (backupMs > 0) {
    outboundKiB += (base.networkKiBps * files.backup.outFactor * backupMs) / 1000;
    if (files.backup.localDump) {
      burst((legitKiBps * 4 * backupMs) / 1000, 0.97, 0.95);
      counts.modified += 1;
      if (startsIn(fromMs, toMs, files.backup.atMs, DAY_MS)) counts.created += 1;
    }
  }
  if (files.batch !== null) {
    const ms = periodicOverlapMs(fromMs, toMs, files.batch.atMs, files.batch.durationMs, DAY_MS);
    if (ms > 0) {
      const touched = draw((files.batch.filesPerMin * ms) / MINUTE_MS, 7);
      counts.modified += touched;
      counts.overwrittenAfterRead += Math.round(touched * 0.9);
      // Its working set: the same files every night (new ones are created, not first-modified).
      counts.created += Math.round(touched * 0.1);
      burst(touched * Math.min(files.meanFileKiB, 512) * 0.5, base.entropy, 0.6);
    }
  }
  if (files.dbMaintenance !== null) {
    const ms = periodicOverlapMs(fromMs, toMs, files.dbMaintenance.atMs, files.dbMaintenance.durationMs, WEEK_MS);
    if (ms > 0) {
      counts.modified += draw((ms / MINUTE_MS) * 0.5, 9);
      burst((legitKiBps * files.dbMaintenance.writeFactor * ms) / 1000, base.entropy, 0.9);
    }
  }
  if (files.update !== null) {
    const ms = periodicOverlapMs(fromMs, toMs, files.update.atMs, files.update.durationMs, WEEK_MS);
    if (ms > 0) {
      const replaced = draw((files.update.files * ms) / files.update.durationMs, 10);
      counts.created += replaced;
      counts.renamed += replaced;
      counts.modified += replaced;
      counts.firstTimeModified += replaced;
      counts.deleted += Math.round(replaced * 0.3);
      if (startsIn(fromMs, toMs, files.update.atMs, WEEK_MS)) {
        // A few replaced files change type (a converted configuration): first-time and retyped.
        counts.magicChanged += files.update.magicChanged;
        counts.firstTimeReplaced += files.update.magicChanged;
      }
      burst(replaced * 300, 0.8, 0.95);
    }
  }
  if (files.cleanup !== null) {
    const ms = periodicOverlapMs(fromMs, toMs, files.cleanup.atMs, files.cleanup.durationMs, WEEK_MS);
    if (ms > 0) counts.deleted += draw((files.cleanup.files * ms) / files.cleanup.durationMs, 11);
  }
  const attack = attackWindow(security, copy.instanceId, base, files, fromMs, toMs, counts);
  for (const exfiltration of security.exfiltrations) {
    if (exfiltration.vm !== vm) continue;
    const ms = Math.max(0, Math.min(toMs, exfiltration.untilMs) - Math.max(fromMs, exfiltration.fromMs));
    outboundKiB += (exfiltration.kibps * ms) / 1000;
  }
  counts.writtenKiB = Math.round(burstKiB + attack.kib + (legitKiBps * (toMs - fromMs)) / 1000 / 4);
  return {
    files: counts,
    attackerKiB: attack.kib,
    attackerEntropy: attack.kib > 0 ? attack.entropyKiB / attack.kib : 0,
    burstKiB,
    burstEntropy: burstKiB > 0 ? burstEntropyKiB / burstKiB : 0,
    burstFreshShare: burstKiB > 0 ? burstFreshKiB / burstKiB : 0,
    outboundKiB,
  };
}

type MutableCounts = { -readonly [K in keyof VmFileActivity]: number };

/** The attacker's share of a window: files it reached, what that did to them, its bytes. */
function attackWindow(security: SecurityModel, instanceId: string, base: VmBaseline, files: VmFileBaseline, fromMs: number, toMs: number, counts: MutableCounts): { kib: number; entropyKiB: number } {
  let kib = 0;
  let entropyKiB = 0;
  for (const encryption of security.encryptions) {
    if (encryption.instanceId !== instanceId || encryption.fromMs >= toMs) continue;
    const before = attackFiles(encryption, fromMs, files.files);
    const after = attackFiles(encryption, toMs, files.files);
    const reached = after - before;
    const written = attackKiB(encryption, fromMs, toMs, files.files);
    kib += written;
    entropyKiB += written * (encryption.profile.outputEntropy ?? base.entropy);
    if (reached <= 0) continue;
    const profile = encryption.profile;
    counts.modified += reached;
    counts.firstTimeModified += reached;
    if (profile.readsFirst || !profile.keepsHeader) counts.firstTimeReplaced += reached;
    if (profile.readsFirst) counts.overwrittenAfterRead += reached;
    if (!profile.keepsHeader) counts.magicChanged += reached;
    if (profile.renames) counts.renamed += reached;
    if (profile.deletes) counts.deleted += reached;
    counts.canariesTouched += files.canaries.filter((position) => position >= before && position < after).length;
  }
  return { kib, entropyKiB };
}
