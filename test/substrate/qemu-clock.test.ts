/**
 * A ±30 s clock step on one lab host, with real VMs: the lab comes up (agents over mutual TLS,
 * hosts powered on through fence_ipmilan), lab-a1's agent is restarted under libfaketime (the
 * library `faketime` preloads, stepped through a timestamp file while it runs; the monotonic clock
 * is left alone, as a real step leaves it), ehr-1 boots on lab-a1, and its clock is stepped −30 s,
 * +30 s, −30 s. Through it all: the VM is not killed (the agent keeps renewing its lease; nothing
 * self-fences), lab-b1 may not start a second writable copy (it judges the lease on its own
 * clock), and the control plane's reader loses no heartbeat. Needs root, TOMARANAI_QEMU=1, the
 * guest image and libfaketime; runs with the other real-VM tests, alone.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, shipped } from '../support/blueprints.ts';
import type { SubstrateEvent } from '../../src/ports/index.ts';
import { RealClock } from '../../src/runtime/real-clock.ts';
import { AgentClient, probeHealth } from '../../src/substrate/qemu/agent-client.ts';
import { run } from '../../src/substrate/qemu/command.ts';
import { LabLayout, type LabManifest, readJson, readToken, type Lease } from '../../src/substrate/qemu/lab.ts';
import { namespacePids } from '../../src/substrate/qemu/netns.ts';
import { LabObserver } from '../../src/substrate/qemu/observer.ts';
import { agentAnswers, agentCommand, labDown, labUp } from '../../src/substrate/qemu/power.ts';
import { QemuSubstrate } from '../../src/substrate/qemu/substrate.ts';
import { loadGuestImage } from '../../src/substrate/qemu/vm.ts';

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const ENABLED = process.env.TOMARANAI_QEMU === '1';
const image = ENABLED ? await loadGuestImage() : null;
const reason = !ENABLED
  ? 'set TOMARANAI_QEMU=1 to run it on real VMs'
  : image === null
    ? 'no guest image: run `npm run vm:image` first'
    : process.getuid?.() !== 0
      ? 'needs root'
      : !existsSync(LIBFAKETIME)
        ? 'needs libfaketime (bash scripts/ci-fencing.sh)'
        : null;

const layout = new LabLayout(join(ROOT, '.lab', 'clock-lab'));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await condition()) return true;
    await sleep(200);
  }
  return false;
}

describe.skipIf(reason !== null)(`a ±30 s clock step on one lab host${reason === null ? '' : `: skipped, ${reason}`}`, () => {
  let manifest: LabManifest;
  let client: AgentClient;
  const clockFile = join(layout.root, 'clock-step');

  beforeAll(async () => {
    manifest = await labUp({ layout, blueprint: shipped('lab'), blueprintFile: join(ROOT, 'blueprints', 'lab.yaml') });
    client = new AgentClient(manifest, await readToken(layout));
    // lab-a1's agent again, under libfaketime: it runs nothing yet, so killing it loses nothing.
    const namespace = manifest.hosts.find((host) => host.name === 'lab-a1')!.namespace;
    for (const pid of await namespacePids(namespace)) process.kill(pid, 'SIGKILL');
    await until(async () => (await namespacePids(namespace)).length === 0, 5_000);
    writeFileSync(clockFile, '+0s');
    const log = openSync(layout.agentLog('lab-a1'), 'a');
    spawn('ip', ['netns', 'exec', namespace, ...agentCommand(layout, 'lab-a1')], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...process.env, TOMARANAI_AGENT: '1', LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    }).unref();
    expect(await until(() => agentAnswers(layout, manifest, 'lab-a1'), 30_000)).toBe(true);
  });

  afterAll(async () => {
    client?.close();
    await labDown({ layout });
  });

  it('no VM is killed, no second writable copy starts, no heartbeat is lost', async () => {
    const ehr = manifest.vms.find((vm) => vm.name === 'ehr-1')!;
    const started = await client.post('lab-a1', '/vms/start', { epoch: 1, vm: 'ehr-1', instanceId: 'ehr-1.g1', generation: 1, role: 'primary' });
    expect(started).toMatchObject({ ok: true });
    expect(await until(() => probeHealth(ehr.address), 90_000)).toBe(true);

    const events: SubstrateEvent[] = [];
    const observer = new LabObserver({ layout, manifest, clock: new RealClock(), client, pollMs: 250, missedAfterMs: 750 });
    observer.subscribe((event) => events.push(event));
    await observer.open(async () => true);
    const refusals: string[] = [];
    const offsets: number[] = [];
    try {
      for (const step of ['-30s', '+30s', '-30s']) {
        writeFileSync(clockFile, step);
        await sleep(4_000);
        const lease = await readJson<Lease>(layout.lease(ehr.datastore, 'ehr-1'));
        offsets.push(Math.round(((lease?.renewedAtMs ?? Date.now()) - Date.now()) / 1000));
        // Another host asks for a writable copy of the same VM: the lease is live, whatever its times say.
        const second = await client.post('lab-b1', '/vms/start', { epoch: 1, vm: 'ehr-1', instanceId: `ehr-1.g${offsets.length + 1}`, generation: offsets.length + 1, role: 'primary' });
        refusals.push(second.ok ? 'STARTED' : second.reason);
      }
    } finally {
      observer.close();
    }
    const copies = await QemuSubstrate.copiesOf('ehr-1', layout.disk(ehr.datastore, 'ehr-1'));
    const state = await client.state('lab-a1');
    console.log(`lab-a1's lease times minus ours after each step (s): ${offsets.join(', ')}; lab-b1's starts: ${refusals.join(' | ')}; writable copies ${copies.writable}; events ${events.map((event) => event.type).join(', ') || 'none'}`);
    expect(offsets).toEqual([-30, 30, -30]);
    expect(refusals.every((answer) => /holds the lease/.test(answer))).toBe(true);
    expect(copies.writable).toBe(1);
    expect(state?.instances.map((instance) => instance.id)).toEqual(['ehr-1.g1']);
    expect(await probeHealth(ehr.address)).toBe(true);
    expect(events.filter((event) => event.type === 'heartbeat.lost' || event.type === 'instance.removed')).toEqual([]);
    const log = await run(['grep', '-c', 'self-fence', layout.agentLog('lab-a1')]).catch(() => ({ stdout: '0' }));
    expect(log.stdout.trim()).toBe('0');
  });
});
