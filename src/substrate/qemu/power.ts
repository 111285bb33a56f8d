/**
 * The lab's power controller (a BMC/IPMI stand-in) and the lab's life cycle.
 *
 * The power controller lives in the root namespace, out of band: it answers for a host whose
 * network is cut or whose agent is dead. `off` is a power cut — every process in the host's
 * namespace (its agent and its QEMUs) is killed at once, nothing flushed — confirmed only when no
 * process of the namespace is left. `on` boots the host: its agent starts again (and finds no VM,
 * as a host that was off would).
 *
 * `labUp` builds the hosts of a lab manifest (namespaces, bridges, uplinks, datastore
 * directories, a fresh agent token, agents) and `labDown` removes everything prefixed `tmr-`,
 * then checks that nothing is left.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Blueprint } from '../../model/index.ts';
import { hasCommand, run, tryRun } from './command.ts';
import type { AgentState } from './agent.ts';
import { type LabLayout, type LabManifest, labPlan, readManifest, readToken, writeAtomic } from './lab.ts';
import { createHostNamespace, DEFAULT_ROOT_BRIDGE, ensureRootBridge, listLabResources, namespaceName, namespacePids, teardownLab, type LabResources } from './netns.ts';
import { DEFAULT_IMAGE_DIRECTORY, loadGuestImage, measureBootMs, probeAccelerator, processAlive } from './vm.ts';
import { TomaranaiError } from '../../errors/index.ts';
import { FencePower, startLabBmcs } from './fence-power.ts';
import { agentRequest, issueAgentCertificates, readControlPlaneTls } from './agent-tls.ts';

const REPOSITORY = resolve(dirname(new URL(import.meta.url).pathname), '../../..');
const AGENT_READY_TIMEOUT_MS = 20_000;

export type PowerState = 'on' | 'off';

export class PowerController {
  constructor(
    private readonly layout: LabLayout,
    private readonly manifest: LabManifest,
  ) {}

  async state(host: string): Promise<PowerState> {
    const text = await readFile(this.layout.power(host), 'utf8').catch(() => 'off');
    return text.trim() === 'on' ? 'on' : 'off';
  }

  /** Cuts a host's power: kills everything in its namespace; resolves with the pids it killed. */
  async off(host: string): Promise<{ killed: number; confirmed: boolean }> {
    const namespace = namespaceName(host);
    await writeAtomic(this.layout.power(host), 'off');
    const pids = await namespacePids(namespace);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    for (let waitedMs = 0; waitedMs < 5_000 && pids.some(processAlive); waitedMs += 20) await delay(20);
    const left = (await namespacePids(namespace)).length;
    return { killed: pids.length, confirmed: left === 0 };
  }

  /** Powers a host on: its agent starts and answers on the management network. */
  async on(host: string): Promise<void> {
    await writeAtomic(this.layout.power(host), 'on');
    await startAgent(this.layout, this.manifest, host);
  }
}

const delay = (ms: number) => new Promise((resolveDelay) => setTimeout(resolveDelay, ms));

/** Starts a host's agent inside its namespace, detached (it outlives the command that started it). */
export async function startAgent(layout: LabLayout, manifest: LabManifest, host: string): Promise<void> {
  const entry = manifest.hosts.find((candidate) => candidate.name === host);
  if (entry === undefined) throw new Error(`host ${host} is not in the lab`);
  await mkdir(layout.run(host), { recursive: true });
  const log = openSync(layout.agentLog(host), 'a');
  try {
    const child = spawn(
      'ip',
      ['netns', 'exec', entry.namespace, ...agentCommand(layout, host)],
      { detached: true, stdio: ['ignore', log, log], env: { ...process.env, TOMARANAI_AGENT: '1' } },
    );
    child.unref();
  } finally {
    closeSync(log);
  }
  const token = await readToken(layout);
  const started = Date.now();
  while (Date.now() - started < AGENT_READY_TIMEOUT_MS) {
    if ((await fetchAgentState(manifest, token, host, 500)) !== null) return;
    await delay(100);
  }
  throw new Error(`the agent of ${host} did not answer within ${AGENT_READY_TIMEOUT_MS / 1000} s (see ${layout.agentLog(host)})`);
}

/** The command that runs a host's agent (inside its namespace). */
export function agentCommand(layout: LabLayout, host: string): string[] {
  return [process.execPath, join(REPOSITORY, 'bin', 'tomaranai.js'), 'agent', '--lab', layout.root, '--host', host];
}

const REQUIRED_TOOLS = ['ip', 'nft', 'qemu-system-x86_64', 'qemu-img', 'qemu-io'] as const;
/** The hosts' power goes through a real BMC (ipmi_sim) and a standard fence agent (fence_ipmilan). */
const FENCING_TOOLS = ['ipmi_sim', 'fence_ipmilan', 'ipmitool'] as const;

/** What a lab needs from the machine; throws a TomaranaiError naming what is missing. */
export async function checkLabPrerequisites(): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new TomaranaiError('TMR_LAB_NOT_ROOT', 'the lab needs root (network namespaces, bridges, taps, nftables)', 'run it as root, or use the twin (`tomaranai drill FILE`)');
  }
  for (const tool of REQUIRED_TOOLS) {
    if (!(await hasCommand(tool))) {
      throw new TomaranaiError('TMR_LAB_MISSING_TOOL', `${tool} is not installed`, 'run `npm run vm:image` (it installs qemu-system-x86 qemu-utils busybox-static nftables iproute2 socat from Debian)');
    }
  }
  for (const tool of FENCING_TOOLS) {
    if (!(await hasCommand(tool)) && !existsSync(`/usr/sbin/${tool}`)) {
      throw new TomaranaiError('TMR_LAB_MISSING_TOOL', `${tool} is not installed`, 'run `bash scripts/ci-fencing.sh` (it installs fence-agents openipmi ipmitool faketime from Debian)');
    }
  }
}

/**
 * Builds the guest image, or confirms it is up to date (scripts/vm-image.sh keeps a stamp of the
 * kernel package and of itself: an image built by an older script is rebuilt).
 */
export async function ensureGuestImage(imageDirectory = DEFAULT_IMAGE_DIRECTORY): Promise<void> {
  if (imageDirectory !== DEFAULT_IMAGE_DIRECTORY && (await loadGuestImage(imageDirectory)) !== null) return;
  await run(['bash', join(REPOSITORY, 'scripts', 'vm-image.sh')], { timeoutMs: 15 * 60_000 });
}

/**
 * Brings a lab up for a blueprint: hosts with agents, no VM yet (the controller boots them).
 * Idempotent for the same blueprint: agents that are not running are started.
 */
export async function labUp(options: { layout: LabLayout; blueprint: Blueprint; blueprintFile: string; imageDirectory?: string }): Promise<LabManifest> {
  await checkLabPrerequisites();
  const imageDirectory = options.imageDirectory ?? DEFAULT_IMAGE_DIRECTORY;
  await ensureGuestImage(imageDirectory);
  const existing = await readManifest(options.layout);
  if (existing !== null && (await listLabResources()).namespaces.length > 0) {
    if (existing.blueprintName !== options.blueprint.name) {
      throw new TomaranaiError('TMR_LAB_OTHER_BLUEPRINT', `a lab for ${existing.blueprintName} is up in ${options.layout.root}`, 'run `tomaranai lab down` first');
    }
    for (const host of existing.hosts) {
      if ((await new PowerController(options.layout, existing).state(host.name)) === 'on' && !(await agentAnswers(options.layout, existing, host.name))) {
        await startAgent(options.layout, existing, host.name);
      }
    }
    return existing;
  }
  // Leftovers of a run that died are removed first, so a lab always starts clean.
  await teardownLab();
  await rm(options.layout.root, { recursive: true, force: true });
  const image = (await loadGuestImage(imageDirectory))!;
  await mkdir(options.layout.root, { recursive: true });
  const accelerator = await probeAccelerator(image, { runDirectory: join(options.layout.root, 'probe') });
  // One guest booted alone: this machine's speed now, from which the drills derive their timeouts.
  const bootMs = await measureBootMs(image, { runDirectory: join(options.layout.root, 'probe'), accelerator });
  await rm(join(options.layout.root, 'probe'), { recursive: true, force: true });
  const planned = labPlan(options.blueprint, { blueprintFile: options.blueprintFile, imageDirectory, accelerator, bootMs });
  // Mutual TLS between the control plane and every agent: a fresh CA per lab.
  await issueAgentCertificates({ out: options.layout.tlsDirectory, hosts: planned.hosts.map((host) => ({ name: host.name, address: host.address })) });
  const manifest: LabManifest = { ...planned, tlsDirectory: options.layout.tlsDirectory };
  await writeAtomic(options.layout.tokenFile, randomBytes(32).toString('hex'), 0o600);
  await writeAtomic(options.layout.manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  for (const ds of manifest.datastores) {
    for (const sub of ['disks', 'heartbeats', 'leases', 'fence', 'snapshots']) await mkdir(join(options.layout.datastore(ds), sub), { recursive: true });
  }
  await mkdir(options.layout.controlDirectory, { recursive: true });
  await ensureRootBridge({ address: `${manifest.rootAddress}/${manifest.prefix}` });
  // A second address on the root bridge: a clinician terminal, to test what the policy lets through.
  await tryRun(['ip', 'addr', 'add', `${manifest.clientAddress}/${manifest.prefix}`, 'dev', DEFAULT_ROOT_BRIDGE]);
  for (const host of manifest.hosts) await createHostNamespace({ host: host.name, address: `${host.address}/${manifest.prefix}` });
  // Each host gets a real IPMI BMC, and is powered on through it by the fence agent the control
  // plane will fence it with: a lab that comes up has proven its power fencing path works.
  await startLabBmcs(options.layout, manifest, (host) => ['env', 'TOMARANAI_AGENT=1', ...agentCommand(options.layout, host)]);
  const power = FencePower.load(undefined, options.layout, manifest, (host) => agentAnswers(options.layout, manifest, host))!;
  const results = await Promise.all(manifest.hosts.map((host) => power.on(host.name)));
  const failed = results.filter((result) => !result.ok);
  if (failed.length > 0) throw new Error(`hosts did not power on through their BMCs: ${failed.map((result) => result.detail).join('; ')}`);
  return manifest;
}

/** A host's agent's state over the lab network, or null when it does not answer (or refuses the token). */
export async function fetchAgentState(manifest: LabManifest, token: string, host: string, timeoutMs = 1_000): Promise<AgentState | null> {
  const entry = manifest.hosts.find((candidate) => candidate.name === host);
  if (entry === undefined) return null;
  try {
    const tls = manifest.tlsDirectory === undefined ? null : readControlPlaneTls(manifest.tlsDirectory);
    const response = await agentRequest({ host, address: entry.address, port: manifest.agentPort, method: 'GET', path: '/state', token, timeoutMs, tls });
    return response.status === 200 ? (response.body as AgentState) : null;
  } catch {
    return null;
  }
}

export async function agentAnswers(layout: LabLayout, manifest: LabManifest, host: string): Promise<boolean> {
  return (await fetchAgentState(manifest, await readToken(layout), host)) !== null;
}

/**
 * Tears the lab down: every process in our namespaces (agents, QEMUs), every `tmr-` namespace,
 * interface and nftables table, and the lab directory. Throws TMR_LAB_LEFTOVERS, naming them, if
 * anything is left.
 */
export async function labDown(options: { layout: LabLayout; keepDirectory?: boolean }): Promise<LabResources> {
  let left = await teardownLab();
  // Namespaces' own nftables tables go with the namespace; a second pass catches stragglers.
  if (left.namespaces.length + left.links.length + left.nftTables.length + left.processes.length > 0) left = await teardownLab();
  if (options.keepDirectory !== true && existsSync(options.layout.root)) await rm(options.layout.root, { recursive: true, force: true });
  const count = left.namespaces.length + left.links.length + left.nftTables.length + left.processes.length;
  if (count > 0) {
    throw new TomaranaiError(
      'TMR_LAB_LEFTOVERS',
      `lab down left ${count} things behind: ${[...left.namespaces, ...left.links, ...left.nftTables, ...left.processes.map((pid) => `pid ${pid}`)].join(', ')}`,
      'remove them by hand (ip netns del, ip link del, nft delete table, kill) and report it',
    );
  }
  return left;
}
