/**
 * The service commands of the `tomaranai` CLI: serve, user add, token create, audit verify,
 * audit export, twin serve. main.ts registers them with `registerServiceCommands`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { AccountError } from '../service/auth/accounts.ts';
import { verifyChain } from '../journal/chain.ts';
import { loadBlueprint } from '../model/index.ts';
import { createSigner, exportAudit, newSigningKeyPem } from '../service/audit.ts';
import { startService, ServiceError } from '../api/server.ts';
import { openStorage, StorageError, type Storage } from '../service/storage.ts';
import { buildTwinServer } from '../service/twin-process.ts';
import { Twin, type Fault } from '../substrate/twin/twin.ts';
import { ensureDashboard } from '../api/plugins/web.ts';
import type { RunningService } from '../api/server.ts';
import { spawn } from 'node:child_process';
import { parseNotifyConfig } from '../notify/index.ts';

export interface ServiceIo {
  out(text: string): void;
  err(text: string): void;
}

const REFERENCE_BLUEPRINT = new URL('../../blueprints/university-hospital.yaml', import.meta.url).pathname;
const DEFAULT_DB = 'sqlite:./tomaranai.db';
const DEMO_USER = 'demo';
const DEMO_SPEED = 10;

function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port from 0 to 65535');
  return Number(value);
}

function parsePositive(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0 || number > 1_000_000) throw new InvalidArgumentError('a positive number');
  return number;
}

function parseNonNegative(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1440) throw new InvalidArgumentError('a number of minutes from 0 to 1440');
  return number;
}

function parseTime(value: string): number {
  if (/^\d{1,16}$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('an ISO 8601 time (2026-01-31T00:00:00Z) or Unix milliseconds');
  return ms;
}

function readSource(file: string): string {
  return readFileSync(file, 'utf8');
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

async function withStorage<T>(db: string, work: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage(db, { instanceId: 'cli' });
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}

function reportError(io: ServiceIo, setExitCode: (code: number) => void, error: unknown): void {
  if (error instanceof AccountError || error instanceof StorageError || error instanceof ServiceError) {
    io.err(`${error.code}: ${error.message} (${error.hint})\n`);
    setExitCode(1);
    return;
  }
  throw error;
}

export function registerServiceCommands(program: Command, io: ServiceIo, setExitCode: (code: number) => void): void {
  program
    .command('serve')
    .description('run the control plane: API, event stream, metrics; the controller acts while this instance leads')
    .option('--db <url>', 'sqlite:PATH (embedded, one instance) or postgres://… (shared, several instances)', DEFAULT_DB)
    .option('--substrate <name>', 'twin (in-process) or the http:// URL of `tomaranai twin serve`', 'twin')
    .option('--blueprint <file>', 'blueprint YAML (the journal keeps later applied versions)', REFERENCE_BLUEPRINT)
    .option('--port <n>', 'HTTP port', parsePort, 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--speed <x>', 'clock speed for the in-process twin and the controller (1 = real time)', parsePositive, 1)
    .option('--seed <n>', 'seed of the in-process twin', (value) => Number(value), 1)
    .option('--instance-id <id>', 'name of this instance (leader election, metrics)')
    .option('--lease-ms <ms>', 'leader lease (PostgreSQL)', parsePositive, 3000)
    .option('--demo', 'demo mode (npm start): an in-memory database, a demo admin printed once, the twin at 10x and a scripted incident every few minutes')
    .option('--incident-every <minutes>', 'demo mode: minutes between scripted host failures (0: none)', parseNonNegative, 3)
    .option('--no-open', 'demo mode: do not open a browser on the dashboard')
    .option('--notify <file>', 'notification receivers and routes, YAML (docs/alerts.md); the leader delivers them')
    .action(async (options: { db: string; substrate: string; blueprint: string; port: number; host: string; speed: number; seed: number; instanceId?: string; leaseMs: number; demo?: boolean; incidentEvery: number; open: boolean; notify?: string }, command: Command) => {
      try {
        const demo = options.demo === true;
        if (demo && options.substrate !== 'twin') {
          io.err('--demo runs on the in-process twin; drop --substrate\n');
          setExitCode(2);
          return;
        }
        // The dashboard is built from src/web on first start (or when its sources changed).
        await ensureDashboard((line) => io.err(line));
        const explicit = (name: string) => command.getOptionValueSource(name) === 'cli';
        const service = await startService({
          db: demo && !explicit('db') ? 'sqlite::memory:' : options.db,
          substrate: options.substrate,
          blueprintSource: readSource(options.blueprint),
          port: options.port,
          host: options.host,
          speed: demo && !explicit('speed') ? DEMO_SPEED : options.speed,
          seed: options.seed,
          leaseMs: options.leaseMs,
          ...(demo ? { logger: { level: 'warn' } } : {}),
          ...(options.instanceId ? { instanceId: options.instanceId } : {}),
          ...(options.notify ? { notify: parseNotifyConfig(readSource(options.notify), options.notify) } : {}),
        });
        io.err(`tomaranai serving on ${service.url} (${service.storage.kind}, ${service.substrate.name}); Ctrl-C stops it gracefully\n`);
        let stopIncidents = () => {};
        if (demo) {
          // Only demo mode makes an account by itself; a production start never does.
          const password = randomBytes(18).toString('base64url');
          await service.storage.accounts.addUser(DEMO_USER, password, 'admin', true);
          io.out(`\nTomaranai demo — the reference hospital on the digital twin (${DEMO_SPEED}x time)\n`);
          io.out(`  dashboard: ${service.url}/\n  log in as: ${DEMO_USER}\n  password:  ${password}   (printed once; the demo database lives in memory)\n`);
          if (options.incidentEvery > 0) {
            io.out(`  a scripted host failure every ${options.incidentEvery} min: watch it on the Live view\n`);
            stopIncidents = startDemoIncidents(service, { everyMs: options.incidentEvery * 60_000, firstAfterMs: 45_000, repairAfterMs: 90_000, log: (line) => io.err(line) });
          }
          io.out('\n');
          if (options.open) openBrowser(`${service.url}/`);
        }
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            io.err(`${signal}: stopping gracefully\n`);
            stopIncidents();
            void service.stop().then(resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
      } catch (error) {
        reportError(io, setExitCode, error);
      }
    });

  const user = program.command('user').description('accounts');
  user
    .command('add')
    .description('create an account (the first admin is made this way); there is no default password')
    .argument('<username>')
    .requiredOption('--role <role>', 'admin, operator, auditor, viewer or vendor:NAME')
    .option('--db <url>', 'database', DEFAULT_DB)
    .option('--password-stdin', 'read the password from the first line of standard input (else one is generated and printed once)')
    .option('--force', 'replace the password and role of an existing account')
    .action(async (username: string, options: { role: string; db: string; passwordStdin?: boolean; force?: boolean }) => {
      try {
        const generated = options.passwordStdin ? null : randomBytes(18).toString('base64url');
        const password = generated ?? (await readStdinLine());
        await withStorage(options.db, async (storage) => {
          const account = await storage.accounts.addUser(username, password, options.role, options.force === true);
          io.err(`user ${account.username} (${account.role}) created\n`);
          if (generated !== null) io.out(`${generated}\n`);
        });
      } catch (error) {
        reportError(io, setExitCode, error);
      }
    });

  const token = program.command('token').description('API tokens');
  token
    .command('create')
    .description('create an API token for an account; printed once, stored only as a digest')
    .argument('<username>')
    .option('--name <name>', 'what the token is for', 'cli')
    .option('--ttl-hours <h>', 'lifetime in hours (default: until revoked)', parsePositive)
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (username: string, options: { name: string; ttlHours?: number; db: string }) => {
      try {
        await withStorage(options.db, async (storage) => {
          const created = await storage.accounts.createToken(username, options.name, options.ttlHours === undefined ? null : options.ttlHours * 3600_000);
          io.out(`${created.token}\n`);
          io.err(`token ${created.info.id} for ${username}${created.info.expiresAtMs ? `, expires ${new Date(created.info.expiresAtMs).toISOString()}` : ''}\n`);
        });
      } catch (error) {
        reportError(io, setExitCode, error);
      }
    });

  const audit = program.command('audit').description('the hash-chained journal');
  audit
    .command('verify')
    .description('check the hash chain; names the first changed, removed or reordered entry (exit 1 then)')
    .option('--db <url>', 'database', DEFAULT_DB)
    .option('--json', 'print the verdict as one JSON document')
    .action(async (options: { db: string; json?: boolean }) => {
      try {
        await withStorage(options.db, async (storage) => {
          const verdict = verifyChain(storage.journal.entries());
          if (options.json) io.out(`${JSON.stringify(verdict)}\n`);
          else if (verdict.ok) io.out(`ok: ${verdict.checked} entries, the chain holds\n`);
          else io.out(`TAMPERED: first bad entry ${verdict.firstBad!.seq}: ${verdict.firstBad!.reason} (${verdict.checked} entries before it hold)\n`);
          setExitCode(verdict.ok ? 0 : 1);
        });
      } catch (error) {
        reportError(io, setExitCode, error);
      }
    });
  audit
    .command('export')
    .description('a signed export of the journal between two times, for an auditor')
    .requiredOption('--from <time>', 'ISO 8601 time or Unix ms', parseTime)
    .requiredOption('--to <time>', 'ISO 8601 time or Unix ms', parseTime)
    .option('--db <url>', 'database', DEFAULT_DB)
    .option('--out <file>', 'write to a file instead of stdout')
    .action(async (options: { from: number; to: number; db: string; out?: string }) => {
      try {
        await withStorage(options.db, async (storage) => {
          const signer = createSigner(await storage.accounts.settingOnce('audit.signing-key', newSigningKeyPem()));
          const document = exportAudit({ journal: storage.journal, signer, fromMs: options.from, toMs: options.to, actor: 'cli', nowMs: Date.now() });
          const text = `${JSON.stringify(document, null, 2)}\n`;
          if (options.out) writeFileSync(options.out, text);
          else io.out(text);
          io.err(`exported ${document.entries.length} entries (${document.firstSeq ?? '-'}…${document.lastSeq ?? '-'}); chain ${document.chain.ok ? 'holds' : `BROKEN at ${document.chain.firstBad?.seq}`}\n`);
          if (!document.chain.ok) setExitCode(1);
        });
      } catch (error) {
        reportError(io, setExitCode, error);
      }
    });

  const twin = program.command('twin').description('the digital twin as its own process');
  twin
    .command('serve')
    .description('run the twin on real time behind HTTP, for `serve --substrate http://…`')
    .option('--blueprint <file>', 'blueprint YAML', REFERENCE_BLUEPRINT)
    .option('--port <n>', 'HTTP port', parsePort, 8090)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--speed <x>', 'clock speed (1 = real time)', parsePositive, 1)
    .option('--seed <n>', 'seed', (value) => Number(value), 1)
    .action(async (options: { blueprint: string; port: number; host: string; speed: number; seed: number }) => {
      const loaded = loadBlueprint(readSource(options.blueprint));
      if (!loaded.ok) {
        io.err(`${options.blueprint}: not a valid blueprint (\`tomaranai validate ${options.blueprint}\`)\n`);
        setExitCode(1);
        return;
      }
      const server = await buildTwinServer({ blueprint: loaded.blueprint, speed: options.speed, seed: options.seed });
      const address = await server.app.listen({ port: options.port, host: options.host });
      io.out(`${address}\n`);
      io.err(`twin of ${loaded.blueprint.name} serving on ${address} at ${options.speed}x\n`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}

/** The busiest host that is up, by vCPU of the VMs running on it. */
function busiestHost(twin: Twin, service: RunningService): string | null {
  const load = twin.hostLoad();
  const up = service.plane.blueprint.hosts.filter((host) => twin.isHostPowered(host.name) && (service.plane.view.hostStatus.get(host.name) ?? 'up') === 'up');
  const ranked = up.sort((a, b) => (load.get(b.name)?.vcpu ?? 0) - (load.get(a.name)?.vcpu ?? 0) || a.name.localeCompare(b.name));
  return ranked[0]?.name ?? null;
}

/**
 * One scripted incident on the live twin, as a newcomer should see it: the busiest host crashes
 * (journaled as a fault, so the Live view starts its timeline there), the controller detects,
 * fences, fails over and restarts on its own, and after `repairAfterMs` the host is repaired and
 * powered on again. Returns the host, or null when no host is up (or not on the twin).
 */
export function injectDemoIncident(service: RunningService, options: { repairAfterMs: number; log?: (line: string) => void }): { host: string; repaired: Promise<void> } | null {
  const twin = service.substrate;
  if (!(twin instanceof Twin) || !service.plane.leading) return null;
  const host = busiestHost(twin, service);
  if (host === null) return null;
  const fault: Fault = { kind: 'host-crash', host };
  service.plane.record('fault', 'fault.injected', host, 'demo', { kind: fault.kind, target: host, scripted: true });
  twin.inject(fault);
  options.log?.(`demo: host ${host} crashed (scripted); repaired in ${Math.round(options.repairAfterMs / 1000)} s\n`);
  const repaired = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      if (service.plane.leading) {
        twin.heal(fault);
        service.plane.record('fault', 'fault.repaired', host, 'demo', { kind: fault.kind, target: host, scripted: true });
        service.plane.controller?.powerOnHost(host, 'demo');
      }
      resolve();
    }, options.repairAfterMs);
    timer.unref();
  });
  return { host, repaired };
}

/** A scripted incident every `everyMs` (the first after `firstAfterMs`, once the hospital has booted). */
export function startDemoIncidents(service: RunningService, options: { everyMs: number; firstAfterMs: number; repairAfterMs: number; log?: (line: string) => void }): () => void {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const next = (delayMs: number) => {
    timer = setTimeout(() => {
      if (stopped) return;
      injectDemoIncident(service, options);
      next(options.everyMs);
    }, delayMs);
    timer.unref();
  };
  next(options.firstAfterMs);
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  };
}

/** Opens the dashboard in the desktop's browser, where there is one; never fails the start. */
function openBrowser(url: string): void {
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : null;
  if (command === null) return;
  try {
    const child = spawn(command, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => {});
    child.unref();
  } catch {
    // No browser: the URL is printed above.
  }
}
