/**
 * The parts of the qemu substrate that need no QEMU: the command line a VM boots with, the names
 * the lab gives interfaces and namespaces (all prefixed, all within Linux's 15 characters), and
 * the QMP client against a fake QEMU on a unix socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { interfaceName, namespaceName, tapName, uplinkName } from '../../src/substrate/qemu/netns.ts';
import { QmpClient, QmpError } from '../../src/substrate/qemu/qmp.ts';
import { macForVm, qemuArguments, qemuCommand, type GuestImage } from '../../src/substrate/qemu/vm.ts';

const image: GuestImage = { kernelVersion: '6.1.0-56-amd64', vmlinux: '/img/vmlinux', vmlinuz: '/img/vmlinuz', initramfs: '/img/initramfs.cpio', baseDisk: '/img/disk-base.qcow2' };

function valueOf(args: string[], flag: string): string[] {
  return args.flatMap((arg, index) => (arg === flag ? [args[index + 1]!] : []));
}

describe('the QEMU command line', () => {
  it('boots the uncompressed kernel under TCG by default, with the guest network on the kernel command line', () => {
    const args = qemuArguments({ name: 'ehr-db-1', image, runDirectory: '/run/tmr', disk: '/ds/ehr-db-1.qcow2', network: { tap: 'tmr-t-ehr-db-1', address: '10.77.1.10/16', gateway: '10.77.0.1' } });
    expect(valueOf(args, '-accel')).toEqual(['tcg']);
    expect(valueOf(args, '-kernel')).toEqual(['/img/vmlinux']);
    expect(valueOf(args, '-initrd')).toEqual(['/img/initramfs.cpio']);
    const append = valueOf(args, '-append')[0]!.split(' ');
    expect(append).toEqual(expect.arrayContaining(['tmr.vm=ehr-db-1', 'tmr.ip=10.77.1.10/16', 'tmr.gw=10.77.0.1', 'console=ttyS0']));
    expect(valueOf(args, '-qmp')).toEqual(['unix:/run/tmr/ehr-db-1.qmp,server=on,wait=off']);
    expect(valueOf(args, '-drive')[0]).toMatch(/^file=\/ds\/ehr-db-1\.qcow2,if=none,id=disk0,format=qcow2/);
    expect(valueOf(args, '-netdev')).toEqual(['tap,id=net0,ifname=tmr-t-ehr-db-1,script=no,downscript=no']);
    expect(valueOf(args, '-device')).toEqual(['pcie-root-port,id=hotplug0,chassis=1,slot=1', 'virtio-blk-pci,drive=disk0,id=vda', `virtio-net-pci,netdev=net0,mac=${macForVm('ehr-db-1')}`]);
    expect(args).toContain('-daemonize');
    // Teardown finds QEMU by its process name.
    expect(valueOf(args, '-name')[0]).toBe('tmr-ehr-db-1,process=tmr-ehr-db-1');
  });

  it('can boot the compressed kernel, KVM, and a migration target', () => {
    const args = qemuArguments({ name: 'pacs-1', image, runDirectory: '/r', kernel: 'vmlinuz', accelerator: 'kvm', incoming: 'tcp:0.0.0.0:4444' });
    expect(valueOf(args, '-kernel')).toEqual(['/img/vmlinuz']);
    expect(valueOf(args, '-accel')).toEqual(['kvm']);
    expect(valueOf(args, '-incoming')).toEqual(['tcp:0.0.0.0:4444']);
    expect(valueOf(args, '-drive')).toEqual([]);
    expect(valueOf(args, '-netdev')).toEqual([]);
  });

  it('runs QEMU inside the host namespace when there is one', () => {
    expect(qemuCommand({ name: 'lis-1', image, runDirectory: '/r', namespace: 'tmr-a1-h1' }).slice(0, 5)).toEqual(['ip', 'netns', 'exec', 'tmr-a1-h1', 'qemu-system-x86_64']);
  });

  it('refuses a VM name that could break the kernel command line', () => {
    expect(() => qemuArguments({ name: 'a b', image, runDirectory: '/r' })).toThrow(/VM name/);
    expect(() => qemuArguments({ name: 'x;rm', image, runDirectory: '/r' })).toThrow(/VM name/);
  });

  it('gives a VM the same locally administered MAC everywhere', () => {
    expect(macForVm('icu-1')).toBe(macForVm('icu-1'));
    expect(macForVm('icu-1')).not.toBe(macForVm('icu-2'));
    expect(macForVm('icu-1')).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });
});

describe('lab names', () => {
  it('are prefixed tmr- and fit a Linux interface name', () => {
    for (const name of ['a', 'a1-h1', 'medical-accounting-2', 'x'.repeat(60)]) {
      for (const candidate of [tapName(name), uplinkName(name), interfaceName('q', name)]) {
        expect(candidate.startsWith('tmr-')).toBe(true);
        expect(candidate.length).toBeLessThanOrEqual(15);
      }
    }
    expect(tapName('icu-1')).toBe('tmr-t-icu-1');
    expect(tapName('medical-accounting-2')).not.toBe(tapName('medical-accounting-3'));
    expect(namespaceName('a1-h1')).toBe('tmr-a1-h1');
    expect(() => namespaceName('../etc')).toThrow(/host name/);
  });
});

/** A fake QEMU: greets, answers qmp_capabilities, query-status and one error, and emits an event. */
async function withFakeQemu(test: (socketPath: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'tmr-qmp-'));
  const socketPath = join(directory, 'fake.qmp');
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.write(`${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 } }, capabilities: [] } })}\n`);
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const request = JSON.parse(buffer.slice(0, newline)) as { execute: string; id: string };
        buffer = buffer.slice(newline + 1);
        // Answers arrive split across writes, with an event in between, as QEMU may send them.
        if (request.execute === 'qmp_capabilities') socket.write(`{"return": {}, "id": "${request.id}"}\n`);
        else if (request.execute === 'query-status') {
          socket.write('{"event": "RESUME", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}\n{"return": {"status": "run');
          setTimeout(() => socket.write(`ning", "running": true}, "id": "${request.id}"}\n`), 10);
        } else if (request.execute === 'hang') {
          // Never answers.
        } else socket.write(`{"error": {"class": "CommandNotFound", "desc": "The command ${request.execute} has not been found"}, "id": "${request.id}"}\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  try {
    await test(socketPath);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(directory, { recursive: true, force: true });
  }
}

describe('the QMP client', () => {
  it('negotiates, runs commands, delivers events, and times out a command that gets no answer', async () => {
    await withFakeQemu(async (socketPath) => {
      const qmp = await QmpClient.connect(socketPath);
      expect(qmp.version).toEqual({ major: 7, minor: 2, micro: 22 });
      const resumed = qmp.waitForEvent('RESUME', 1_000);
      expect(await qmp.execute('query-status')).toEqual({ status: 'running', running: true });
      expect((await resumed).event).toBe('RESUME');
      await expect(qmp.execute('nonsense')).rejects.toBeInstanceOf(QmpError);
      await expect(qmp.execute('hang', undefined, 100)).rejects.toThrow(/no answer within 100 ms/);
      qmp.close();
      await expect(qmp.execute('query-status')).rejects.toThrow(/closed/);
    });
  });
});
