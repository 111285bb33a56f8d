/**
 * The service commands of the `tomaranai` CLI: serve, user add, token create, audit verify,
 * audit export, twin serve. main.ts registers them with `registerServiceCommands`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { AccountError } from '../api/auth/accounts.ts';
import { verifyChain } from '../journal/chain.ts';
import { loadBlueprint } from '../model/index.ts';
import { createSigner, exportAudit, newSigningKeyPem } from '../service/audit.ts';
import { startService, ServiceError } from '../service/service.ts';
import { openStorage, StorageError, type Storage } from '../service/storage.ts';
import { buildTwinServer } from '../substrate/remote/server.ts';

export interface ServiceIo {
  out(text: string): void;
  err(text: string): void;
}

const REFERENCE_BLUEPRINT = new URL('../../blueprints/university-hospital.yaml', import.meta.url).pathname;
const DEFAULT_DB = 'sqlite:./tomaranai.db';

function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port from 0 to 65535');
  return Number(value);
}

function parsePositive(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0 || number > 1_000_000) throw new InvalidArgumentError('a positive number');
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
    .action(async (options: { db: string; substrate: string; blueprint: string; port: number; host: string; speed: number; seed: number; instanceId?: string; leaseMs: number }) => {
      try {
        const service = await startService({
          db: options.db,
          substrate: options.substrate,
          blueprintSource: readSource(options.blueprint),
          port: options.port,
          host: options.host,
          speed: options.speed,
          seed: options.seed,
          leaseMs: options.leaseMs,
          ...(options.instanceId ? { instanceId: options.instanceId } : {}),
        });
        io.err(`tomaranai serving on ${service.url} (${service.storage.kind}, ${service.substrate.name}); Ctrl-C stops it gracefully\n`);
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            io.err(`${signal}: stopping gracefully\n`);
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
