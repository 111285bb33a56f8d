/**
 * The real thing, without VMs: Debian's fence_ipmilan (fence-agents) against OpenIPMI's ipmi_sim,
 * whose chassis program acts on a network namespace made for the test, with a dummy process in it
 * standing for the host's agent and QEMUs. Power off kills it (status answers off only once the
 * namespace is empty), power on starts one again. Needs root, ipmi_sim and fence_ipmilan
 * (`bash scripts/ci-fencing.sh`); skipped, saying why, without them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BMC_LOGIN, bmcPassword, startBmc, stopBmc, type BmcPlan } from '../../src/substrate/qemu/bmc.ts';
import { fencePowerOff, fencePowerOn, fencePowerStatus, type FenceDevice } from '../../src/substrate/qemu/fence-agent.ts';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const tools = existsSync('/usr/bin/ipmi_sim') && existsSync('/usr/sbin/fence_ipmilan');
const why = !isRoot ? 'needs root (a network namespace)' : !tools ? 'needs ipmi_sim and fence_ipmilan: bash scripts/ci-fencing.sh' : '';

const namespace = `tmrt-bmc${process.pid % 100_000}`;
const directory = mkdtempSync(join(tmpdir(), 'tmr-bmc-'));
const plan: BmcPlan = {
  host: `t${process.pid % 100_000}`,
  namespace,
  port: 17_290 + (process.pid % 50),
  login: BMC_LOGIN,
  password: bmcPassword(),
  directory: join(directory, 'bmc'),
  powerFile: join(directory, 'power'),
  bootCommand: ['sleep', '300'],
  bootLog: join(directory, 'boot.log'),
};
const device: FenceDevice = {
  host: plan.host,
  agent: 'fence_ipmilan',
  program: '/usr/sbin/fence_ipmilan',
  timeoutMs: 20_000,
  options: { ip: '127.0.0.1', ipport: String(plan.port), username: plan.login, password: plan.password, lanplus: '1', cipher: '3', power_wait: '0' },
};
const pids = () => execFileSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8' }).trim().split('\n').filter((line) => line !== '');

describe.skipIf(why !== '')(`fence_ipmilan against ipmi_sim (a real IPMI BMC emulator)${why === '' ? '' : `: skipped, ${why}`}`, () => {
  beforeAll(async () => {
    execFileSync('ip', ['netns', 'add', namespace]);
    writeFileSync(plan.powerFile, 'on');
    spawn('ip', ['netns', 'exec', namespace, 'sleep', '300'], { detached: true, stdio: 'ignore' }).unref();
    await startBmc(plan);
  });
  afterAll(async () => {
    await stopBmc(plan.directory);
    for (const pid of existsSync(`/run/netns/${namespace}`) ? pids() : []) process.kill(Number(pid), 'SIGKILL');
    execFileSync('ip', ['netns', 'del', namespace]);
    rmSync(directory, { recursive: true, force: true });
  });

  it('status, off (the namespace emptied), status, on (the host boots again), status: a round trip over IPMI 2.0', async () => {
    expect(pids().length).toBe(1);
    expect((await fencePowerStatus(device)).state).toBe('on');

    const off = await fencePowerOff(device);
    console.log(`fence_ipmilan → ipmi_sim: ${off.detail}`);
    expect(off.ok).toBe(true);
    expect(off.calls.map((call) => call.exitCode)).toEqual([0, 2]);
    expect(pids()).toEqual([]);
    expect(readFileSync(plan.powerFile, 'utf8')).toBe('off');
    expect((await fencePowerStatus(device)).state).toBe('off');

    const on = await fencePowerOn(device);
    console.log(`fence_ipmilan → ipmi_sim: ${on.detail}`);
    expect(on.ok).toBe(true);
    expect(readFileSync(plan.powerFile, 'utf8')).toBe('on');
    expect(pids().length).toBe(1);
    expect((await fencePowerStatus(device)).state).toBe('on');
    expect(readFileSync(join(plan.directory, 'chassis.log'), 'utf8')).toMatch(/set power 0[\s\S]*set power 1/);
  });

  it('a wrong password is a failed fence, not a confirmed one', async () => {
    const result = await fencePowerOff({ ...device, options: { ...device.options, password: 'wrong' } }, { attempts: 1, backoffMs: 0 });
    expect(result.ok).toBe(false);
    expect(result.calls[0]!.exitCode).not.toBe(0);
    expect(pids().length).toBe(1);
  });
});
