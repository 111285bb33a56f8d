/**
 * The lab's network, on one machine: every simulated host is a network namespace with its own
 * bridge, wired by a veth uplink to one bridge in the root namespace; every VM is plugged into its
 * host's bridge through a tap. All of it is one L2 segment (10.77.0.0/16 by default), so a VM keeps
 * its address on whichever host it runs, and the root namespace (the control plane, the tests)
 * reaches every VM and every host. Cutting a host's uplink isolates the host and its VMs, which
 * keep running.
 *
 * Every name this module creates starts with `tmr-`, and teardown deletes only names that do: it
 * never touches an interface, namespace, nftables table or process that is not prefixed.
 */
import { createHash } from 'node:crypto';
import { run, tryRun } from './command.ts';
import { processAlive } from './vm.ts';

export const PREFIX = 'tmr-';
/** Linux interface names are at most 15 characters. */
const INTERFACE_NAME_MAX = 15;
export const HOST_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,30}$/;

export const DEFAULT_ROOT_BRIDGE = 'tmr-br';
export const DEFAULT_ROOT_ADDRESS = '10.77.0.1/16';
/** The bridge inside every host namespace, and its end of the uplink. */
export const HOST_BRIDGE = 'tmr-br0';
export const HOST_UPLINK = 'tmr-up';

/** `tmr-<tag>-<name>` when it fits an interface name, else `tmr-<tag><8 hex of the name>`. */
export function interfaceName(tag: string, name: string): string {
  const readable = `${PREFIX}${tag}-${name}`;
  if (readable.length <= INTERFACE_NAME_MAX) return readable;
  return `${PREFIX}${tag}${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

export function namespaceName(host: string): string {
  if (!HOST_NAME_PATTERN.test(host)) throw new Error(`host name ${JSON.stringify(host)} is not ${HOST_NAME_PATTERN}`);
  return `${PREFIX}${host}`;
}

/** The root-namespace end of a host's uplink: set it down to isolate the host. */
export function uplinkName(host: string): string {
  return interfaceName('u', host);
}

export function tapName(vm: string): string {
  return interfaceName('t', vm);
}

export interface HostNamespace {
  readonly host: string;
  readonly namespace: string;
  readonly bridge: string;
  readonly uplinkRoot: string;
  /** The host's own address on the lab network (its agent listens here), with prefix. */
  readonly address: string;
}

async function linkExists(name: string, namespace?: string): Promise<boolean> {
  const command = namespace === undefined ? ['ip', 'link', 'show', 'dev', name] : ['ip', '-n', namespace, 'link', 'show', 'dev', name];
  return (await tryRun(command, { timeoutMs: 5_000 })) !== null;
}

async function namespaceExists(namespace: string): Promise<boolean> {
  return (await listNamespaces()).includes(namespace);
}

/** The root bridge every host's uplink plugs into, with the root namespace's lab address. Idempotent. */
export async function ensureRootBridge(options: { bridge?: string; address?: string } = {}): Promise<void> {
  const bridge = options.bridge ?? DEFAULT_ROOT_BRIDGE;
  const address = options.address ?? DEFAULT_ROOT_ADDRESS;
  assertOurs(bridge);
  if (!(await linkExists(bridge))) await run(['ip', 'link', 'add', bridge, 'type', 'bridge']);
  await tryRun(['ip', 'addr', 'add', address, 'dev', bridge]); // "exists" on a second call is fine
  await run(['ip', 'link', 'set', bridge, 'up']);
}

/**
 * A host: its namespace, its bridge (with the host's address), and the veth uplink to the root
 * bridge. Idempotent: what exists already is kept.
 */
export async function createHostNamespace(options: { host: string; address: string; rootBridge?: string }): Promise<HostNamespace> {
  const namespace = namespaceName(options.host);
  const rootBridge = options.rootBridge ?? DEFAULT_ROOT_BRIDGE;
  const uplinkRoot = uplinkName(options.host);
  if (!(await namespaceExists(namespace))) await run(['ip', 'netns', 'add', namespace]);
  const inside = (...command: string[]) => run(['ip', '-n', namespace, ...command]);
  await inside('link', 'set', 'lo', 'up');
  if (!(await linkExists(HOST_BRIDGE, namespace))) await inside('link', 'add', HOST_BRIDGE, 'type', 'bridge');
  if (!(await linkExists(uplinkRoot))) await run(['ip', 'link', 'add', uplinkRoot, 'type', 'veth', 'peer', 'name', HOST_UPLINK, 'netns', namespace]);
  await run(['ip', 'link', 'set', uplinkRoot, 'master', rootBridge]);
  await run(['ip', 'link', 'set', uplinkRoot, 'up']);
  await inside('link', 'set', HOST_UPLINK, 'master', HOST_BRIDGE);
  await inside('link', 'set', HOST_UPLINK, 'up');
  await tryRun(['ip', '-n', namespace, 'addr', 'add', options.address, 'dev', HOST_BRIDGE]);
  await inside('link', 'set', HOST_BRIDGE, 'up');
  return { host: options.host, namespace, bridge: HOST_BRIDGE, uplinkRoot, address: options.address };
}

/** Cuts (or restores) a host's uplink: the host and its VMs keep running, unreachable. */
export async function setUplink(options: { host: string; up: boolean }): Promise<void> {
  await run(['ip', 'link', 'set', uplinkName(options.host), options.up ? 'up' : 'down']);
}

/** A tap for one VM in its host's namespace, plugged into the host's bridge. Idempotent. */
export async function createTap(options: { host: string; vm: string }): Promise<string> {
  const namespace = namespaceName(options.host);
  const tap = tapName(options.vm);
  if (!(await linkExists(tap, namespace))) await run(['ip', '-n', namespace, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await run(['ip', '-n', namespace, 'link', 'set', tap, 'master', HOST_BRIDGE]);
  await run(['ip', '-n', namespace, 'link', 'set', tap, 'up']);
  return tap;
}

export async function deleteTap(options: { host: string; vm: string }): Promise<void> {
  await tryRun(['ip', '-n', namespaceName(options.host), 'link', 'del', tapName(options.vm)]);
}

/** The processes running in a namespace (QEMU, a host agent). */
export async function namespacePids(namespace: string): Promise<number[]> {
  assertOurs(namespace);
  const result = await tryRun(['ip', 'netns', 'pids', namespace], { timeoutMs: 5_000 });
  if (result === null) return [];
  return result.stdout.split('\n').filter((line) => line.trim() !== '').map(Number).filter((pid) => Number.isInteger(pid) && pid > 0);
}

/**
 * Deletes a host: kills what runs in its namespace (a namespace with a live process outlives
 * `ip netns del`), deletes the namespace (its bridge, taps and its end of the uplink go with it)
 * and the root end of the uplink if it is still there.
 */
export async function deleteHostNamespace(host: string): Promise<void> {
  const namespace = namespaceName(host);
  await killNamespaceProcesses(namespace);
  await tryRun(['ip', 'netns', 'del', namespace]);
  if (await linkExists(uplinkName(host))) await tryRun(['ip', 'link', 'del', uplinkName(host)]);
}

async function killNamespaceProcesses(namespace: string): Promise<void> {
  const pids = await namespacePids(namespace);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  for (let waitedMs = 0; waitedMs < 5_000 && pids.some(processAlive); waitedMs += 50) await new Promise((resolve) => setTimeout(resolve, 50));
}

export interface LabResources {
  readonly namespaces: readonly string[];
  /** Interfaces in the root namespace. */
  readonly links: readonly string[];
  /** `family name` of every nftables table in the root namespace. */
  readonly nftTables: readonly string[];
  /** QEMU (and any other) processes whose name starts with the prefix. */
  readonly processes: readonly number[];
}

export async function listNamespaces(): Promise<string[]> {
  const result = await tryRun(['ip', 'netns', 'list'], { timeoutMs: 5_000 });
  if (result === null) return [];
  return result.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.startsWith(PREFIX));
}

/** Everything of ours that exists now, found by the prefix. */
export async function listLabResources(): Promise<LabResources> {
  const links = await tryRun(['ip', '-o', 'link', 'show'], { timeoutMs: 5_000 });
  const tables = await tryRun(['nft', 'list', 'tables'], { timeoutMs: 5_000 });
  const processes = await tryRun(['pgrep', `^${PREFIX}`], { timeoutMs: 5_000 });
  return {
    namespaces: await listNamespaces(),
    links: (links?.stdout ?? '')
      .split('\n')
      .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '')
      .filter((name) => name.startsWith(PREFIX)),
    nftTables: (tables?.stdout ?? '')
      .split('\n')
      .map((line) => /^table\s+(\S+)\s+(\S+)/.exec(line.trim()))
      .filter((match): match is RegExpExecArray => match !== null && match[2]!.startsWith(PREFIX))
      .map((match) => `${match[1]} ${match[2]}`),
    // A killed QEMU is reparented to PID 1 and may linger as a zombie until it is reaped: it runs
    // nothing and holds nothing, so it is not left behind.
    processes: (processes?.stdout ?? '').split('\n').filter((line) => line.trim() !== '').map(Number).filter(processAlive),
  };
}

/**
 * Removes everything prefixed `tmr-`: processes in our namespaces and processes named `tmr-…`
 * (QEMU sets its process name so), the namespaces, root interfaces, and nftables tables. Returns
 * what is left (all empty when it worked).
 */
export async function teardownLab(): Promise<LabResources> {
  const before = await listLabResources();
  for (const namespace of before.namespaces) await killNamespaceProcesses(namespace);
  for (const pid of before.processes) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  for (const namespace of before.namespaces) await tryRun(['ip', 'netns', 'del', namespace]);
  // Uplinks first (they die with their namespace, usually), bridges last.
  const links = (await listLabResources()).links;
  for (const link of [...links].sort((a, b) => Number(a.startsWith(`${PREFIX}br`)) - Number(b.startsWith(`${PREFIX}br`)))) {
    await tryRun(['ip', 'link', 'del', link]);
  }
  for (const table of before.nftTables) {
    const [family, name] = table.split(' ');
    if (family !== undefined && name !== undefined && name.startsWith(PREFIX)) await tryRun(['nft', 'delete', 'table', family, name]);
  }
  for (let waitedMs = 0; waitedMs < 5_000 && before.processes.some(processAlive); waitedMs += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  return listLabResources();
}

function assertOurs(name: string): void {
  if (!name.startsWith(PREFIX)) throw new Error(`refusing to touch ${JSON.stringify(name)}: not prefixed ${PREFIX}`);
}
