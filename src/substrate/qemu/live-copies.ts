/**
 * A check from outside the control plane, for drills and tests: the live QEMU processes of a VM on
 * this machine, found by process name and their open files in /proc — not the controller's source
 * of truth, but what it must agree with (one writable copy per VM).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { tryRun } from './command.ts';

export interface LiveCopies {
  /** Copies that hold the VM's disk open. */
  readonly writable: number;
  /** Copies that do not: a hot standby before promotion, or a QEMU that has not opened its disk yet. */
  readonly standby: number;
  readonly pids: number[];
}

/**
 * The live copies of `vm` whose writable disk is `disk`. A process already exiting (SIGKILLed, its
 * memory being freed) runs no guest code and is not counted; while the VM is `migrating`, the
 * target QEMU (started with -incoming) holds the disk inactive until the source has stopped —
 * QEMU's own handover, not a second copy — and is not counted either.
 */
export async function liveCopies(vm: string, disk: string, options: { migrating?: boolean } = {}): Promise<LiveCopies> {
  const result = await tryRun(['pgrep', '-x', `tmr-${vm}`.slice(0, 15)], { timeoutMs: 5_000 });
  const pids = result === null ? [] : result.stdout.split('\n').filter((line) => line.trim() !== '').map(Number);
  let writable = 0;
  let standby = 0;
  const live: number[] = [];
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const exiting = (Number(fields[6]) & 0x4) !== 0;
    if (exiting || fields[0] === 'Z' || fields[0] === 'X') continue;
    if (options.migrating === true && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').includes('-incoming')) continue;
    live.push(pid);
    if (await holdsFile(pid, disk)) writable++;
    else standby++;
  }
  return { writable, standby, pids: live };
}

async function holdsFile(pid: number, file: string): Promise<boolean> {
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
  }
  return false;
}
