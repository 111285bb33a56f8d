/**
 * One real VM, end to end: a host namespace wired to the root bridge, a tap, a qcow2 overlay on
 * the base disk, QEMU under TCG booting the uncompressed kernel, GET /health over the VM's address
 * from the root namespace (boot-to-health measured and printed), QMP query-status, a durable write
 * on the disk, a clean stop — and then nothing prefixed `tmr-` is left.
 *
 * Needs root, TOMARANAI_QEMU=1 and the guest image (`npm run vm:image`); skipped, saying why,
 * otherwise.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHostNamespace, createTap, deleteHostNamespace, ensureRootBridge, listLabResources, teardownLab } from '../../src/substrate/qemu/netns.ts';
import { createOverlay, launchVm, probeAccelerator, readDiskSector, residentKiB, stopVm, waitForHealth, type RunningVm } from '../../src/substrate/qemu/vm.ts';
import { realVmGate } from '../support/qemu.ts';

const { image, reason } = await realVmGate('test/substrate/qemu-smoke.test.ts', 'boot a real VM', 'network namespaces, taps');

const HOST = 'smoke-h1';
const VM = 'smoke-vm1';
const VM_ADDRESS = '10.77.1.10';

describe.skipIf(reason !== null)('one real VM on QEMU', () => {
  let directory = '';
  let vm: RunningVm | null = null;

  afterAll(async () => {
    if (vm !== null) await stopVm(vm, { graceMs: 2_000 }).catch(() => undefined);
    await deleteHostNamespace(HOST).catch(() => undefined);
    await teardownLab();
    if (directory !== '') await rm(directory, { recursive: true, force: true });
  });

  it('boots in a host namespace, answers /health from the root namespace, writes durably, stops, and leaves nothing behind', async () => {
    if (image === null) throw new Error('unreachable: skipped without an image');
    directory = await mkdtemp(join(tmpdir(), 'tmr-smoke-'));
    const accelerator = await probeAccelerator(image, { runDirectory: join(directory, 'probe') });
    console.log(`qemu smoke: accelerator ${accelerator}`);

    await ensureRootBridge();
    await createHostNamespace({ host: HOST, address: '10.77.0.11/16' });
    const tap = await createTap({ host: HOST, vm: VM });
    const disk = join(directory, 'datastore', `${VM}.qcow2`);
    await createOverlay({ base: image.baseDisk, overlay: disk });

    vm = await launchVm({
      name: VM,
      image,
      runDirectory: join(directory, 'run'),
      namespace: `tmr-${HOST}`,
      disk,
      network: { tap, address: `${VM_ADDRESS}/16`, gateway: '10.77.0.1' },
      accelerator,
      writeIntervalMs: 100,
    });
    // Boot-to-health counts from the launch of QEMU (launchedAtMs is on performance.now()).
    const healthy = await waitForHealth(`http://${VM_ADDRESS}/health`, { timeoutMs: 60_000, expectBody: 'ok' });
    expect(healthy).not.toBeNull();
    const bootToHealthMs = performance.now() - vm.launchedAtMs;
    const rssKiB = await residentKiB(vm.pid);
    console.log(`qemu smoke: boot-to-health ${bootToHealthMs.toFixed(0)} ms from launch (${accelerator}, vmlinux), QEMU RSS ${rssKiB} KiB`);

    const status = await vm.qmp.execute<{ status: string; running: boolean }>('query-status');
    expect(status).toMatchObject({ status: 'running', running: true });

    // The workload publishes its newest durable sequence number; it must move.
    let seq = 0;
    for (let attempt = 0; attempt < 50 && seq < 3; attempt++) {
      seq = Number.parseInt((await (await fetch(`http://${VM_ADDRESS}/seq`, { signal: AbortSignal.timeout(1_000) })).text()).trim(), 10);
      if (seq < 3) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seq).toBeGreaterThanOrEqual(3);

    await stopVm(vm);
    vm = null;
    // An acknowledged record is on the disk after QEMU has gone.
    expect(await readDiskSector({ disk, sector: seq })).toMatch(new RegExp(`^seq=${seq} vm=${VM} `));

    await deleteHostNamespace(HOST);
    const left = await teardownLab();
    expect(left).toEqual({ namespaces: [], links: [], nftTables: [], processes: [] });
    expect(await listLabResources()).toEqual(left);
  });
});
