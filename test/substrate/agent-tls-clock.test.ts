/**
 * Host agents a hospital could install, tested with real agent processes (`tomaranai agent`) on
 * loopback addresses, no VMs: mutual TLS (a client or an agent with a certificate of another CA,
 * or none, is refused; another host's certificate may not command an agent), and a host whose
 * wall clock is stepped ±30 s (libfaketime, preloaded into one agent) changes no decision of the
 * control plane's reader, which judges heartbeats by its own monotonic clock. The lease rule under
 * a stepped holder is tested on an in-process agent host (no QEMU needed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubstrateEvent } from '../../src/ports/index.ts';
import { RealClock } from '../../src/runtime/real-clock.ts';
import { AgentClient } from '../../src/substrate/qemu/agent-client.ts';
import { AgentHost } from '../../src/substrate/qemu/agent-host.ts';
import { takeLease } from '../../src/substrate/qemu/agent-heartbeat.ts';
import { agentRequest, issueAgentCertificates, readAgentTls, readControlPlaneTls } from '../../src/substrate/qemu/agent-tls.ts';
import { DEFAULT_LAB_TIMINGS, LabLayout, readJson, type HeartbeatRecord, type Lease, type LabManifest } from '../../src/substrate/qemu/lab.ts';
import { LabObserver } from '../../src/substrate/qemu/observer.ts';

const REPOSITORY = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const hasOpenssl = existsSync('/usr/bin/openssl');
const hasFaketime = existsSync(LIBFAKETIME);

const root = mkdtempSync(join(tmpdir(), 'tmr-agents-'));
const layout = new LabLayout(join(root, 'lab'));
const otherLayout = new LabLayout(join(root, 'other-lab'));
const port = 21_000 + (process.pid % 2_000);
const token = 'a'.repeat(64);
const clockFile = join(root, 'clock-step');

function manifestFor(tlsDirectory: string): LabManifest {
  return {
    version: 1,
    blueprintFile: join(root, 'lab.yaml'),
    blueprintName: 'agents',
    imageDirectory: join(root, 'image'),
    accelerator: 'tcg',
    agentPort: port,
    rootAddress: '127.0.0.1',
    clientAddress: '127.0.0.1',
    prefix: 8,
    hosts: [
      { name: 'lab-a1', namespace: 'none', address: '127.0.0.31' },
      { name: 'lab-b1', namespace: 'none', address: '127.0.0.32' },
      { name: 'lab-c1', namespace: 'none', address: '127.0.0.33' },
    ],
    vms: [{ name: 'ehr-1', service: 'ehr', tier: 'continuous', address: '127.0.1.10', mac: '52:54:00:00:00:01', datastore: 'ds', memoryMiB: 256 }],
    datastores: ['ds'],
    timings: DEFAULT_LAB_TIMINGS,
    createdAt: new Date().toISOString(),
    tlsDirectory,
  };
}

function writeLab(target: LabLayout, tlsDirectory: string): LabManifest {
  const manifest = manifestFor(tlsDirectory);
  for (const sub of ['disks', 'heartbeats', 'leases', 'fence', 'snapshots']) mkdirSync(join(target.datastore('ds'), sub), { recursive: true });
  mkdirSync(dirname(target.tokenFile), { recursive: true });
  writeFileSync(target.tokenFile, token, { mode: 0o600 });
  writeFileSync(target.manifestFile, JSON.stringify(manifest));
  return manifest;
}

const agents: ChildProcess[] = [];
function startAgent(target: LabLayout, host: string, environment: Record<string, string> = {}): void {
  const child = spawn(process.execPath, [join(REPOSITORY, 'bin', 'tomaranai.js'), 'agent', '--lab', target.root, '--host', host], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, TOMARANAI_AGENT: '1', ...environment } });
  agents.push(child);
}

let manifest: LabManifest;
const client = () => new AgentClient(manifest, token);

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await condition()) return true;
    await new Promise((resolveDelay) => setTimeout(resolveDelay, 100));
  }
  return false;
}

describe.skipIf(!hasOpenssl || !hasFaketime)(`host agents over mutual TLS, with a stepped clock${hasOpenssl && hasFaketime ? '' : ': skipped, needs openssl and faketime (bash scripts/ci-fencing.sh)'}`, () => {
  beforeAll(async () => {
    // A fake guest image: the agents start without one only to refuse, and boot no VM here.
    mkdirSync(join(root, 'image'), { recursive: true });
    const files = { vmlinux: 'vmlinux', vmlinuz: 'vmlinuz', initramfs: 'initramfs.cpio', baseDisk: 'base.qcow2' };
    for (const file of Object.values(files)) writeFileSync(join(root, 'image', file), '');
    writeFileSync(join(root, 'image', 'image.json'), JSON.stringify({ kernelVersion: 'test', ...Object.fromEntries(Object.entries(files).map(([key, file]) => [key, join(root, 'image', file)])) }));
    const hosts = ['lab-a1', 'lab-b1', 'lab-c1'].map((name) => ({ name }));
    await issueAgentCertificates({ out: layout.tlsDirectory, hosts });
    await issueAgentCertificates({ out: otherLayout.tlsDirectory, hosts });
    manifest = writeLab(layout, layout.tlsDirectory);
    writeLab(otherLayout, otherLayout.tlsDirectory);
    // One agent's datastore is the real lab's, so the reader sees its heartbeats.
    rmSync(otherLayout.datastore('ds'), { recursive: true, force: true });
    cpSync(layout.datastore('ds'), otherLayout.datastore('ds'), { recursive: true });
    writeFileSync(clockFile, '+0s');
    // lab-a1's wall clock follows clockFile (libfaketime, as `faketime` preloads it); its monotonic clock is left alone, as an NTP step leaves it.
    startAgent(layout, 'lab-a1', { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' });
    startAgent(layout, 'lab-b1');
    // lab-c1's agent serves a certificate another CA signed.
    startAgent(otherLayout, 'lab-c1');
    const up = await until(async () => (await client().state('lab-a1')) !== null && (await client().state('lab-b1')) !== null, 30_000);
    expect(up).toBe(true);
  });

  afterAll(() => {
    for (const agent of agents) agent.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('the control plane reaches each agent over mutual TLS, and the agent proves it is the host asked for', async () => {
    expect((await client().state('lab-a1'))?.host).toBe('lab-a1');
    // lab-b1's genuine certificate, reached at lab-a1's address: not the host we asked for.
    const tls = readControlPlaneTls(layout.tlsDirectory);
    await expect(agentRequest({ host: 'lab-b1', address: '127.0.0.31', port, method: 'GET', path: '/state', token, timeoutMs: 2_000, tls })).rejects.toThrow(/altnames|Hostname/i);
  });

  it('an agent with a certificate of another CA is refused by the control plane', async () => {
    // It is up (it answers its own CA's client) ...
    const ownClient = new AgentClient(manifest, token, readControlPlaneTls(otherLayout.tlsDirectory));
    expect(await until(async () => (await ownClient.state('lab-c1')) !== null, 30_000)).toBe(true);
    // ... and the control plane does not talk to it.
    expect(await client().state('lab-c1')).toBeNull();
    await expect(agentRequest({ host: 'lab-c1', address: '127.0.0.33', port, method: 'GET', path: '/state', token, timeoutMs: 2_000, tls: readControlPlaneTls(layout.tlsDirectory) })).rejects.toThrow(/certificate/i);
  });

  it('a client with a certificate of another CA, with none, or with a host\'s certificate is refused by the agent', async () => {
    const request = (tls: Parameters<typeof agentRequest>[0]['tls']) => agentRequest({ host: 'lab-a1', address: '127.0.0.31', port, method: 'GET', path: '/state', token, timeoutMs: 2_000, tls });
    const other = readControlPlaneTls(otherLayout.tlsDirectory);
    const ours = readControlPlaneTls(layout.tlsDirectory);
    // Another CA's client certificate: the handshake fails (and the agent's certificate is not trusted by that client either: trust ours to isolate the client side).
    await expect(request({ ...other, ca: ours.ca })).rejects.toThrow();
    // No client certificate at all.
    await expect(request({ ca: ours.ca, cert: '', key: '' })).rejects.toThrow();
    // Plain HTTP to a TLS agent.
    await expect(request(null)).rejects.toThrow();
    // Another host's genuine certificate of our CA: not the control plane.
    const hostPair = readAgentTls(layout.tlsDirectory, 'lab-b1');
    const answer = await request(hostPair).catch((error: unknown) => error);
    expect(answer instanceof Error || (answer as { status: number }).status === 403).toBe(true);
  });

  it('a ±30 s step of one agent\'s wall clock changes no decision: no heartbeat is lost, no host suspected', async () => {
    const events: SubstrateEvent[] = [];
    const observer = new LabObserver({ layout, manifest: { ...manifest, hosts: manifest.hosts.slice(0, 2) }, clock: new RealClock(), client: client(), pollMs: 250, missedAfterMs: 750 });
    observer.subscribe((event) => events.push(event));
    await observer.open(async () => true);
    const offsetOfA = async () => {
      const record = await readJson<HeartbeatRecord>(layout.heartbeat('ds', 'lab-a1'));
      return record === null ? 0 : record.atMs - Date.now();
    };
    try {
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 1_500));
      const offsets: number[] = [];
      for (const step of ['-30s', '+30s', '-30s', '+0s']) {
        writeFileSync(clockFile, step);
        await new Promise((resolveDelay) => setTimeout(resolveDelay, 2_000));
        offsets.push(Math.round((await offsetOfA()) / 1000));
      }
      console.log(`lab-a1's heartbeat time minus the reader's, after each step (s): ${offsets.join(', ')}; events: ${events.map((event) => event.type).join(', ') || 'none'}`);
      // The agent's clock really moved (its records say so) ...
      expect(offsets.slice(0, 3).map((offset) => Math.sign(offset) * Math.min(30, Math.abs(offset)))).toEqual([-30, 30, -30]);
      // ... and the reader saw both hosts alive on both channels throughout.
      expect(events.filter((event) => event.type === 'heartbeat.lost')).toEqual([]);
      const snapshot = observer.snapshot(new Map());
      expect(snapshot.hosts.every((host) => host.heartbeats?.management.up === true && host.heartbeats.datastore.up)).toBe(true);
    } finally {
      observer.close();
    }
  });
});

describe('leases under a stepped holder clock (judged by the reader\'s monotonic clock)', () => {
  const leaseLayout = new LabLayout(join(root, 'lease-lab'));
  const leaseManifest: LabManifest = { ...manifestFor(''), timings: { ...DEFAULT_LAB_TIMINGS, leaseMs: 600 } };
  const { tlsDirectory: _unused, ...plain } = leaseManifest;
  const reader = new AgentHost(leaseLayout, plain, 'lab-b1');
  const file = leaseLayout.lease('ds', 'ehr-1');
  const renew = (offsetMs: number) => {
    const now = Date.now() + offsetMs;
    const lease: Lease = { vm: 'ehr-1', host: 'lab-a1', instanceId: 'ehr-1.g1', epoch: 1, generation: 1, renewedAtMs: now, expiresAtMs: now + 600 };
    writeFileSync(file, JSON.stringify(lease));
  };
  const copy = { vm: 'ehr-1', instanceId: 'ehr-1.g2', generation: 2 };

  for (const offsetMs of [-30_000, 30_000]) {
    it(`a holder ${offsetMs < 0 ? '30 s behind' : '30 s ahead'} keeps its lease while it renews, and loses it one lease after it stops (no second copy, no 30 s wait)`, async () => {
      mkdirSync(dirname(file), { recursive: true });
      rmSync(file, { force: true });
      for (let beat = 0; beat < 6; beat++) {
        renew(offsetMs);
        expect(await takeLease(reader, copy)).toMatch(/holds the lease/);
        await new Promise((resolveDelay) => setTimeout(resolveDelay, 200));
      }
      // The holder stops renewing (its host died): free after one lease of the reader's own time.
      await new Promise((resolveDelay) => setTimeout(resolveDelay, 700));
      expect(await takeLease(reader, copy)).toBeNull();
      expect((await readJson<Lease>(file))?.host).toBe('lab-b1');
    });
  }
});
