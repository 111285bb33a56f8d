/**
 * The vSphere commands: `import vsphere` (a blueprint draft and its review), `vsphere plan` (the
 * settings a blueprint implies, as a diff against the live cluster), `vsphere apply` (through
 * tasks; role-checked with a token of an account that may apply blueprints, and journaled through
 * the audit inbox) and `vsphere drift` (watch the change stream). Credentials come from a file or
 * the environment, never from the command line or the blueprint.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { TomaranaiError } from '../errors/index.ts';
import type { Blueprint } from '../model/index.ts';
import { allows } from '../service/auth/roles.ts';
import { VsphereClient, type VsphereCredentials } from '../substrate/vsphere/client.ts';
import { readInventory } from '../substrate/vsphere/inventory.ts';
import { blueprintName } from '../substrate/vsphere/names.ts';
import { applySettings, type ApplyResult } from '../vsphere/apply.ts';
import { diffSettings, type SettingDifference } from '../vsphere/diff.ts';
import { watchDrift } from '../vsphere/drift.ts';
import { draftFromInventory, formatReview } from '../vsphere/import.ts';
import { compileSettings } from '../vsphere/settings.ts';
import { runHostFailureDrill, type HostDrillReport } from '../vsphere/drill.ts';
import type { PowerFence } from '../substrate/vsphere/substrate.ts';
import { planMigration, type MigrationPlan } from '../plan/migration.ts';
import { table } from './format.ts';
import type { CliIo } from './io.ts';
import { DEFAULT_DB, parsePositive, reportError, withStorage } from './service-common.ts';

interface ConnectionOptions {
  url: string;
  credentials?: string;
  allowInsecure?: boolean;
  caFile?: string;
  pinSha256?: string;
}

function withConnection(command: Command): Command {
  return command
    .requiredOption('--url <url>', "vCenter's SDK endpoint, https://VCENTER/sdk")
    .option('--credentials <file>', 'YAML or JSON with username and password (else TOMARANAI_VSPHERE_USERNAME / TOMARANAI_VSPHERE_PASSWORD)')
    .option('--ca-file <file>', "PEM of the CA that signed vCenter's certificate, or of vCenter's own certificate")
    .option('--pin-sha256 <fingerprint>', "the SHA-256 fingerprint vCenter's certificate must have")
    .option('--allow-insecure', 'accept http:// or an unverified certificate (simulators and labs only)');
}

export function readCredentials(file: string | undefined, environment: NodeJS.ProcessEnv): VsphereCredentials {
  if (file === undefined) {
    const username = environment.TOMARANAI_VSPHERE_USERNAME;
    const password = environment.TOMARANAI_VSPHERE_PASSWORD;
    if (username && password) return { username, password };
    throw new TomaranaiError('TMR_VSPHERE_CREDENTIALS', 'no --credentials FILE and no TOMARANAI_VSPHERE_USERNAME / TOMARANAI_VSPHERE_PASSWORD in the environment');
  }
  let document: unknown;
  try {
    document = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new TomaranaiError('TMR_VSPHERE_CREDENTIALS', `${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const record = (document ?? {}) as Record<string, unknown>;
  if (typeof record.username !== 'string' || typeof record.password !== 'string' || record.username === '' || record.password === '') {
    throw new TomaranaiError('TMR_VSPHERE_CREDENTIALS', `${file}: needs a non-empty "username" and "password"`);
  }
  return { username: record.username, password: record.password };
}

async function connect(options: ConnectionOptions): Promise<VsphereClient> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TomaranaiError('TMR_VSPHERE_INSECURE', `--url "${options.url}" is not a URL`, 'pass https://VCENTER/sdk');
  }
  const credentials = readCredentials(options.credentials, process.env);
  const client = new VsphereClient({
    url,
    allowInsecure: options.allowInsecure === true,
    ...(options.caFile === undefined ? {} : { caPem: readFileSync(options.caFile, 'utf8') }),
    ...(options.pinSha256 === undefined ? {} : { pinSha256: options.pinSha256 }),
  });
  await client.connect(credentials);
  return client;
}

async function withClient<T>(options: ConnectionOptions, work: (client: VsphereClient) => Promise<T>): Promise<T> {
  const client = await connect(options);
  try {
    return await work(client);
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** `serve --vsphere-drift FILE`: the connection as YAML (url, credentials, caFile, pinSha256, allowInsecure). */
export function readDriftConnection(file: string): ConnectionOptions {
  const document = (parse(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  if (typeof document.url !== 'string') throw new TomaranaiError('TMR_VSPHERE_CREDENTIALS', `${file}: needs "url" (https://VCENTER/sdk)`, 'and "credentials": the path of a YAML file with username and password');
  const text = (key: string) => (typeof document[key] === 'string' ? (document[key] as string) : undefined);
  return {
    url: document.url,
    ...(text('credentials') === undefined ? {} : { credentials: text('credentials')! }),
    ...(text('caFile') === undefined ? {} : { caFile: text('caFile')! }),
    ...(text('pinSha256') === undefined ? {} : { pinSha256: text('pinSha256')! }),
    allowInsecure: document.allowInsecure === true,
  };
}

/** Connects as the vSphere commands do (for the serve loop). */
export function connectVsphere(options: ConnectionOptions): Promise<VsphereClient> {
  return connect(options);
}

export function formatDifferences(cluster: string, differences: readonly SettingDifference[]): string {
  if (differences.length === 0) return `cluster ${cluster}: every setting matches the blueprint`;
  const counts = new Map<string, number>();
  for (const difference of differences) counts.set(difference.area, (counts.get(difference.area) ?? 0) + 1);
  return [
    `cluster ${cluster}: ${differences.length} difference(s): ${[...counts].map(([area, count]) => `${count} ${area}`).join(', ')}`,
    '',
    table(
      ['area', 'action', 'target', 'now', 'blueprint', 'because'],
      differences.map((difference) => [difference.area, difference.action, difference.target, difference.before, difference.after, difference.because]),
    ),
  ].join('\n');
}

export const MIGRATION_TARGETS = ['qemu', 'libvirt', 'proxmox'] as const;

export function formatMigration(plan: MigrationPlan): string {
  const lines = [
    `Moving ${plan.blueprint} to ${plan.target}: ${plan.waves.length} waves, ${plan.waves.reduce((sum, wave) => sum + wave.moves.length, 0)} services, about ${Math.round(plan.totalDowntimeEstimateS / 60)} min of downtime in all (waves one after another)`,
    `Assumed: ${plan.assumptions.bandwidthGbps} Gbit/s copy, ${plan.assumptions.changedShare * 100} % of a disk changed between pre-copy and cut-over, ${plan.assumptions.conversionS} s conversion. Lowest tiers first; no wave holds a service with one it depends on.`,
    '',
  ];
  for (const wave of plan.waves) {
    lines.push(`wave ${wave.wave} (${wave.tier})`);
    for (const move of wave.moves) lines.push(`  ${move.service.padEnd(22)} ${String(move.vms).padStart(2)} VM  ${move.method.padEnd(24)} downtime ≈ ${String(move.downtimeEstimateS).padStart(5)} s  (RTO ${move.rtoTargetS} s${move.withinRto ? '' : ', EXCEEDED: move it in a maintenance window'})`);
  }
  return lines.join('\n');
}

export function registerVsphereCommands(program: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  registerImportCommand(program, io, setExitCode);
  registerMigratePlanCommand(program, io, loadBlueprintOrReport, setExitCode);
  const vsphere = program.command('vsphere').description("a blueprint's tiers as vSphere HA, FT and DRS settings: plan, apply, drift");
  registerPlanCommand(vsphere, io, loadBlueprintOrReport, setExitCode);
  registerApplyCommand(vsphere, io, loadBlueprintOrReport, setExitCode);
  registerDriftCommand(vsphere, io, loadBlueprintOrReport, setExitCode);
  registerDrillCommand(vsphere, io, loadBlueprintOrReport, setExitCode);
}

/** A power fence through a program (a fence agent wrapper): run with the host's name, exit 0 = confirmed off. */
function commandFence(program: string): PowerFence {
  return {
    off: (host) =>
      new Promise((resolve) => {
        execFile(program, [host], { timeout: 60_000 }, (error, stdout) => resolve({ ok: error === null, detail: `${program} ${host}: ${error === null ? 'exit 0' : error.message}${stdout.trim() ? `: ${stdout.trim().slice(0, 200)}` : ''}` }));
      }),
  };
}

export function formatDrill(report: HostDrillReport): string {
  return [
    `host failure on vSphere: ${report.host} stopped answering vCenter; ${report.vmsOnHost.length} VMs on it (${report.vmsOnHost.join(', ')})`,
    `fence confirmed: ${report.fenceConfirmed ? 'yes' : 'no'}; restarted: ${report.restarted.length}; started before a confirmed fence: ${report.startedUnfenced.length}`,
    ...report.restarted.map((restart) => `  ${restart.vm} → ${restart.toHost} at +${restart.afterFailureS} s`),
    '',
    'the controller, from its journal:',
    ...report.decisions.map((decision) => `  +${decision.atS.toFixed(1)} s  ${decision.kind.padEnd(8)} ${decision.type.padEnd(16)} ${decision.subject.padEnd(22)} ${decision.detail.slice(0, 140)}`),
    '',
    ...report.notes.map((note) => `note: ${note}`),
  ].join('\n');
}

function registerDrillCommand(vsphere: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  const fail = (error: unknown) => reportError(io, setExitCode, error);
  withConnection(vsphere.command('drill').description("a host failure on govmomi's simulator (its /peer/host-state endpoint) through the unchanged controller").argument('<file>', 'blueprint YAML'))
    .requiredOption('--simulator', 'strike through the simulator\'s test endpoint (a real vCenter has no way to fail a host)')
    .option('--host <name>', 'the host to fail (default: the one running the most critical VMs)')
    .option('--fence-command <program>', 'power-fence with this program, run with the host name (a fence agent wrapper; exit 0 = off)')
    .option('--watch <seconds>', 'how long to watch the controller', parsePositive, 15)
    .option('--json', 'one JSON document on standard output')
    .action(async (file: string, options: ConnectionOptions & { host?: string; fenceCommand?: string; watch: number; json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      try {
        const origin = new URL(options.url).origin;
        const vsphereNames = new Map<string, string>();
        const setHost = async (host: string, state: string) => {
          const response = await fetch(`${origin}/peer/host-state?host=${encodeURIComponent(vsphereNames.get(host) ?? host)}&state=${state}`, { method: 'POST' });
          if (!response.ok) throw new TomaranaiError('TMR_VSPHERE_FAULT', `the simulator's /peer/host-state answered ${response.status}: ${(await response.text()).trim()}`, 'is --url a vcsim built from shared/tools/vcsim?');
        };
        const report = await withClient(options, async (client) => {
          for (const host of (await readInventory(client)).hosts) vsphereNames.set(blueprintName(host.name), host.name);
          return runHostFailureDrill({
            client,
            blueprint,
            strike: (host) => setHost(host, 'notResponding'),
            heal: (host) => setHost(host, 'connected'),
            watchMs: options.watch * 1000,
            ...(options.host === undefined ? {} : { host: options.host }),
            ...(options.fenceCommand === undefined ? {} : { powerFence: commandFence(options.fenceCommand) }),
          });
        });
        io.out(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDrill(report)}\n`);
        setExitCode(report.startedUnfenced.length === 0 ? 0 : 1);
      } catch (error) {
        fail(error);
      }
    });
}

function registerImportCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const fail = (error: unknown) => reportError(io, setExitCode, error);
  const importCommand = program.command('import').description('draft a blueprint from an existing estate');
  withConnection(importCommand.command('vsphere').description("read vCenter's inventory and write a blueprint draft and a review of every guess"))
    .option('--out <file>', 'write the blueprint draft here (default: standard output)')
    .option('--report <format>', 'the review report: md or json (on standard error, or standard output with --out)', 'md')
    .option('--name <name>', "the blueprint's name", 'imported-estate')
    .action(async (options: ConnectionOptions & { out?: string; report: string; name: string }) => {
      try {
        if (options.report !== 'md' && options.report !== 'json') throw new TomaranaiError('TMR_VSPHERE_FAULT', `--report ${options.report}`, 'use --report md or --report json');
        const draft = await withClient(options, async (client) => draftFromInventory(await readInventory(client), { name: options.name }));
        const review = `${formatReview(draft, options.report)}\n`;
        if (options.out === undefined) {
          io.out(draft.yaml);
          io.err(review);
        } else {
          writeFileSync(options.out, draft.yaml);
          io.err(`wrote ${options.out}: ${draft.summary.hosts} hosts, ${draft.summary.vms} VMs, ${draft.summary.services} services, ${draft.review.length} guesses to review\n`);
          io.out(review);
        }
        setExitCode(0);
      } catch (error) {
        fail(error);
      }
    });

}

function registerMigratePlanCommand(program: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  program
    .command('migrate-plan')
    .description('the order and waves to move services to another hypervisor without breaking dependencies or tiers, with downtime per service')
    .argument('<file>', 'blueprint YAML')
    .requiredOption('--to <target>', `the target platform: ${MIGRATION_TARGETS.join(', ')}`)
    .option('--bandwidth-gbps <n>', 'copy bandwidth between the platforms', parsePositive, 10)
    .option('--json', 'one JSON document on standard output')
    .action((file: string, options: { to: string; bandwidthGbps: number; json?: boolean }) => {
      if (!(MIGRATION_TARGETS as readonly string[]).includes(options.to)) {
        io.err(`TMR_VSPHERE_FAULT: --to ${options.to} is not a target (use ${MIGRATION_TARGETS.join(', ')})\n`);
        return setExitCode(2);
      }
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      const plan = planMigration(blueprint, options.to, { bandwidthGbps: options.bandwidthGbps, changedShare: 0.02, conversionS: 30 });
      io.out(options.json ? `${JSON.stringify(plan, null, 2)}\n` : `${formatMigration(plan)}\n`);
      setExitCode(0);
    });

}

function registerPlanCommand(vsphere: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  const fail = (error: unknown) => reportError(io, setExitCode, error);
  withConnection(vsphere.command('plan').description('the settings the blueprint implies, as a diff against the live cluster').argument('<file>', 'blueprint YAML'))
    .option('--json', 'one JSON document on standard output')
    .action(async (file: string, options: ConnectionOptions & { json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      try {
        const desired = compileSettings(blueprint);
        const diff = await withClient(options, async (client) => diffSettings(blueprint, desired, await readInventory(client)));
        if (options.json) io.out(`${JSON.stringify({ cluster: diff.cluster, differences: diff.differences, admission: desired.admission, ft: desired.ft, missingVms: diff.missingVms, missingHosts: diff.missingHosts }, null, 2)}\n`);
        else {
          io.out(`${formatDifferences(diff.cluster, diff.differences)}\n`);
          if (diff.missingVms.length + diff.missingHosts.length > 0) io.out(`\nnot in vCenter (no setting compiled): ${[...diff.missingVms, ...diff.missingHosts].join(', ')}\n`);
        }
        setExitCode(0);
      } catch (error) {
        fail(error);
      }
    });

}

function registerApplyCommand(vsphere: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  const fail = (error: unknown) => reportError(io, setExitCode, error);
  withConnection(vsphere.command('apply').description('apply the settings through vCenter tasks (idempotent, journaled; needs TOMARANAI_TOKEN of an admin or operator)').argument('<file>', 'blueprint YAML'))
    .option('--dry-run', 'show what would change, change nothing (no token needed)')
    .option('--db <url>', 'the service database whose accounts check the token and whose journal records the apply', DEFAULT_DB)
    .option('--json', 'one JSON document on standard output')
    .action(async (file: string, options: ConnectionOptions & { dryRun?: boolean; db: string; json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      try {
        const desired = compileSettings(blueprint);
        const print = (result: ApplyResult) => {
          if (options.json) return io.out(`${JSON.stringify(result, null, 2)}\n`);
          io.out(`${result.dryRun ? 'dry run: would apply' : 'applied'} ${result.planned.length} setting(s)\n`);
          if (result.dryRun) io.out(`${formatDifferences(blueprint.name, result.planned)}\n`);
          for (const step of result.steps) io.out(`  ${step.ok ? 'ok  ' : 'FAIL'} ${step.what}: ${step.task} ${step.detail}\n`);
          if (!result.dryRun) io.out(result.remaining.length === 0 ? 'every setting now matches the blueprint\n' : `still different (the server refused or did not keep them):\n${formatDifferences(blueprint.name, result.remaining)}\n`);
        };
        if (options.dryRun) {
          print(await withClient(options, (client) => applySettings(client, blueprint, desired, { dryRun: true })));
          return setExitCode(0);
        }
        await withStorage(options.db, async (storage) => {
          const token = process.env.TOMARANAI_TOKEN;
          const resolved = token ? await storage.accounts.resolveToken(token) : null;
          if (resolved === null || !allows(resolved.account.role, 'blueprint.apply')) {
            throw new TomaranaiError('TMR_VSPHERE_FORBIDDEN', resolved === null ? 'no valid token in TOMARANAI_TOKEN' : `${resolved.account.username} is ${resolved.account.role}, which may not apply blueprints`);
          }
          const actor = `${resolved.account.username} (cli:${userInfo().username}@${hostname()})`;
          try {
            const result = await withClient(options, (client) => applySettings(client, blueprint, desired, { dryRun: false, onStep: (step) => io.err(`${step.ok ? 'ok' : 'FAIL'}: ${step.what}\n`) }));
            await storage.accounts.queueAudit('vsphere.applied', options.url, actor, { blueprint: blueprint.name, planned: result.planned.length, steps: result.steps, remaining: result.remaining.map((difference) => `${difference.area} ${difference.target}`) });
            print(result);
            // 3, as drift: applied, but something still differs (the server refused or did not keep it).
            setExitCode(result.remaining.length === 0 ? 0 : 3);
          } catch (error) {
            await storage.accounts.queueAudit('vsphere.apply-failed', options.url, actor, { blueprint: blueprint.name, error: error instanceof Error ? error.message : String(error) });
            throw error;
          }
        });
      } catch (error) {
        fail(error);
      }
    });

}

function registerDriftCommand(vsphere: Command, io: CliIo, loadBlueprintOrReport: (file: string) => Blueprint | null, setExitCode: (code: number) => void): void {
  const fail = (error: unknown) => reportError(io, setExitCode, error);
  withConnection(vsphere.command('drift').description('watch the change stream; report every setting or placement that no longer matches the blueprint').argument('<file>', 'blueprint YAML'))
    .option('--watch <seconds>', 'keep watching this long (default: report once and stop)', parsePositive)
    .option('--json', 'one JSON line per report on standard output')
    .action(async (file: string, options: ConnectionOptions & { watch?: number; json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      try {
        const desired = compileSettings(blueprint);
        let last = 0;
        await withClient(options, async (client) => {
          const controller = new AbortController();
          const startedMs = Date.now();
          const timer = setTimeout(() => controller.abort(), (options.watch ?? 0) * 1000);
          await watchDrift({
            client,
            blueprint,
            desired,
            nowMs: () => Date.now(),
            signal: controller.signal,
            onReport: (report) => {
              last = report.current.length;
              if (options.json) return io.out(`${JSON.stringify(report)}\n`);
              const at = `+${((report.atMs - startedMs) / 1000).toFixed(2)} s`;
              if (report.appeared.length === report.current.length && report.cleared.length === 0) io.out(`${at} ${formatDifferences(blueprint.name, report.current)}\n`);
              else {
                for (const difference of report.appeared) io.out(`${at} drift: ${difference.area} ${difference.target}: ${difference.before} (blueprint: ${difference.after})\n`);
                for (const difference of report.cleared) io.out(`${at} cleared: ${difference.area} ${difference.target}\n`);
              }
              if (options.watch === undefined) controller.abort();
            },
          });
          clearTimeout(timer);
        });
        setExitCode(last === 0 ? 0 : 3);
      } catch (error) {
        fail(error);
      }
    });
}
