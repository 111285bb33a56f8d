/**
 * `user` and `token`: accounts and API tokens in the service's database, for the first admin and for
 * when the API cannot be reached. Every change is queued in the audit inbox with the operating-system
 * user who made it; the leader journals it within seconds (or when it next starts), so account
 * changes made here are as visible to an auditor as those made through the API.
 */
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import type { Command } from 'commander';
import type { Storage } from '../service/storage.ts';
import { DEFAULT_DB, parsePositive, readStdinLine, reportError, withStorage, type ServiceIo } from './service-common.ts';

/** Who changed an account from the command line: the OS user and the machine. */
function cliActor(): string {
  return `cli:${userInfo().username}@${hostname()}`;
}

type Run = (db: string, work: (storage: Storage) => Promise<void>) => Promise<void>;

export function registerAccountCommands(program: Command, io: ServiceIo, setExitCode: (code: number) => void): void {
  const run: Run = async (db, work) => {
    try {
      await withStorage(db, work);
    } catch (error) {
      reportError(io, setExitCode, error);
    }
  };
  registerUserCommands(program.command('user').description('accounts'), io, run);
  registerTokenCommands(program.command('token').description('API tokens and sessions'), io, run);
}

function registerUserCommands(user: Command, io: ServiceIo, run: Run): void {
  user
    .command('add')
    .description('create an account (the first admin is made this way); there is no default password')
    .argument('<username>')
    .requiredOption('--role <role>', 'admin, operator, auditor, viewer or vendor:NAME')
    .option('--db <url>', 'database', DEFAULT_DB)
    .option('--password-stdin', 'read the password from the first line of standard input (else one is generated and printed once)')
    .option('--force', 'replace the password and role of an existing account (its sessions are revoked)')
    .action(async (username: string, options: { role: string; db: string; passwordStdin?: boolean; force?: boolean }) => {
      const generated = options.passwordStdin ? null : randomBytes(18).toString('base64url');
      const password = generated ?? (await readStdinLine());
      await run(options.db, async (storage) => {
        const account = await storage.accounts.addUser(username, password, options.role, options.force === true);
        const sessionsRevoked = options.force === true ? (await storage.accounts.setPassword(username, password)).sessionsRevoked : 0;
        await storage.accounts.queueAudit('user.added', account.username, cliActor(), { role: account.role, replaced: options.force === true, sessionsRevoked, address: 'local' });
        io.err(`user ${account.username} (${account.role}) ${options.force === true ? 'set' : 'created'}\n`);
        if (generated !== null) io.out(`${generated}\n`);
      });
    });
  user
    .command('list')
    .description('every account, its role and whether it is disabled')
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (options: { db: string }) => {
      await run(options.db, async (storage) => {
        for (const account of await storage.accounts.users()) io.out(`${account.username}\t${account.role}${account.disabled ? '\tdisabled' : ''}\n`);
      });
    });
  for (const [verb, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    user
      .command(verb)
      .description(disabled ? 'disable an account: its logins, tokens and sessions are refused at once' : 'enable a disabled account')
      .argument('<username>')
      .requiredOption('--reason <text>', 'why (journaled)')
      .option('--db <url>', 'database', DEFAULT_DB)
      .action(async (username: string, options: { reason: string; db: string }) => {
        await run(options.db, async (storage) => {
          await storage.accounts.setDisabled(username, disabled);
          await storage.accounts.queueAudit(disabled ? 'user.disabled' : 'user.enabled', username, cliActor(), { reason: options.reason, address: 'local' });
          io.err(`user ${username} ${verb}d\n`);
        });
      });
  }
  user
    .command('delete')
    .description('delete an account; every token and session it had is revoked')
    .argument('<username>')
    .requiredOption('--reason <text>', 'why (journaled)')
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (username: string, options: { reason: string; db: string }) => {
      await run(options.db, async (storage) => {
        await storage.accounts.deleteUser(username);
        await storage.accounts.queueAudit('user.deleted', username, cliActor(), { reason: options.reason, address: 'local' });
        io.err(`user ${username} deleted\n`);
      });
    });
  user
    .command('passwd')
    .description("set an account's password (generated and printed once, or from standard input); its sessions are revoked")
    .argument('<username>')
    .option('--password-stdin', 'read the password from the first line of standard input')
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (username: string, options: { passwordStdin?: boolean; db: string }) => {
      const generated = options.passwordStdin ? null : randomBytes(18).toString('base64url');
      const password = generated ?? (await readStdinLine());
      await run(options.db, async (storage) => {
        const { sessionsRevoked } = await storage.accounts.setPassword(username, password);
        await storage.accounts.queueAudit('user.password-changed', username, cliActor(), { by: 'cli', sessionsRevoked, address: 'local' });
        io.err(`password of ${username} set; ${sessionsRevoked} session(s) revoked\n`);
        if (generated !== null) io.out(`${generated}\n`);
      });
    });
}

function registerTokenCommands(token: Command, io: ServiceIo, run: Run): void {
  token
    .command('create')
    .description('create an API token for an account; printed once, stored only as a digest')
    .argument('<username>')
    .option('--name <name>', 'what the token is for', 'cli')
    .option('--ttl-hours <h>', 'lifetime in hours (default and longest: 90 days)', parsePositive)
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (username: string, options: { name: string; ttlHours?: number; db: string }) => {
      await run(options.db, async (storage) => {
        const created = await storage.accounts.createToken(username, options.name, options.ttlHours === undefined ? null : options.ttlHours * 3600_000);
        await storage.accounts.queueAudit('token.created', username, cliActor(), { tokenId: created.info.id, name: created.info.name, expiresAtMs: created.info.expiresAtMs, address: 'local' });
        io.out(`${created.token}\n`);
        io.err(`token ${created.info.id} for ${username}${created.info.expiresAtMs ? `, expires ${new Date(created.info.expiresAtMs).toISOString()}` : ''}\n`);
      });
    });
  token
    .command('list')
    .description('tokens and sessions (never their secrets), of one account or all')
    .option('--user <username>', 'only this account')
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (options: { user?: string; db: string }) => {
      await run(options.db, async (storage) => {
        for (const listed of await storage.accounts.tokens(options.user ?? null)) {
          const state = listed.revoked ? 'revoked' : listed.expiresAtMs !== null && listed.expiresAtMs <= Date.now() ? 'expired' : 'active';
          io.out(`${listed.id}\t${listed.username}\t${listed.name}\t${state}\t${listed.expiresAtMs === null ? '-' : new Date(listed.expiresAtMs).toISOString()}\n`);
        }
      });
    });
  token
    .command('revoke')
    .description('revoke a token or session by its id (`token list` shows them), or every one of an account')
    .argument('[id]')
    .option('--user <username>', 'revoke every token and session of this account instead')
    .requiredOption('--reason <text>', 'why (journaled)')
    .option('--db <url>', 'database', DEFAULT_DB)
    .action(async (id: string | undefined, options: { user?: string; reason: string; db: string }) => {
      await run(options.db, async (storage) => {
        if (options.user !== undefined) {
          const count = await storage.accounts.revokeTokensOf(options.user);
          await storage.accounts.queueAudit('tokens.revoked', options.user, cliActor(), { count, reason: options.reason, address: 'local' });
          io.err(`${count} token(s) of ${options.user} revoked\n`);
          return;
        }
        const listed = (await storage.accounts.tokens(null)).find((candidate) => candidate.id === id);
        if (id === undefined || listed === undefined || !(await storage.accounts.revokeToken(listed.id))) {
          io.err(`no token ${id ?? '(none given)'}: \`tomaranai token list\` shows them\n`);
          return;
        }
        await storage.accounts.queueAudit('token.revoked', listed.username, cliActor(), { tokenId: listed.id, name: listed.name, address: 'local' });
        io.err(`token ${listed.id} of ${listed.username} revoked\n`);
      });
    });
}
