// The lab's security telemetry and ransomware checks without VMs: entropy, the qemu-io hex dump,
// which changed blocks are sampled, counters turned into the port's samples (windows, rates,
// denied flows, copies that do not serve yet), the guest's document check, and the drill's verdict.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { BLOCK_BYTES, byteEntropy, parseHexDump, sampleBlocks, type HostTelemetry, type VmBlockTelemetry } from '../../src/substrate/qemu/block-telemetry.ts';
import { SecurityTelemetry } from '../../src/substrate/qemu/security-telemetry.ts';
import { parseDocumentCheck } from '../../src/substrate/qemu/lab-restore.ts';
import { policyScript } from '../../src/substrate/qemu/agent.ts';
import { qemuArguments } from '../../src/substrate/qemu/vm.ts';
import { documentCheck, formatLabRansomware, labRansomwareHeld, type LabRansomwareChecks } from '../../src/drill/lab/ransomware.ts';

const reading = (overrides: Partial<VmBlockTelemetry>): VmBlockTelemetry => ({
  vm: 'pacs-1',
  instanceId: 'pacs-1.g1',
  atMs: 10_000,
  writtenBytes: 0,
  changedBlocks: 2,
  sinceMs: 9_000,
  entropy: 0.1,
  sampledBytes: 4096,
  fromVmBytes: 0,
  toVmBytes: 0,
  ...overrides,
});
const host = (vms: VmBlockTelemetry[], denied: HostTelemetry['denied'] = []): HostTelemetry => ({ host: 'lab-a1', atMs: 0, vms, denied });
const serving = () => true;

describe('lab security telemetry', () => {
  it('measures the entropy of random bytes near 1 and of text far below', () => {
    expect(byteEntropy(randomBytes(64 * 1024))).toBeGreaterThan(0.99);
    expect(byteEntropy(Buffer.from('ward note 3: vitals stable, medication given as ordered\n'.repeat(100)))).toBeLessThan(0.6);
    expect(byteEntropy(Buffer.alloc(4096))).toBe(0);
    // Encoded ciphertext (the low-entropy variant): 6 bits per byte of 8.
    const encoded = byteEntropy(Buffer.from(randomBytes(3 * 4096).toString('base64')));
    expect(encoded).toBeGreaterThan(0.7);
    expect(encoded).toBeLessThan(0.77);
  });

  it('reads the bytes of several qemu-io hex dumps in order', () => {
    const dump = [
      '02000000:  54 4d 52 46 49 4c 45 20 64 6f 63 2d 30 30 20 76  TMRFILE.doc.00.v',
      'read 16/16 bytes at offset 33554432',
      '02010000:  54 4d 52 43 52 59 50 54 20 64 6f 63 2d 30 31 0a  TMRCRYPT.doc.01.',
    ].join('\n');
    const bytes = parseHexDump(dump);
    expect(bytes.length).toBe(32);
    expect(bytes.subarray(0, 7).toString('latin1')).toBe('TMRFILE');
    expect(bytes.subarray(16, 24).toString('latin1')).toBe('TMRCRYPT');
  });

  it('samples changed blocks spread over the whole window, not its first writes', () => {
    const extents = [{ start: 0, length: 100 * BLOCK_BYTES }];
    const blocks = sampleBlocks(extents, 10);
    expect(blocks).toHaveLength(10);
    expect(blocks[0]).toBe(0);
    expect(blocks[9]).toBeGreaterThanOrEqual(90 * BLOCK_BYTES);
    expect(sampleBlocks([{ start: 8192, length: 8192 }], 10)).toEqual([8192, 12288]);
  });

  it('turns counters into rates over the window since the same copy was read', () => {
    const telemetry = new SecurityTelemetry(new Map([['pacs-1', '10.77.1.11']]));
    expect(telemetry.samples([host([reading({ atMs: 10_000, writtenBytes: 1_000_000 })])], { atMs: 50, serving })).toEqual([]);
    const [sample] = telemetry.samples([host([reading({ atMs: 12_000, writtenBytes: 1_000_000 + 2 * 100 * 1024, changedBlocks: 50, entropy: 0.97, fromVmBytes: 4096, toVmBytes: 2048 })])], { atMs: 52, serving });
    expect(sample).toMatchObject({ vm: 'pacs-1', atMs: 52, windowMs: 2_000, writeEntropy: 0.97, newFlows: 0, deniedFlows: 0 });
    expect(sample!.diskWriteKiBps).toBeCloseTo(100);
    expect(sample!.snapshotChangeKiBps).toBeCloseTo((50 * 4) / 2);
    expect(sample!.networkOutKiBps).toBeCloseTo(2);
    expect(sample!.networkInKiBps).toBeCloseTo(1);
  });

  it('counts only the denied packets since the last round, per destination of the VM', () => {
    const telemetry = new SecurityTelemetry(new Map([['pacs-1', '10.77.1.11']]));
    const denied = (packets: number) => [
      { from: '10.77.1.11', to: '10.77.1.200', packets },
      { from: '10.77.1.12', to: '10.77.1.201', packets: 9 },
    ];
    telemetry.samples([host([reading({ atMs: 1_000 })], denied(3))], { atMs: 1, serving });
    const [quiet] = telemetry.samples([host([reading({ atMs: 2_000 })], denied(3))], { atMs: 2, serving });
    expect(quiet).toMatchObject({ deniedFlows: 0, deniedDestinations: [] });
    const [probing] = telemetry.samples([host([reading({ atMs: 3_000 })], denied(7))], { atMs: 3, serving });
    expect(probing).toMatchObject({ deniedFlows: 4, deniedDestinations: ['10.77.1.200'] });
  });

  it('gives no sample for a copy that does not serve yet, nor a window spanning its boot, nor across a restart', () => {
    const telemetry = new SecurityTelemetry(new Map());
    telemetry.samples([host([reading({ atMs: 1_000 })])], { atMs: 1, serving: () => false });
    expect(telemetry.samples([host([reading({ atMs: 2_000 })])], { atMs: 2, serving: () => false })).toEqual([]);
    expect(telemetry.samples([host([reading({ atMs: 3_000 })])], { atMs: 3, serving })).toEqual([]);
    expect(telemetry.samples([host([reading({ atMs: 4_000 })])], { atMs: 4, serving })).toHaveLength(1);
    expect(telemetry.samples([host([reading({ atMs: 5_000, instanceId: 'pacs-1.g2' })])], { atMs: 5, serving })).toEqual([]);
  });

  it('gives no sample for a window in which the guest wrote nothing', () => {
    const telemetry = new SecurityTelemetry(new Map());
    telemetry.samples([host([reading({ atMs: 1_000, writtenBytes: 4096 })])], { atMs: 1, serving });
    expect(telemetry.samples([host([reading({ atMs: 2_000, writtenBytes: 4096, changedBlocks: 0 })])], { atMs: 2, serving })).toEqual([]);
    expect(telemetry.samples([host([reading({ atMs: 3_000, writtenBytes: 8192, changedBlocks: 1 })])], { atMs: 3, serving })).toHaveLength(1);
  });

  it('reports a refused snapshot deletion once, with the VM’s next sample', () => {
    const telemetry = new SecurityTelemetry(new Map());
    telemetry.samples([host([reading({ atMs: 1_000 })])], { atMs: 1, serving });
    telemetry.deletionRefused('pacs-1');
    expect(telemetry.samples([host([reading({ atMs: 2_000 })])], { atMs: 2, serving })[0]!.snapshotDeletionsRefused).toBe(1);
    expect(telemetry.samples([host([reading({ atMs: 3_000 })])], { atMs: 3, serving })[0]!.snapshotDeletionsRefused).toBe(0);
  });
});

describe('the lab’s segmentation counts what it drops, and a restored copy is isolated', () => {
  it('adds every dropped frame from a VM to the denied set before dropping it', () => {
    const script = policyScript({ monitor: ['10.77.0.1'], rules: [] });
    expect(script).toContain('set denied { type ipv4_addr . ipv4_addr;');
    const add = script.indexOf('add @denied');
    expect(add).toBeGreaterThan(script.indexOf('ip saddr 10.77.0.1 accept'));
    expect(add).toBeLessThan(script.indexOf('iifname "tmr-t*" drop'));
  });

  it('boots a restored copy on QEMU user networking that reaches nothing, its port 80 forwarded from the host only', () => {
    const args = qemuArguments({
      name: 'pacs-1-r',
      image: { kernelVersion: '6.1', vmlinux: '/k', vmlinuz: '/z', initramfs: '/i', baseDisk: '/b' },
      runDirectory: '/run',
      disk: '/d.qcow2',
      isolatedNetwork: { forward: '10.77.0.11:18011' },
    });
    const netdev = args[args.indexOf('-netdev') + 1]!;
    expect(netdev).toContain('user,');
    expect(netdev).toContain('restrict=on');
    expect(netdev).toContain('hostfwd=tcp:10.77.0.11:18011-10.0.2.15:80');
    expect(args.join(' ')).toContain('tmr.ip=10.0.2.15/24 tmr.gw=10.0.2.2');
    expect(args.join(' ')).not.toContain('tap,');
  });
});

describe('the ransomware drill’s checks', () => {
  it('reads the guest’s document check and the host’s', () => {
    expect(parseDocumentCheck('files 16 clean 14 encrypted 2 unreadable 0\n')).toEqual({ files: 16, clean: 14, encrypted: 2, unreadable: 0 });
    expect(parseDocumentCheck('<html>404</html>')).toBeNull();
    expect(documentCheck(['TMRFILE doc-00 v', 'TMRCRYPT doc-01\n', '\u0000'.repeat(16)])).toEqual({ files: 3, clean: 1, encrypted: 1, unreadable: 1 });
  });

  const held: LabRansomwareChecks = {
    vm: 'pacs-1',
    variant: 'whole',
    attackAtMs: 60_000,
    detectionDelayMs: 5_000,
    falseAlerts: [],
    quarantinedAfterMs: 5_500,
    recoveredAfterMs: 30_000,
    phase: 'recovered',
    snapshotId: 'pacs-1-1',
    restorePointBeforeAttackMs: 1_200,
    restoredSnapshotDocuments: { files: 16, clean: 16, encrypted: 0, unreadable: 0 },
    ackedBeforeRestorePoint: 400,
    ackedWritesLostBeforeRestorePoint: 0,
    writesAfterRestorePoint: 120,
    documents: { files: 16, clean: 16, encrypted: 0, unreadable: 0 },
    evidenceDocuments: { files: 16, clean: 0, encrypted: 16, unreadable: 0 },
    snapshotsTaken: 12,
  };

  it('holds only when detected, quarantined, recovered from a snapshot with no encrypted document, clean, and nothing acknowledged before the restore point lost', () => {
    expect(labRansomwareHeld(held)).toBe(true);
    expect(labRansomwareHeld({ ...held, detectionDelayMs: null })).toBe(false);
    expect(labRansomwareHeld({ ...held, phase: 'unrecoverable' })).toBe(false);
    // A snapshot taken a moment after the encryptor's start still counts if it holds no encrypted document.
    expect(labRansomwareHeld({ ...held, restorePointBeforeAttackMs: -500 })).toBe(true);
    expect(labRansomwareHeld({ ...held, restoredSnapshotDocuments: { files: 16, clean: 15, encrypted: 1, unreadable: 0 } })).toBe(false);
    expect(labRansomwareHeld({ ...held, restoredSnapshotDocuments: null })).toBe(false);
    expect(labRansomwareHeld({ ...held, ackedWritesLostBeforeRestorePoint: 1 })).toBe(false);
    expect(labRansomwareHeld({ ...held, ackedWritesLostBeforeRestorePoint: null })).toBe(false);
    expect(labRansomwareHeld({ ...held, documents: { files: 16, clean: 15, encrypted: 1, unreadable: 0 } })).toBe(false);
    // A case opened by a false alert before the attack measures that case, not the attack.
    const falseAlert = { vm: 'pacs-1', atMs: -7_200, rule: 'entropy', z: { diskWrite: 9.1 } };
    expect(labRansomwareHeld({ ...held, falseAlerts: [falseAlert] })).toBe(false);
  });

  it('names a false alert in its report: which VM, how long before the encryptor started, on which rule and scores', () => {
    const text = formatLabRansomware({ ...held, detectionDelayMs: null, falseAlerts: [{ vm: 'pacs-1', atMs: -7_200, rule: 'entropy', z: { diskWrite: 9.1, writeEntropy: 6.2 } }] });
    expect(text).toContain('FALSE ALERT on pacs-1 7.2 s before the encryptor started (rule entropy; z diskWrite 9.1, writeEntropy 6.2)');
    expect(text).toContain('Result: NOT held');
  });
});
