/**
 * One real VM: the guest image that `npm run vm:image` builds, the QEMU command line that boots it
 * (built by a pure function, so it is tested without QEMU), its disk (a qcow2 overlay on the base
 * image, in a datastore directory), and a launcher that starts QEMU daemonized inside a host's
 * network namespace and hands back a QMP client. QEMU outlives the process that launched it: a
 * host agent that restarts finds its VMs still running (by pid file and QMP socket).
 *
 * The accelerator is TCG unless KVM is proven to boot this guest (`probeAccelerator`): on this
 * kind of machine /dev/kvm exists but is a nested hypervisor that hangs a stock kernel.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { run, tryRun } from './command.ts';
import { QmpClient } from './qmp.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';
/** VM names become part of the kernel command line, interface names and file names. */
export const VM_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What scripts/vm-image.sh built (its image.json). */
export interface GuestImage {
  readonly kernelVersion: string;
  /** The uncompressed kernel (ELF with a PVH entry): the fast boot. */
  readonly vmlinux: string;
  /** The kernel as Debian ships it (bzImage). */
  readonly vmlinuz: string;
  readonly initramfs: string;
  readonly baseDisk: string;
}

/** The default image directory, relative to the checkout. */
export const DEFAULT_IMAGE_DIRECTORY = resolve(dirname(new URL(import.meta.url).pathname), '../../../.lab/image');

/** Reads the image manifest; null when the image has not been built (or a file of it is missing). */
export async function loadGuestImage(directory = DEFAULT_IMAGE_DIRECTORY): Promise<GuestImage | null> {
  let manifest: Record<string, unknown>;
  try {
    manifest = JSON.parse(await readFile(join(directory, 'image.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const fields = ['kernelVersion', 'vmlinux', 'vmlinuz', 'initramfs', 'baseDisk'] as const;
  for (const field of fields) if (typeof manifest[field] !== 'string') return null;
  const image = manifest as unknown as GuestImage;
  for (const file of [image.vmlinux, image.vmlinuz, image.initramfs, image.baseDisk]) if (!existsSync(file)) return null;
  return image;
}

export type Accelerator = 'tcg' | 'kvm';
export type KernelFlavour = 'vmlinux' | 'vmlinuz';

export interface VmNetwork {
  /** The tap the VM's NIC is plugged into (it must exist in `namespace`, attached to its bridge). */
  readonly tap: string;
  /** The guest's address with its prefix, e.g. 10.77.1.10/16. */
  readonly address: string;
  readonly gateway?: string;
  readonly mac?: string;
}

export interface VmSpec {
  readonly name: string;
  readonly image: GuestImage;
  /** Where the VM's files live: QMP socket, pid file, console log. */
  readonly runDirectory: string;
  /** The qcow2 the VM writes to (an overlay on the image's base disk); no disk when absent. */
  readonly disk?: string;
  readonly network?: VmNetwork;
  /**
   * Instead of `network`: an isolated network of its own (QEMU user networking, `restrict=on`: the
   * guest reaches nothing outside), whose only way in is the guest's port 80 forwarded from
   * `forward` (`ADDRESS:PORT` on the host): a restored copy is checked there before it serves.
   */
  readonly isolatedNetwork?: { readonly forward: string };
  /** The host's network namespace QEMU runs in (so it can open the host's tap). */
  readonly namespace?: string;
  readonly accelerator?: Accelerator;
  readonly kernel?: KernelFlavour;
  readonly memoryMiB?: number;
  /** Milliseconds between two durable writes of the guest's workload. */
  readonly writeIntervalMs?: number;
  /** `tcp:HOST:PORT`: start paused, waiting for a live migration into it. */
  readonly incoming?: string;
}

export interface VmFiles {
  readonly qmpSocket: string;
  readonly pidFile: string;
  readonly consoleLog: string;
}

export function vmFiles(spec: Pick<VmSpec, 'name' | 'runDirectory'>): VmFiles {
  return {
    qmpSocket: join(spec.runDirectory, `${spec.name}.qmp`),
    pidFile: join(spec.runDirectory, `${spec.name}.pid`),
    consoleLog: join(spec.runDirectory, `${spec.name}.console.log`),
  };
}

/** A locally administered MAC derived from the VM's name: the same VM keeps its MAC on every host. */
export function macForVm(name: string): string {
  const digest = createHash('sha256').update(name).digest();
  return ['52', '54', '00', ...[0, 1, 2].map((index) => digest[index]!.toString(16).padStart(2, '0'))].join(':');
}

/**
 * Kernel arguments that cut the boot under TCG from ~3.4 s to ~2.4 s (measured; docs/real-vms.md):
 * no speculative-execution mitigations (alternatives patching is slow under emulation), no TSC
 * calibration or timer check, no PS/2 or extra UART probing, no crypto self-tests.
 */
export const FAST_BOOT_KERNEL_ARGUMENTS = [
  'console=ttyS0',
  'quiet',
  'panic=-1',
  'mitigations=off',
  'tsc=reliable',
  'no_timer_check',
  'i8042.noaux',
  'i8042.nokbd',
  'i8042.nopnp',
  '8250.nr_uarts=1',
  'cryptomgr.notests',
] as const;

/** The QEMU argument vector (without the binary) for one VM. Pure. */
export function qemuArguments(spec: VmSpec): string[] {
  if (!VM_NAME_PATTERN.test(spec.name)) throw new Error(`VM name ${JSON.stringify(spec.name)} is not ${VM_NAME_PATTERN}`);
  const files = vmFiles(spec);
  const kernel = (spec.kernel ?? 'vmlinux') === 'vmlinux' ? spec.image.vmlinux : spec.image.vmlinuz;
  const append = [...FAST_BOOT_KERNEL_ARGUMENTS, `tmr.vm=${spec.name}`];
  if (spec.network !== undefined) {
    append.push(`tmr.ip=${spec.network.address}`);
    if (spec.network.gateway !== undefined) append.push(`tmr.gw=${spec.network.gateway}`);
  }
  // QEMU's user networking hands a forwarded connection to the guest with the client's own address
  // (only loopback clients become 10.0.2.2): the guest needs its route back through 10.0.2.2.
  // restrict=on still routes nothing out.
  if (spec.isolatedNetwork !== undefined) append.push(`tmr.ip=${ISOLATED_GUEST_ADDRESS}/24`, 'tmr.gw=10.0.2.2');
  if (spec.writeIntervalMs !== undefined) append.push(`tmr.interval_ms=${Math.max(1, Math.round(spec.writeIntervalMs))}`);
  // The process name (15 characters at most) lets teardown find every QEMU of ours by its prefix.
  const processName = `tmr-${spec.name}`.slice(0, 15);
  const args = [
    '-name', `tmr-${spec.name},process=${processName}`,
    '-machine', 'q35',
    '-accel', spec.accelerator ?? 'tcg',
    '-m', String(spec.memoryMiB ?? 256),
    '-smp', '1',
    '-nodefaults',
    '-no-user-config',
    // -nographic cannot be combined with -daemonize; this is its equivalent: no display, the
    // serial console to a file, no human monitor.
    '-display', 'none',
    '-monitor', 'none',
    '-serial', `file:${files.consoleLog}`,
    '-no-reboot',
    '-kernel', kernel,
    '-initrd', spec.image.initramfs,
    '-append', append.join(' '),
    '-qmp', `unix:${files.qmpSocket},server=on,wait=off`,
    '-pidfile', files.pidFile,
    '-daemonize',
  ];
  // A PCIe root port to hot-plug a disk into: a hot standby boots without its disk and receives
  // it on promotion (`hotplugDisk`); q35's root bus itself takes no hot-plug.
  args.push('-device', `pcie-root-port,id=${HOTPLUG_PORT},chassis=1,slot=1`);
  if (spec.disk !== undefined) {
    args.push('-drive', `file=${spec.disk},if=none,id=disk0,format=qcow2,cache=writeback`, '-device', 'virtio-blk-pci,drive=disk0,id=vda');
  }
  if (spec.network !== undefined) {
    args.push(
      '-netdev', `tap,id=net0,ifname=${spec.network.tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=net0,mac=${spec.network.mac ?? macForVm(spec.name)}`,
    );
  }
  if (spec.isolatedNetwork !== undefined) {
    args.push(
      '-netdev', `user,id=net0,restrict=on,net=10.0.2.0/24,hostfwd=tcp:${spec.isolatedNetwork.forward}-${ISOLATED_GUEST_ADDRESS}:80`,
      '-device', 'virtio-net-pci,netdev=net0',
    );
  }
  if (spec.incoming !== undefined) args.push('-incoming', spec.incoming);
  return args;
}

/** The whole command: QEMU, run inside the host's namespace when there is one. */
export function qemuCommand(spec: VmSpec): string[] {
  const qemu = [QEMU_BINARY, ...qemuArguments(spec)];
  return spec.namespace === undefined ? qemu : ['ip', 'netns', 'exec', spec.namespace, ...qemu];
}

export const HOTPLUG_PORT = 'hotplug0';
/** A restored copy's address on its isolated network (QEMU user networking's default guest address). */
export const ISOLATED_GUEST_ADDRESS = '10.0.2.15';

/**
 * Gives a running VM its disk (the promotion of a hot standby, once the old primary is fenced):
 * the guest's /init starts the write workload as soon as /dev/vda appears. Measured: the first
 * durable write ~0.4 s after this call under TCG.
 */
export async function hotplugDisk(vm: Pick<RunningVm, 'qmp'>, disk: string): Promise<void> {
  await vm.qmp.execute('blockdev-add', { driver: 'qcow2', 'node-name': 'disk0', file: { driver: 'file', filename: disk } });
  await vm.qmp.execute('device_add', { driver: 'virtio-blk-pci', drive: 'disk0', id: 'vda', bus: HOTPLUG_PORT });
}

/** Creates the VM's disk as a qcow2 overlay on `base` (absolute backing path), unless it exists. */
export async function createOverlay(options: { base: string; overlay: string }): Promise<void> {
  if (existsSync(options.overlay)) return;
  await mkdir(dirname(options.overlay), { recursive: true });
  await run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', resolve(options.base), '-F', 'qcow2', options.overlay]);
}

/**
 * Reads one 512-byte sector of a qcow2 (through its backing chain) as text, trailing NULs cut.
 * It parses `qemu-io`'s hex dump: `qemu-img dd` would need a scratch file and counts skipped
 * blocks in `count` (QEMU 7.2), which is a trap. `-U` reads a disk a running QEMU holds locked.
 */
export async function readDiskSector(options: { disk: string; sector: number }): Promise<string> {
  const offset = options.sector * 512;
  const { stdout } = await run(['qemu-io', '-r', '-U', '-f', 'qcow2', '-c', `read -v ${offset} 512`, options.disk]);
  const bytes: number[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^[0-9a-f]{8}:\s+((?:[0-9a-f]{2} ){15}[0-9a-f]{2})/.exec(line);
    if (match !== null) for (const pair of match[1]!.split(' ')) bytes.push(Number.parseInt(pair, 16));
  }
  if (bytes.length !== 512) throw new Error(`readDiskSector: qemu-io gave ${bytes.length} bytes of sector ${options.sector}`);
  return Buffer.from(bytes).toString('latin1').replace(/\0+$/, '');
}

/**
 * The workload's records on a VM's disk, sectors 1..`sectors`: which run of the guest (boot) wrote
 * each sequence number. One `qemu-io` read of the whole range (`-U`: a running QEMU may hold the
 * disk); a sector without a record ends the list, as the guest writes them contiguously.
 */
export async function readDiskRecords(options: { disk: string; sectors: number }): Promise<Map<number, string>> {
  const length = Math.max(1, options.sectors) * 512;
  const { stdout } = await run(['qemu-io', '-r', '-U', '-f', 'qcow2', '-c', `read -v 512 ${length}`, options.disk]);
  const bytes = Buffer.alloc(length);
  let filled = 0;
  for (const line of stdout.split('\n')) {
    const match = /^([0-9a-f]{8}):\s+((?:[0-9a-f]{2} ){15}[0-9a-f]{2})/.exec(line);
    if (match === null) continue;
    const at = Number.parseInt(match[1]!, 16) - 512;
    match[2]!.split(' ').forEach((pair, index) => bytes.writeUInt8(Number.parseInt(pair, 16), at + index));
    filled += 16;
  }
  if (filled !== length) throw new Error(`readDiskRecords: qemu-io gave ${filled} of ${length} bytes`);
  const records = new Map<number, string>();
  for (let sector = 0; sector < options.sectors; sector++) {
    const text = bytes.subarray(sector * 512, sector * 512 + 512).toString('latin1');
    const match = /^seq=(\d+) vm=\S+ boot=([0-9a-f]+)/.exec(text);
    if (match === null) break;
    records.set(Number(match[1]), match[2]!);
  }
  return records;
}

export interface RunningVm {
  readonly name: string;
  readonly pid: number;
  readonly qmp: QmpClient;
  readonly files: VmFiles;
  readonly launchedAtMs: number;
}

/**
 * Whether a process runs: it exists (signal 0) and is not a zombie. A killed QEMU that was
 * daemonized is reaped by PID 1, which may take its time; a zombie runs no guest code.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function readPid(pidFile: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await readFile(pidFile, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

const delay = (ms: number) => new Promise((resolveDelay) => setTimeout(resolveDelay, ms));

/**
 * Starts QEMU for `spec` and connects to its QMP socket. QEMU daemonizes once its devices and
 * sockets are set up, so a bad command line fails here with QEMU's own message.
 */
export async function launchVm(spec: VmSpec, options: { nowMs?: () => number } = {}): Promise<RunningVm> {
  const nowMs = options.nowMs ?? (() => performance.now());
  const files = vmFiles(spec);
  await mkdir(spec.runDirectory, { recursive: true });
  const previous = await readPid(files.pidFile);
  if (previous !== null && processAlive(previous)) throw new Error(`VM ${spec.name} already runs (pid ${previous})`);
  await rm(files.qmpSocket, { force: true });
  await rm(files.consoleLog, { force: true });
  const launchedAtMs = nowMs();
  await run(qemuCommand(spec), { timeoutMs: 30_000 });
  const pid = await readPid(files.pidFile);
  if (pid === null) throw new Error(`VM ${spec.name}: QEMU daemonized without a pid file`);
  const qmp = await QmpClient.connect(files.qmpSocket);
  return { name: spec.name, pid, qmp, files, launchedAtMs };
}

/** Reattaches to a VM that runs already (after an agent restart); null when it does not run. */
export async function attachVm(spec: Pick<VmSpec, 'name' | 'runDirectory'>): Promise<RunningVm | null> {
  const files = vmFiles(spec);
  const pid = await readPid(files.pidFile);
  if (pid === null || !processAlive(pid)) return null;
  const qmp = await QmpClient.connect(files.qmpSocket);
  return { name: spec.name, pid, qmp, files, launchedAtMs: Number.NaN };
}

/**
 * Stops a VM: `quit` over QMP (QEMU flushes its disks and exits), then SIGKILL if it is still
 * there after `graceMs`. Resolves once the process is gone. A power cut is `killVm`.
 */
export async function stopVm(vm: RunningVm, options: { graceMs?: number } = {}): Promise<void> {
  const graceMs = options.graceMs ?? 5_000;
  if (!vm.qmp.closed) await vm.qmp.execute('quit', undefined, graceMs).catch(() => undefined);
  vm.qmp.close();
  if (!(await waitForExit(vm.pid, graceMs))) await killVm(vm);
  await rm(vm.files.pidFile, { force: true });
  await rm(vm.files.qmpSocket, { force: true });
}

/** Kills QEMU at once (the simulated power cut of one VM): nothing is flushed. */
export async function killVm(vm: Pick<RunningVm, 'pid' | 'qmp'>): Promise<void> {
  vm.qmp.close();
  try {
    process.kill(vm.pid, 'SIGKILL');
  } catch {
    // It is gone already.
  }
  if (!(await waitForExit(vm.pid, 5_000))) throw new Error(`QEMU pid ${vm.pid} survived SIGKILL`);
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  for (let waitedMs = 0; waitedMs < timeoutMs; waitedMs += 50) {
    if (!processAlive(pid)) return true;
    await delay(50);
  }
  return !processAlive(pid);
}

/** Resident memory of a process in KiB (from /proc), or null when it is gone. */
export async function residentKiB(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

/** Waits until the guest's console shows `marker`; resolves false on timeout. */
export async function waitForConsole(consoleLog: string, marker: string, timeoutMs: number): Promise<boolean> {
  for (let waitedMs = 0; waitedMs < timeoutMs; waitedMs += 50) {
    try {
      if ((await readFile(consoleLog, 'utf8')).includes(marker)) return true;
    } catch {
      // Not written yet.
    }
    await delay(50);
  }
  return false;
}

/**
 * Polls `url` until it answers 200 with `expectBody` (trimmed). Each try has a short timeout: the
 * first ARP for a booting guest goes unanswered and must not hold the next try back.
 */
export async function waitForHealth(url: string, options: { timeoutMs: number; expectBody?: string; nowMs?: () => number }): Promise<number | null> {
  const nowMs = options.nowMs ?? (() => performance.now());
  const startedAtMs = nowMs();
  while (nowMs() - startedAtMs < options.timeoutMs) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(300) });
      const body = (await response.text()).trim();
      if (response.ok && (options.expectBody === undefined || body === options.expectBody)) return nowMs() - startedAtMs;
    } catch {
      // Not up yet.
    }
    await delay(50);
  }
  return null;
}

let probed: Promise<Accelerator> | null = null;

/**
 * KVM only if it boots this guest: a smoke boot with KVM that must reach /init within `timeoutMs`
 * (3 s; a working KVM gets there in well under one). Anything else — no /dev/kvm, a nested
 * hypervisor that hangs, an error — is TCG. The answer is cached for the process.
 */
export function probeAccelerator(image: GuestImage, options: { runDirectory: string; timeoutMs?: number }): Promise<Accelerator> {
  probed ??= (async (): Promise<Accelerator> => {
    if (!existsSync('/dev/kvm')) return 'tcg';
    const spec: VmSpec = { name: 'kvm-probe', image, runDirectory: options.runDirectory, accelerator: 'kvm', memoryMiB: 128 };
    let vm: RunningVm | null = null;
    try {
      vm = await launchVm(spec);
      const booted = await waitForConsole(vm.files.consoleLog, 'tmr-guest: init', options.timeoutMs ?? 3_000);
      return booted ? 'kvm' : 'tcg';
    } catch {
      return 'tcg';
    } finally {
      if (vm !== null) await killVm(vm).catch(() => undefined);
      const files = vmFiles(spec);
      for (const file of [files.pidFile, files.qmpSocket, files.consoleLog]) await rm(file, { force: true });
    }
  })();
  return probed;
}

/**
 * How long one guest takes from launch to serving its health endpoint on this machine now (the
 * console's "up at" line), in ms; null if it did not within the timeout. The lab derives its
 * timeouts from it (a start, the warm-up, the recovery), so a slower machine gets longer ones
 * instead of failing on constants measured elsewhere.
 */
export async function measureBootMs(image: GuestImage, options: { runDirectory: string; accelerator: Accelerator; timeoutMs?: number }): Promise<number | null> {
  const spec: VmSpec = { name: 'boot-probe', image, runDirectory: options.runDirectory, accelerator: options.accelerator, memoryMiB: 256 };
  let vm: RunningVm | null = null;
  const startedAt = performance.now();
  try {
    vm = await launchVm(spec);
    const booted = await waitForConsole(vm.files.consoleLog, 'tmr-guest: boot-probe up at', options.timeoutMs ?? 60_000);
    return booted ? Math.round(performance.now() - startedAt) : null;
  } catch {
    return null;
  } finally {
    if (vm !== null) await killVm(vm).catch(() => undefined);
    const files = vmFiles(spec);
    for (const file of [files.pidFile, files.qmpSocket, files.consoleLog]) await rm(file, { force: true });
  }
}

/** The size of a file in bytes, or null. */
export async function fileBytes(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

/** Every QEMU of ours still running (process name prefixed `tmr-`), as pids. */
export async function ourQemuPids(): Promise<number[]> {
  const result = await tryRun(['pgrep', '^tmr-'], { timeoutMs: 5_000 });
  if (result === null) return [];
  return result.stdout.split('\n').filter((line) => line.trim() !== '').map(Number);
}
