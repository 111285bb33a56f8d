/**
 * A control plane on the twin, on simulated time, behind the API: the hospital boots before the
 * first request, and a test moves time on with `advance`. Accounts live in an in-memory SQLite
 * store with a cheap scrypt cost (the default cost is for production).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildApp, type ApiDeps } from '../../src/api/app.ts';
import { AccountStore, SqliteAccountRows } from '../../src/service/auth/accounts.ts';
import { LoginLimiter } from '../../src/api/auth/rate-limit.ts';
import { createRandom } from '../../src/ports/random.ts';
import { MemoryJournal } from '../../src/journal/memory.ts';
import { loadBlueprint } from '../../src/model/index.ts';
import type { DrillReport } from '../../src/report/drill-report.ts';
import { createSigner, newSigningKeyPem } from '../../src/service/audit.ts';
import { ControlPlane } from '../../src/service/control-plane.ts';
import { Scheduler } from '../../src/substrate/twin/scheduler.ts';
import { Twin } from '../../src/substrate/twin/twin.ts';

export const SMALL_SOURCE = readFileSync(new URL('./small-hospital.yaml', import.meta.url), 'utf8');
export const TEST_COST = { N: 1024, r: 8, p: 1 };
export const PASSWORD = 'correct horse battery staple';
export const ROLES = ['admin', 'operator', 'auditor', 'viewer', 'vendor:vendor-a', 'vendor:vendor-b'] as const;
export type TestRole = (typeof ROLES)[number];

export interface Harness {
  readonly app: FastifyInstance;
  readonly plane: ControlPlane;
  readonly journal: MemoryJournal;
  readonly twin: Twin;
  readonly scheduler: Scheduler;
  readonly accounts: AccountStore;
  readonly tokens: Record<TestRole, string>;
  advance(ms: number): void;
  as(role: TestRole): { authorization: string };
  close(): Promise<void>;
}

export async function harness(
  options: { logger?: ApiDeps['logger']; drillRunner?: (drill: { scenario: string; seed: number }) => DrillReport; wallNowMs?: () => number; directory?: ApiDeps['directory'] } = {},
): Promise<Harness> {
  const loaded = loadBlueprint(SMALL_SOURCE);
  if (!loaded.ok) throw new Error('small-hospital.yaml is invalid');
  const blueprint = loaded.blueprint;
  const scheduler = new Scheduler();
  const twin = new Twin(blueprint, scheduler, createRandom(7).fork('twin'));
  const journal = new MemoryJournal();
  const plane = new ControlPlane({
    blueprint,
    blueprintSource: SMALL_SOURCE,
    substrate: twin,
    clock: scheduler,
    journal,
    ...(options.drillRunner ? { drillRunner: options.drillRunner } : {}),
  });
  await plane.lead(1, 'test-instance');
  scheduler.runUntil(15 * 60_000);
  const accounts = new AccountStore(new SqliteAccountRows(':memory:'), TEST_COST, options.wallNowMs);
  const tokens = {} as Record<TestRole, string>;
  for (const role of ROLES) {
    const username = role.replace(':', '-');
    await accounts.addUser(username, PASSWORD, role);
    tokens[role] = (await accounts.createToken(username, 'test', null)).token;
  }
  const app = await buildApp({
    plane,
    accounts,
    journal,
    signer: createSigner(newSigningKeyPem()),
    logger: options.logger ?? false,
    loginLimiter: new LoginLimiter(undefined, options.wallNowMs),
    ...(options.wallNowMs ? { wallNowMs: options.wallNowMs } : {}),
    ...(options.directory ? { directory: options.directory } : {}),
  });
  await app.ready();
  return {
    app,
    plane,
    journal,
    twin,
    scheduler,
    accounts,
    tokens,
    advance: (ms) => scheduler.runUntil(scheduler.nowMs() + ms),
    as: (role) => ({ authorization: `Bearer ${tokens[role]}` }),
    close: async () => {
      await app.close();
      plane.close();
      await accounts.close();
    },
  };
}
