/**
 * Power fencing through the fence-agents convention, against small fake agents written here: a
 * good one, one that hangs (and leaves a child behind), one that fails, one that lies ("on" from
 * status after "off"), and a flaky one. Each reads key=value lines on stdin, as fence_ipmilan does.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fenceAgentInput, fencePowerOff, fencePowerOn, fencePowerStatus, type FenceDevice } from '../../src/substrate/qemu/fence-agent.ts';
import { devicesFor, parseFencingConfig } from '../../src/substrate/qemu/fence-config.ts';
import { TomaranaiError } from '../../src/errors/index.ts';

const directory = mkdtempSync(join(tmpdir(), 'tmr-fence-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

/** Reads stdin as fence agents do: the action and a state file; logs every call with its options. */
const READ_STDIN = `action=""; state=""; input=""; while IFS= read -r line; do case "$line" in action=*) action="\${line#action=}";; state_file=*) state="\${line#state_file=}";; esac; input="$input$line;"; done; echo "$input" >> "$state.input"; echo "$action" >> "$state.calls"`;

function agent(name: string, body: string): string {
  const file = join(directory, name);
  writeFileSync(file, `#!/bin/bash\n${READ_STDIN}\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const good = agent('fence_good', `case "$action" in off) echo off > "$state"; echo "Success: Powered OFF";; on) echo on > "$state";; status) [ "$(cat "$state" 2>/dev/null)" = off ] && { echo "Status: OFF"; exit 2; }; echo "Status: ON"; exit 0;; esac`);
const hanging = agent('fence_hang', `sleep 300 & echo $! > "$state.child"; wait`);
const failing = agent('fence_fail', `echo "Failed: Unable to connect/login to fencing device" >&2; exit 1`);
const lying = agent('fence_lie', `case "$action" in off) echo "Success: Powered OFF"; exit 0;; status) echo "Status: ON"; exit 0;; esac`);
const flaky = agent('fence_flaky', `n=$(grep -c . "$state.calls"); if [ "$n" -le 1 ]; then exit 1; fi; case "$action" in off) echo off > "$state";; status) [ "$(cat "$state")" = off ] && exit 2; exit 0;; esac`);

function device(program: string, name: string, timeoutMs = 5_000): FenceDevice {
  return { host: 'lab-a1', agent: name, program, timeoutMs, options: { ip: '127.0.0.1', username: 'admin', password: 's3cret', state_file: join(directory, `${name}.state`) } };
}

const calls = (name: string) => readFileSync(join(directory, `${name}.state.calls`), 'utf8').trim().split('\n');

describe('fence agents (the fence-agents calling convention)', () => {
  it('passes options as key=value lines on stdin, the action last, and refuses a line break in a value', () => {
    expect(fenceAgentInput({ ip: '10.0.0.1', password: 'p' }, 'off')).toBe('ip=10.0.0.1\npassword=p\naction=off\n');
    expect(() => fenceAgentInput({ password: 'p\naction=on' }, 'off')).toThrow(/line break/);
  });

  it('a good agent: off, then status confirms off (exit 2); the journal detail names the agent, exit statuses and times', async () => {
    const result = await fencePowerOff(device(good, 'fence_good'));
    expect(result.ok).toBe(true);
    expect(result.calls.map((call) => [call.action, call.exitCode])).toEqual([['off', 0], ['status', 2]]);
    expect(result.detail).toMatch(/^power off through fence_good: off exit 0 in \d+\.\d\d s, status exit 2 \(off\) in \d+\.\d\d s$/);
    expect((await fencePowerStatus(device(good, 'fence_good'))).state).toBe('off');
    expect((await fencePowerOn(device(good, 'fence_good'))).ok).toBe(true);
    expect((await fencePowerStatus(device(good, 'fence_good'))).state).toBe('on');
    // The password went in on stdin, never on a command line.
    expect(readFileSync(join(directory, 'fence_good.state.input'), 'utf8')).toContain('password=s3cret');
  });

  it('a hanging agent is killed with its process group at the deadline, retried, and the fence fails', async () => {
    const started = Date.now();
    const result = await fencePowerOff(device(hanging, 'fence_hang', 300), { attempts: 2, backoffMs: 50 });
    expect(result.ok).toBe(false);
    expect(result.calls).toHaveLength(2);
    expect(result.calls.every((call) => call.timedOut && call.exitCode === null)).toBe(true);
    expect(result.detail).toMatch(/off timed out after 0\.\d\d s \(process group killed\)/);
    expect(Date.now() - started).toBeLessThan(3_000);
    // The child it started (an ipmitool, say) died with it.
    const child = Number(readFileSync(join(directory, 'fence_hang.state.child'), 'utf8'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z')).toBe(false);
  });

  it('a failing agent (non-zero exit) is retried with backoff, then the fence fails naming its exit status and output', async () => {
    const started = Date.now();
    const result = await fencePowerOff(device(failing, 'fence_fail'), { attempts: 3, backoffMs: 100 });
    expect(result.ok).toBe(false);
    expect(calls('fence_fail')).toEqual(['off', 'off', 'off']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300); // 100 + 200 ms of backoff
    expect(result.detail).toMatch(/fence_fail failed after 3 attempts: off did not succeed \(off exit 1 in .*Unable to connect/);
  });

  it('a lying agent ("on" from status after a successful off) never confirms a fence', async () => {
    const result = await fencePowerOff(device(lying, 'fence_lie'), { attempts: 2, backoffMs: 10 });
    expect(result.ok).toBe(false);
    expect(calls('fence_lie')).toEqual(['off', 'status', 'off', 'status']);
    expect(result.detail).toMatch(/the device still reports power on after off/);
  });

  it('a flaky agent that fails once is confirmed on the retry', async () => {
    const result = await fencePowerOff(device(flaky, 'fence_flaky'), { attempts: 3, backoffMs: 10 });
    expect(result.ok).toBe(true);
    expect(result.calls.map((call) => [call.action, call.exitCode])).toEqual([['off', 1], ['off', 0], ['status', 2]]);
  });

  it('a program that does not exist is a failed call, not a throw', async () => {
    const result = await fencePowerOff(device(join(directory, 'fence_absent'), 'fence_absent'), { attempts: 1, backoffMs: 0 });
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/failed to run/);
  });
});

describe('the fencing file (outside the blueprint)', () => {
  const credentials = join(directory, 'a1.password');
  writeFileSync(credentials, 'bmc-secret\n', { mode: 0o600 });
  const yaml = (hosts: string) => `version: 1\nagentDirectory: ${directory}\nhosts:\n${hosts}`;

  it('reads a device per host: address, port, login and the password from the credentials file', () => {
    const config = parseFencingConfig(
      yaml(`  lab-a1:\n    agent: fence_good\n    address: 127.0.0.1\n    port: 17231\n    login: admin\n    credentialsFile: ${credentials}\n    timeoutS: 5\n    options: { lanplus: "1", cipher: "3" }\n`),
      join(directory, 'fencing.yaml'),
    );
    const device = config.devices.get('lab-a1')!;
    expect(device.program).toBe(good);
    expect(device.timeoutMs).toBe(5_000);
    expect(device.options).toEqual({ ip: '127.0.0.1', ipport: '17231', username: 'admin', password: 'bmc-secret', lanplus: '1', cipher: '3' });
    expect(() => devicesFor(config, ['lab-a1', 'lab-b1'])).toThrow(/names no fence device for lab-b1/);
  });

  it('collects every problem, each with its field, under one code', () => {
    try {
      parseFencingConfig(yaml(`  lab-a1:\n    agent: ipmilan\n    address: 127.0.0.1\n    login: admin\n    credentialsFile: x\n    options: { password: "p" }\n    color: red\n`), 'fencing.yaml');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TomaranaiError);
      const problem = error as TomaranaiError;
      expect(problem.code).toBe('TMR_FENCE_CONFIG_INVALID');
      expect(problem.issues?.map((issue) => issue.path).sort()).toEqual(['hosts.lab-a1', 'hosts.lab-a1.agent', 'hosts.lab-a1.options.password'].sort());
    }
  });

  it('refuses a credentials file others can read, and an agent that is not installed', () => {
    const open = join(directory, 'open.password');
    writeFileSync(open, 'x\n', { mode: 0o644 });
    chmodSync(open, 0o644);
    const device = (agentName: string, file: string) => yaml(`  lab-a1:\n    agent: ${agentName}\n    address: 127.0.0.1\n    login: admin\n    credentialsFile: ${file}\n`);
    expect(() => parseFencingConfig(device('fence_good', open), 'f.yaml')).toThrow(expect.objectContaining({ code: 'TMR_FENCE_CREDENTIALS' }));
    expect(() => parseFencingConfig(device('fence_good', join(directory, 'none')), 'f.yaml')).toThrow(expect.objectContaining({ code: 'TMR_FENCE_CREDENTIALS' }));
    expect(() => parseFencingConfig(device('fence_nothere', credentials), 'f.yaml')).toThrow(expect.objectContaining({ code: 'TMR_FENCE_AGENT_NOT_FOUND' }));
  });
});
