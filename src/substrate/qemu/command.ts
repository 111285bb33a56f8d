/**
 * Runs the host's tools (ip, nft, qemu-img, qemu-system-x86_64) for the qemu substrate: always
 * with an argument vector (never a shell), always with a timeout, and an error that carries the
 * command and its stderr so a failed step says what failed.
 */
import { execFile } from 'node:child_process';

export const COMMAND_TIMEOUT_MS = 30_000;

export class CommandError extends Error {
  // A stable TMR_ code joins the registry (docs/errors.md) when the substrate is wired in.
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command.join(' ')} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
}

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` and resolves with its output; rejects with a CommandError on a non-zero exit. */
export function run(command: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.reject(new Error('run: empty command'));
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: options.timeoutMs ?? COMMAND_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) {
        const exitCode = typeof error.code === 'number' ? error.code : null;
        reject(new CommandError(command, exitCode, `${stderr}${error.killed ? ' (timed out)' : ''}${typeof error.code === 'string' ? ` ${error.code}` : ''}`));
        return;
      }
      resolve({ stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like `run`, but a failure resolves to null: for probes and best-effort teardown. */
export async function tryRun(command: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<CommandResult | null> {
  try {
    return await run(command, options);
  } catch {
    return null;
  }
}

/** Whether an executable is on the PATH. */
export async function hasCommand(name: string): Promise<boolean> {
  return (await tryRun(['sh', '-c', `command -v ${JSON.stringify(name)}`], { timeoutMs: 5_000 })) !== null;
}
