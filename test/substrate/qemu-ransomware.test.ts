/**
 * Ransomware on real VMs: `blueprints/lab.yaml` on QEMU guests, the unchanged controller with its
 * security loop on the lab's telemetry (bytes written, changed blocks and their entropy from a
 * dirty bitmap read over NBD, denied flows from nftables counters), and the guest's own encryptor
 * started from outside. What the issue asks, checked on the machine:
 *
 * - detected, from the host's telemetry alone, within 30 s of the encryptor's start;
 * - quarantined (nftables), restored from an immutable snapshot that holds no encrypted document
 *   (it predates the first malicious write) into an isolated network, verified there (every document clean), cut over: the VM serves again;
 * - every document on the VM's disk clean afterwards, while the infected disk kept as evidence
 *   holds encrypted ones;
 * - 0 writes the guest acknowledged before the restore point lost, read from the disk;
 * - `lab down` leaves nothing behind.
 *
 * Needs root, TOMARANAI_QEMU=1 and the guest image (`npm run vm:image`); skipped, saying why,
 * otherwise. ~2 minutes on 2 cores under TCG, alone on the machine.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, shipped } from '../support/blueprints.ts';
import { runRealDrill } from '../../src/drill/lab/real.ts';
import { formatLabRansomware } from '../../src/drill/lab/ransomware.ts';
import type { Blueprint } from '../../src/model/index.ts';
import { LabLayout } from '../../src/substrate/qemu/lab.ts';
import { listLabResources } from '../../src/substrate/qemu/netns.ts';
import { labDown } from '../../src/substrate/qemu/power.ts';
import { realVmGate } from '../support/qemu.ts';

const { reason } = await realVmGate('test/substrate/qemu-ransomware.test.ts', 'run the ransomware drill on real VMs');

const REFERENCE_LAB = `${ROOT}blueprints/lab.yaml`;

describe.skipIf(reason !== null)('ransomware on real VMs', () => {
  const layout = new LabLayout();
  const blueprint = reason === null ? shipped('lab') : (null as unknown as Blueprint);

  afterAll(async () => {
    await labDown({ layout }).catch(() => undefined);
  }, 60_000);

  it('an encryptor in a critical VM is detected, quarantined, restored from before it started, verified clean and cut over, with no acknowledged write before the restore point lost', async () => {
    await labDown({ layout });
    // The drill brings the lab up itself and takes it down after.
    const drill = await runRealDrill({ blueprint, blueprintFile: REFERENCE_LAB, scenario: 'ransomware', layout });
    const checks = drill.ransomware!;
    console.log(formatLabRansomware(checks));
    // A false alert on the attacked VM before the encryptor started opens a case that the rest would
    // measure instead of the attack. False alerts on the other VMs are printed in the report above
    // (FALSE ALERT lines, and the drill's result is then "NOT held"), not asserted here: the lab's
    // short learning phase still lets the detector cry wolf on another guest (docs/real-vms.md).
    expect(checks.falseAlerts.filter((alert) => alert.vm === checks.vm), `no false alert on ${checks.vm} before the encryptor started`).toEqual([]);
    expect(checks.detectionDelayMs, 'the controller alerted').not.toBeNull();
    expect(checks.detectionDelayMs!).toBeGreaterThanOrEqual(0);
    expect(checks.detectionDelayMs!).toBeLessThanOrEqual(30_000);
    expect(checks.quarantinedAfterMs, 'quarantined').not.toBeNull();
    expect(checks.phase, 'the case ended recovered').toBe('recovered');
    expect(checks.snapshotId, 'restored from a snapshot').not.toBeNull();
    // The snapshot predates the first malicious write: it holds no encrypted document (the drill's
    // start of the encryptor is a few seconds before its first write on a busy machine).
    expect(checks.restoredSnapshotDocuments, 'the restored snapshot holds no encrypted document').toEqual({ files: 16, clean: 16, encrypted: 0, unreadable: 0 });
    expect(checks.restorePointBeforeAttackMs!, 'the newest clean snapshot, not an old one').toBeLessThan(30_000);
    expect(checks.ackedBeforeRestorePoint!, 'the snapshot holds acknowledged writes').toBeGreaterThan(0);
    expect(checks.ackedWritesLostBeforeRestorePoint, 'acknowledged writes before the restore point, missing from the disk').toBe(0);
    expect(checks.documents, 'every document clean after the recovery').toEqual({ files: 16, clean: 16, encrypted: 0, unreadable: 0 });
    expect(checks.evidenceDocuments!.encrypted, 'the infected disk kept as evidence holds encrypted documents').toBeGreaterThan(0);
    // The VM serves from the restored disk, writing again.
    expect(drill.checks.finalAnswers[checks.vm], `${checks.vm} answers with its name`).toBe(true);
    expect(drill.checks.finalCopiesPerVm[checks.vm]!.writable, `${checks.vm}: one QEMU holds its disk`).toBe(1);
    expect(drill.report.invariants.splitBrain).toBe(0);
    expect(await listLabResources(), 'lab down left nothing').toEqual({ namespaces: [], links: [], nftTables: [], processes: [] });
  }, 480_000);
});
