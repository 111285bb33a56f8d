/** Starting the service and the twin as real processes (so they can be killed with SIGKILL). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url));
export const SMALL_BLUEPRINT = fileURLToPath(new URL('../api/small-hospital.yaml', import.meta.url));

export interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `tomaranai …args` and resolves once `pattern` appears in its output (its URL in group 1). */
export function spawnCli(args: readonly string[], pattern: RegExp, timeoutMs = 20_000): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tomaranai ${args.join(' ')} did not start within ${timeoutMs} ms:\n${output.slice(-2000)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = pattern.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({
          process: child,
          url: match[1]!,
          output: () => output,
          kill: (signal = 'SIGTERM') =>
            new Promise((done) => {
              if (child.exitCode !== null || child.signalCode !== null) return done();
              child.once('exit', () => done());
              child.kill(signal);
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tomaranai ${args.join(' ')} exited with ${code}:\n${output.slice(-2000)}`));
    });
  });
}

export function startTwin(speed: number): Promise<Child> {
  return spawnCli(['twin', 'serve', '--blueprint', SMALL_BLUEPRINT, '--port', '0', '--speed', String(speed)], /serving on (http:\/\/[^\s]+)/);
}

/**
 * Where the instances of one test run keep the audit key (shared, as the docs say instances on one
 * PostgreSQL should) and their checkpoints: a temporary folder, never the checkout.
 */
const AUDIT_DIR = mkdtempSync(join(tmpdir(), 'tomaranai-audit-'));

export function startServe(options: { db: string; twinUrl: string; speed: number; instanceId: string; leaseMs?: number }): Promise<Child> {
  const audit = ['--audit-key', join(AUDIT_DIR, 'audit-key'), '--checkpoints', join(AUDIT_DIR, `${options.instanceId}.checkpoints.jsonl`)];
  return spawnCli(
    ['serve', '--db', options.db, '--substrate', options.twinUrl, '--blueprint', SMALL_BLUEPRINT, '--port', '0', '--speed', String(options.speed), '--instance-id', options.instanceId, '--lease-ms', String(options.leaseMs ?? 3000), ...audit],
    /tomaranai serving on (http:\/\/[^\s]+)/,
  );
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let value: T | null | undefined | false = null;
    try {
      value = await probe();
    } catch {
      value = null;
    }
    if (value !== null && value !== undefined && value !== false) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
