/**
 * The lab's baseboard management controllers: one real IPMI BMC emulator per host (OpenIPMI's
 * `ipmi_sim`, Debian package `openipmi`), out of band in the root namespace on 127.0.0.1 with a
 * port of its own, so that Tomaranai fences the lab's hosts exactly as it would fence a hospital's
 * servers: through `fence_ipmilan` over IPMI 2.0 (lanplus), with a login and a password.
 *
 * ipmi_sim hands chassis power commands to a `chassis_control` program (`<mc> get power`,
 * `<mc> set power 0|1`). Ours acts on the host's network namespace as the simulated power
 * controller does (power.ts): power off writes "off" to the host's power file and SIGKILLs every
 * process in the namespace (the agent and its QEMUs, nothing flushed); power on writes "on" and
 * starts the host's agent. `get power` answers "on" while any process is left in the namespace, so
 * a fence agent's status says "off" only once nothing runs there.
 *
 * Each ipmi_sim is started through a symbolic link named `tmr-bmc-<host>`: its process is named
 * with the lab's prefix, and `lab down` (teardownLab) removes it with everything else.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from './lab.ts';

/** The first BMC's UDP port on 127.0.0.1; host i listens on BMC_PORT_BASE + i. */
export const BMC_PORT_BASE = 17230;
export const BMC_LOGIN = 'tomaranai';
/** The IPMI management controller address of the emulated BMC. */
const BMC_MC = '0x20';
const BMC_READY_TIMEOUT_MS = 5_000;

export interface BmcPlan {
  readonly host: string;
  /** The network namespace whose processes are the host's "power". */
  readonly namespace: string;
  readonly port: number;
  readonly login: string;
  /** At most 20 characters (an IPMI 2.0 password). */
  readonly password: string;
  /** Where the BMC's configuration, chassis program, state and log live. */
  readonly directory: string;
  /** The power file the chassis program keeps ("on" or "off"), shared with the power controller. */
  readonly powerFile: string;
  /** The command that boots the host (its agent), started detached in the namespace; empty: none. */
  readonly bootCommand: readonly string[];
  /** Where the booted command's output goes. */
  readonly bootLog: string;
}

/** A fresh password for a lab BMC: 16 hex characters (IPMI 2.0 allows 20). */
export function bmcPassword(): string {
  return randomBytes(8).toString('hex');
}

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/** ipmi_sim's configuration (lan.conf): one LAN channel on 127.0.0.1, one admin user, our chassis program. */
export function bmcLanConf(plan: BmcPlan): string {
  if (!/^[A-Za-z0-9._-]{1,16}$/.test(plan.login) || !/^[A-Za-z0-9._-]{1,20}$/.test(plan.password)) {
    throw new Error('a lab BMC login is at most 16 and its password at most 20 letters, digits, ".", "_" or "-"');
  }
  return [
    `# The IPMI BMC of lab host ${plan.host} (written by tomaranai lab up)`,
    `name "${plan.namespace}"`,
    `set_working_mc ${BMC_MC}`,
    '  startlan 1',
    `    addr 127.0.0.1 ${plan.port}`,
    '    priv_limit admin',
    '    allowed_auths_callback md5',
    '    allowed_auths_user md5',
    '    allowed_auths_operator md5',
    '    allowed_auths_admin md5',
    '    guid a123456789abcdefa123456789abcdef',
    '  endlan',
    `  chassis_control "${join(plan.directory, 'chassis')} ${BMC_MC}"`,
    `  user 2 true "${plan.login}" "${plan.password}" admin 10 md5`,
    '',
  ].join('\n');
}

/** ipmi_sim's start-up commands: a BMC management controller with a power-capable chassis. */
export function bmcCommands(): string {
  return [`mc_setbmc ${BMC_MC}`, `mc_add ${BMC_MC} 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr`, `sel_enable ${BMC_MC} 1000 0x0a`, `mc_enable ${BMC_MC}`, ''].join('\n');
}

/**
 * The chassis program ipmi_sim runs for power commands. `set power 0` is the power cut; it waits
 * up to 2 s for the namespace to empty (the fence agent's status polls until it does).
 */
export function bmcChassisScript(plan: BmcPlan): string {
  const boot = plan.bootCommand.length === 0 ? ':' : `setsid -f ip netns exec ${quote(plan.namespace)} ${plan.bootCommand.map(quote).join(' ')} >>${quote(plan.bootLog)} 2>&1 </dev/null`;
  return `#!/bin/bash
# The chassis of lab host ${plan.host}: ipmi_sim calls it as "MC get power" or "MC set power 0|1".
ns=${quote(plan.namespace)}
power=${quote(plan.powerFile)}
alive() { [ -n "$(ip netns pids "$ns" 2>/dev/null)" ]; }
write_power() { printf '%s' "$1" > "$power.$$.tmp" && mv -f "$power.$$.tmp" "$power"; }
echo "$(date +%s.%3N) $*" >> ${quote(join(plan.directory, 'chassis.log'))}
op="$2"; shift 2
while [ $# -gt 0 ]; do
  parm="$1"; shift
  case "$op:$parm" in
    get:power) if [ "$(cat "$power" 2>/dev/null)" = on ] || alive; then echo power:1; else echo power:0; fi ;;
    get:*) echo "$parm:0" ;;
    set:power)
      value="$1"; shift
      if [ "$value" = 0 ]; then
        write_power off
        for _ in $(seq 100); do
          pids=$(ip netns pids "$ns" 2>/dev/null)
          [ -z "$pids" ] && break
          kill -9 $pids 2>/dev/null
          sleep 0.02
        done
      else
        write_power on
        alive || ${boot}
      fi ;;
    set:*) shift ;;
  esac
done
exit 0
`;
}

/** Writes a BMC's files and starts its ipmi_sim; resolves with its pid once it listens. */
export async function startBmc(plan: BmcPlan): Promise<number> {
  await rm(plan.directory, { recursive: true, force: true });
  await mkdir(join(plan.directory, 'state'), { recursive: true, mode: 0o700 });
  await writeAtomic(join(plan.directory, 'lan.conf'), bmcLanConf(plan), 0o600);
  await writeAtomic(join(plan.directory, 'bmc.emu'), bmcCommands());
  await writeAtomic(join(plan.directory, 'chassis'), bmcChassisScript(plan), 0o700);
  await chmod(join(plan.directory, 'chassis'), 0o700);
  // A link with the lab's prefix names the process, so teardown finds it.
  const link = join(plan.directory, `tmr-bmc-${plan.host}`);
  await symlink('/usr/bin/ipmi_sim', link);
  const log = openSync(join(plan.directory, 'ipmi_sim.log'), 'a');
  let pid: number | undefined;
  try {
    const child = spawn(link, ['-c', join(plan.directory, 'lan.conf'), '-f', join(plan.directory, 'bmc.emu'), '-s', join(plan.directory, 'state'), '-n'], { detached: true, stdio: ['ignore', log, log] });
    child.unref();
    pid = child.pid;
  } finally {
    closeSync(log);
  }
  if (pid === undefined) throw new Error(`the BMC of ${plan.host} did not start (see ${join(plan.directory, 'ipmi_sim.log')})`);
  await waitForUdpListener(plan.port, pid);
  await writeAtomic(join(plan.directory, 'ipmi_sim.pid'), String(pid));
  return pid;
}

async function waitForUdpListener(port: number, pid: number): Promise<void> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const started = performance.now();
  while (performance.now() - started < BMC_READY_TIMEOUT_MS) {
    const table = await readFile('/proc/net/udp', 'utf8').catch(() => '');
    if (table.split('\n').some((line) => line.trim().split(/\s+/)[1] === `0100007F:${hexPort}`)) return;
    try {
      process.kill(pid, 0);
    } catch {
      throw new Error(`ipmi_sim for port ${port} exited at start`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`ipmi_sim did not listen on 127.0.0.1:${port} within ${BMC_READY_TIMEOUT_MS / 1000} s`);
}

/** Stops a BMC started by startBmc (by its recorded pid). */
export async function stopBmc(directory: string): Promise<void> {
  const pid = Number((await readFile(join(directory, 'ipmi_sim.pid'), 'utf8').catch(() => '')).trim());
  if (Number.isInteger(pid) && pid > 1) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}
