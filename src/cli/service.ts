/**
 * The service commands of the `tomaranai` CLI: serve, user add, token create, audit verify,
 * audit export, twin serve. main.ts registers them with `registerServiceCommands`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { verifyChain } from '../journal/chain.ts';
import { loadBlueprint } from '../model/index.ts';
import { exportAudit } from '../service/audit.ts';
import { parseForwardTarget } from '../service/audit-forwarder.ts';
import { auditFilesFor, loadSigningKey, openAuditSigner, readCheckpoints, verifyCheckpoints } from '../service/audit-trail.ts';
import { startService } from '../api/server.ts';
import { startDriftLoop } from '../vsphere/drift-loop.ts';
import { connectVsphere, readDriftConnection } from './vsphere.ts';
import { registerAccountCommands } from './accounts.ts';
import { DEFAULT_DB, DEMO_SPEED, DEMO_USER, parseNonNegative, parsePort, parsePositive, parseTime, readSource, REFERENCE_BLUEPRINT, reportError, withStorage, type ServiceIo } from './service-common.ts';

export type { ServiceIo } from './service-common.ts';
import { buildTwinServer } from '../service/twin-process.ts';
import { Twin, type Fault } from '../substrate/twin/twin.ts';
import { ensureDashboard } from '../api/plugins/web.ts';
import type { RunningService } from '../api/server.ts';
import { spawn } from 'node:child_process';
import { parseNotifyConfig } from '../notify/index.ts';
import { parseDirectoryConfig } from '../service/auth/directory-config.ts';

/** serve, user add, token create, audit verify|export, twin serve — in this order in `--help`. */
export function registerServiceCommands(program: Command, io: ServiceIo, setExitCode: (code: number) => void): void {
  registerServeCommand(program, io, setExitCode);
  registerAccountCommands(program, io, setExitCode);
  registerAuditCommands(program, io, setExitCode);
  registerTwinServeCommand(program, io, setExitCode);
}

interface ServeOptions {
  vsphereDrift?: string;
  db: string;
  substrate: string;
  blueprint: string;
  port: number;
  host: string;
  speed: number;
  seed: number;
  instanceId?: string;
  leaseMs: number;
  demo?: boolean;
  incidentEvery: number;
  open: boolean;
  auditKey?: string;
  checkpoints?: string;
  trustProxy?: string;
  tlsCert?: string;
  tlsKey?: string;
  notify?: string;
  directory?: string;
  auditSyslog?: string;
  auditSyslogCa?: string;
}

/** `serve`: the control plane until SIGTERM or SIGINT; in demo mode also an account, incidents and a browser. */
function registerServeCommand(program: Command, io: ServiceIo, setExitCode: (code: number) => void): void {
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
    .option('--audit-key <file>', 'the Ed25519 key that signs audit exports and checkpoints, mode 0600 (default: beside a SQLite database)')
    .option('--checkpoints <file>', 'signed checkpoints of the journal head, outside the database (default: beside a SQLite database)')
    .option('--audit-syslog <url>', 'forward every journal entry to this syslog server as written: tcp://HOST:PORT or tls://HOST:PORT')
    .option('--audit-syslog-ca <file>', 'the CA (PEM) of the --audit-syslog server, for tls://')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM), with --tls-key')
    .option('--tls-key <file>', 'the private key of --tls-cert (PEM)')
    .option('--trust-proxy <addresses>', 'comma-separated reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the client')
    .option('--directory <file>', 'LDAP / Active Directory and OpenID Connect login, groups mapped to roles, YAML (docs/security.md)')
    .option('--notify <file>', 'notification receivers and routes, YAML (docs/alerts.md); the leader delivers them')
    .option('--vsphere-drift <file>', 'watch a vCenter for drift from the blueprint and journal it: YAML with url, credentials, caFile, pinSha256, allowInsecure (docs/vsphere.md)')
    .action(async (options: ServeOptions, command: Command) => {
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
          ...(options.auditKey ? { auditKeyFile: options.auditKey } : {}),
          ...(options.tlsCert ? { tlsCertFile: options.tlsCert } : {}),
          ...(options.tlsKey ? { tlsKeyFile: options.tlsKey } : {}),
          ...(options.auditSyslog ? { auditSyslog: parseForwardTarget(options.auditSyslog, options.auditSyslogCa ? readSource(options.auditSyslogCa) : undefined) } : {}),
          ...(options.checkpoints ? { checkpointFile: options.checkpoints } : {}),
          ...(options.trustProxy ? { trustProxy: options.trustProxy.split(',').map((item) => item.trim()).filter((item) => item !== '') } : {}),
          ...(options.notify ? { notify: parseNotifyConfig(readSource(options.notify), options.notify) } : {}),
          ...(options.directory ? { directory: parseDirectoryConfig(readSource(options.directory), options.directory) } : {}),
        });
        io.err(`tomaranai serving on ${service.url} (${service.storage.kind}, ${service.substrate.name}); Ctrl-C stops it gracefully\n`);
        let stopIncidents = () => {};
        const drift = options.vsphereDrift ? startServeDrift(options.vsphereDrift, service, io) : null;
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
            void (drift?.stop() ?? Promise.resolve()).then(() => service.stop()).then(resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
      } catch (error) {
        reportError(io, setExitCode, error);
      }
    });
}

/** `audit verify` and `audit export`: the hash chain checked, and a signed export for an auditor. */
function registerAuditCommands(program: Command, io: ServiceIo, setExitCode: (code: number) => void): void {
  const audit = program.command('audit').description('the hash-chained journal');
  audit
    .command('verify')
    .description('check the hash chain and hold it to the signed checkpoints outside the database; names the first changed, removed or reordered entry (exit 1 then)')
    .option('--db <url>', 'database', DEFAULT_DB)
    .option('--audit-key <file>', 'the key file whose public key signed the checkpoints (default: beside a SQLite database)')
    .option('--checkpoints <file>', 'the checkpoint file (default: beside a SQLite database)')
    .option('--json', 'print the verdict as one JSON document')
    .action(async (options: { db: string; auditKey?: string; checkpoints?: string; json?: boolean }) => {
      try {
        await withStorage(options.db, async (storage) => {
          const chain = verifyChain(storage.journal.entries());
          const files = auditFilesFor(options.db, { ...(options.auditKey ? { keyFile: options.auditKey } : {}), ...(options.checkpoints ? { checkpointFile: options.checkpoints } : {}) });
          const held = files.checkpointFile !== null && files.keyFile !== null && existsSync(files.checkpointFile) && existsSync(files.keyFile);
          const anchors = held ? verifyCheckpoints(storage.journal, readCheckpoints(files.checkpointFile!), loadSigningKey(files.keyFile!).publicKeyPem) : null;
          const ok = chain.ok && (anchors === null || anchors.ok);
          if (options.json) io.out(`${JSON.stringify({ ...chain, ok, checkpoints: anchors })}\n`);
          else if (!chain.ok) io.out(`TAMPERED: first bad entry ${chain.firstBad!.seq}: ${chain.firstBad!.reason} (${chain.checked} entries before it hold)\n`);
          else if (anchors !== null && !anchors.ok) io.out(`TAMPERED: ${anchors.problem} (the chain holds on its own: it was rewritten or cut, not merely edited)\n`);
          else io.out(`ok: ${chain.checked} entries, the chain holds${anchors === null ? ' (no checkpoint file: truncation and rewriting cannot be ruled out)' : `, and ${anchors.checked} signed checkpoints agree`}\n`);
          setExitCode(ok ? 0 : 1);
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
    .option('--audit-key <file>', 'the signing key (default: beside a SQLite database)')
    .action(async (options: { from: number; to: number; db: string; out?: string; auditKey?: string }) => {
      try {
        await withStorage(options.db, async (storage) => {
          const signer = await openAuditSigner(auditFilesFor(options.db, options.auditKey ? { keyFile: options.auditKey } : {}), storage.accounts);
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
}

/** `twin serve`: the digital twin as its own process, on real time behind HTTP. */
function registerTwinServeCommand(program: Command, io: ServiceIo, setExitCode: (code: number) => void): void {
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

/**
 * `serve --vsphere-drift FILE`: the drift watch beside the control plane, against the blueprint the
 * service runs; every report goes to the audit inbox, which the leader journals (run it on one
 * instance: each instance that has the option watches).
 */
function startServeDrift(file: string, service: RunningService, io: ServiceIo): { stop(): Promise<void> } {
  const connection = readDriftConnection(file);
  io.err(`watching ${connection.url} for drift from ${service.plane.blueprint.name}\n`);
  return startDriftLoop({
    blueprint: service.plane.blueprint,
    connect: () => connectVsphere(connection),
    nowMs: () => Date.now(),
    log: (line) => io.err(line),
    record: (report) =>
      // At most 100 lines of each kind per entry (a first report of an unconfigured cluster has hundreds).
      service.storage.accounts.queueAudit('vsphere.drift', connection.url, 'vsphere-drift', {
        differences: report.current.length,
        appearedCount: report.appeared.length,
        appeared: report.appeared.slice(0, 100).map((difference) => `${difference.area} ${difference.target}: ${difference.before} (blueprint: ${difference.after})`),
        clearedCount: report.cleared.length,
        cleared: report.cleared.slice(0, 100).map((difference) => `${difference.area} ${difference.target}`),
      }),
  });
}
