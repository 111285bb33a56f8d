/**
 * Power fencing through the fence-agents calling convention: the `fence_*` programs Pacemaker and
 * oVirt use (`fence_ipmilan`, `fence_redfish`, …, Debian package `fence-agents`). A program reads
 * its options as `key=value` lines on standard input (`action=off`, `ip=…`, `username=…`,
 * `password=…`): the password never appears on a command line. Its exit status is the answer: 0
 * is success (for `status`: the power is on), 2 is "off" (for `status`), anything else a failure.
 *
 * Nothing here trusts the agent more than it must:
 * - every call has a deadline; a program that hangs is killed with its whole process group (it
 *   runs in a group of its own, so an `ipmitool` it started dies with it);
 * - an `off` is confirmed only by a separate `status` call answering "off" (exit 2): an agent
 *   that says "done" but whose device still reports "on" has not fenced anything;
 * - failures are retried a bounded number of times with a growing pause, and each call is kept
 *   (action, exit status, signal, whether it timed out, how long it took) for the journal.
 * A fence that is not confirmed is reported as failed: the caller must not restart anything the
 * host ran on the strength of it.
 */
import { spawn } from 'node:child_process';

/** The exit status by which a fence agent's `status` action answers "off". */
export const FENCE_STATUS_OFF = 2;
/** The exit status by which a fence agent's `status` action answers "on" (and any action "done"). */
export const FENCE_SUCCESS = 0;
/** Output kept per call, for the journal: enough for an error message, never a flood. */
const OUTPUT_LIMIT_CHARS = 2_000;

export type FenceAction = 'off' | 'on' | 'status';

/** One host's power-fencing device, as the fencing configuration names it (fence-config.ts). */
export interface FenceDevice {
  readonly host: string;
  /** The agent's name, e.g. `fence_ipmilan`. */
  readonly agent: string;
  /** The program to run (the agent's absolute path). */
  readonly program: string;
  /** Every `key=value` the agent reads on stdin, credentials included (never logged). */
  readonly options: Readonly<Record<string, string>>;
  /** The deadline of one call; the agent's process group is killed after it. */
  readonly timeoutMs: number;
}

export interface FenceRetryPolicy {
  /** How many times an `off` (with its `status` check) is tried before the fence is declared failed. */
  readonly attempts: number;
  /** Pause after the first failed attempt; doubled after each further one. */
  readonly backoffMs: number;
}

export const DEFAULT_FENCE_RETRY: FenceRetryPolicy = Object.freeze({ attempts: 3, backoffMs: 250 });

/** One run of a fence agent, as the journal records it. */
export interface FenceCall {
  readonly action: FenceAction;
  /** The exit status, or null when the program was killed (a timeout) or could not start. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  /** The last lines the program printed (stdout and stderr), for the message of a failure. */
  readonly output: string;
}

export interface FenceResult {
  readonly ok: boolean;
  readonly agent: string;
  readonly calls: readonly FenceCall[];
  readonly durationMs: number;
  /** One sentence: what happened, with the agent's name, exit statuses and times. */
  readonly detail: string;
}

/** The stdin of a fence agent: one `key=value` line per option, the action last. */
export function fenceAgentInput(options: Readonly<Record<string, string>>, action: FenceAction): string {
  const lines = Object.entries(options)
    .filter(([key]) => key !== 'action')
    .map(([key, value]) => {
      if (/[\n\r]/.test(key) || /[\n\r]/.test(value)) throw new Error(`fence option ${key} holds a line break`);
      return `${key}=${value}`;
    });
  return `${[...lines, `action=${action}`].join('\n')}\n`;
}

/** Runs a fence agent once; never throws: a program that cannot start is a failed call. */
export function runFenceAgent(device: FenceDevice, action: FenceAction): Promise<FenceCall> {
  const started = performance.now();
  return new Promise((resolve) => {
    let output = '';
    let timedOut = false;
    let settled = false;
    const finish = (exitCode: number | null, signal: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ action, exitCode, signal, timedOut, durationMs: Math.round(performance.now() - started), output: lastLines(output) });
    };
    // A group of its own: a timeout kills the agent and whatever it started (ipmitool, curl, ssh).
    const child = spawn(device.program, [], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT_CHARS);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.stdin.on('error', () => undefined);
    child.on('error', (error) => {
      output += `cannot run ${device.program}: ${error.message}`;
      finish(null, null);
    });
    child.on('exit', (code, signal) => finish(code, signal));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
      // A child that ignores even SIGKILL (stuck in the kernel) is not waited for.
      setTimeout(() => finish(null, 'SIGKILL'), 1_000).unref();
    }, device.timeoutMs);
    child.stdin.end(fenceAgentInput(device.options, action));
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

function lastLines(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/DeprecationWarning|from pipes import/.test(line))
    .slice(-3)
    .join(' | ');
}

/** How a call reads in the journal: `off exit 0 in 0.34 s`, `status timed out after 5.0 s (killed)`. */
export function describeCall(call: FenceCall): string {
  const seconds = `${(call.durationMs / 1000).toFixed(2)} s`;
  if (call.timedOut) return `${call.action} timed out after ${seconds} (process group killed)`;
  if (call.exitCode === null) return `${call.action} failed to run in ${seconds}${call.output === '' ? '' : `: ${call.output}`}`;
  const meaning = call.action === 'status' ? (call.exitCode === FENCE_SUCCESS ? ' (on)' : call.exitCode === FENCE_STATUS_OFF ? ' (off)' : ' (error)') : '';
  return `${call.action} exit ${call.exitCode}${meaning} in ${seconds}`;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Powers a host off through its fence agent and confirms it: `off`, then `status` must answer
 * "off". Retried per `policy`; an agent that hangs, fails or answers "on" after "off" on every
 * attempt leaves the fence failed (`ok: false`), with every call in `calls`.
 */
export async function fencePowerOff(device: FenceDevice, policy: FenceRetryPolicy = DEFAULT_FENCE_RETRY, stopped: () => boolean = () => false): Promise<FenceResult> {
  const started = performance.now();
  const calls: FenceCall[] = [];
  let why = 'not tried';
  for (let attempt = 1; attempt <= Math.max(1, policy.attempts); attempt++) {
    if (attempt > 1) {
      if (stopped()) break;
      await delay(policy.backoffMs * 2 ** (attempt - 2));
    }
    const off = await runFenceAgent(device, 'off');
    calls.push(off);
    if (off.exitCode !== FENCE_SUCCESS) {
      why = `off did not succeed (${describeCall(off)}${off.output === '' || off.timedOut ? '' : `: ${off.output}`})`;
      continue;
    }
    const status = await runFenceAgent(device, 'status');
    calls.push(status);
    if (status.exitCode === FENCE_STATUS_OFF) {
      return { ok: true, agent: device.agent, calls, durationMs: Math.round(performance.now() - started), detail: `power off through ${device.agent}: ${calls.map(describeCall).join(', ')}` };
    }
    why = status.exitCode === FENCE_SUCCESS ? 'the device still reports power on after off' : `status did not confirm (${describeCall(status)})`;
  }
  return {
    ok: false,
    agent: device.agent,
    calls,
    durationMs: Math.round(performance.now() - started),
    detail: `power fence through ${device.agent} failed after ${calls.filter((call) => call.action === 'off').length} attempts: ${why}; calls: ${calls.map(describeCall).join(', ')}`,
  };
}

/** Powers a host on through its fence agent (one call, with the device's deadline). */
export async function fencePowerOn(device: FenceDevice): Promise<FenceResult> {
  const call = await runFenceAgent(device, 'on');
  const ok = call.exitCode === FENCE_SUCCESS;
  return { ok, agent: device.agent, calls: [call], durationMs: call.durationMs, detail: `power on through ${device.agent}: ${describeCall(call)}${ok || call.output === '' ? '' : `: ${call.output}`}` };
}

/** The power state the device reports: 'on', 'off', or null when the agent could not tell. */
export async function fencePowerStatus(device: FenceDevice): Promise<{ state: 'on' | 'off' | null; call: FenceCall }> {
  const call = await runFenceAgent(device, 'status');
  const state = call.exitCode === FENCE_SUCCESS ? 'on' : call.exitCode === FENCE_STATUS_OFF ? 'off' : null;
  return { state, call };
}
