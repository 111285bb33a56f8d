/**
 * Two `serve` instances on one PostgreSQL, the twin as its own process. The leader is killed with
 * SIGKILL in the middle of a host-failure recovery; the follower takes over within 10 s, finishes
 * the recovery, and the twin's truth shows no split brain and no lost VM at any moment.
 * Needs TOMARANAI_TEST_PG_URL (CI sets it from scripts/ci-postgres.sh); skipped without it.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresJournal } from '../../src/journal/postgres.ts';
import { migrate } from '../../src/service/postgres-storage.ts';
import { runCli } from './run-cli.ts';
import { startServe, startTwin, waitFor, type Child } from './processes.ts';
import { TomaranaiError } from '../../src/errors/index.ts';

const PG_URL = process.env.TOMARANAI_TEST_PG_URL;
const SPEED = 20;
if (!PG_URL) console.warn('test/service/failover.test.ts: skipped: set TOMARANAI_TEST_PG_URL (bash scripts/ci-postgres.sh prints one) to run the PostgreSQL tests');

interface Truth {
  splitBrainVms: string[];
  healthyPrimaries: string[];
}

async function resetDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('DROP TABLE IF EXISTS journal, leader_lease, accounts, api_tokens, settings, schema_migrations CASCADE');
  await client.end();
}

describe.skipIf(!PG_URL)('two instances on PostgreSQL', () => {
  const children: Child[] = [];
  afterAll(async () => {
    for (const child of children) await child.kill('SIGKILL');
  });

  it('a follower finishes a recovery after the leader is killed mid-way: no split brain, no lost VM, takeover under 10 s', async () => {
    const url = PG_URL!;
    await resetDatabase(url);
    expect((await runCli(['user', 'add', 'ops', '--role', 'operator', '--db', url])).code).toBe(0);
    const token = (await runCli(['token', 'create', 'ops', '--db', url])).out.trim();
    const auth = { authorization: `Bearer ${token}` };
    const twin = await startTwin(SPEED);
    children.push(twin);
    const a = await startServe({ db: url, twinUrl: twin.url, speed: SPEED, instanceId: 'a' });
    children.push(a);
    await waitFor('a leads', async () => ((await (await fetch(`${a.url}/readyz`)).json()) as { role: string }).role === 'leader');
    const b = await startServe({ db: url, twinUrl: twin.url, speed: SPEED, instanceId: 'b' });
    children.push(b);
    await waitFor('b follows', async () => ((await (await fetch(`${b.url}/readyz`)).json()) as { role: string; leaderId: string }).leaderId === 'a');

    const truth = async () => (await (await fetch(`${twin.url}/truth`)).json()) as Truth;
    await waitFor('the hospital is up', async () => (await truth()).healthyPrimaries.length === 5, 60_000);

    // Watch the twin's truth for split brain from now to the end.
    const splitBrain = new Set<string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const vm of (await truth()).splitBrainVms) splitBrain.add(vm);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    // The follower serves reads from the shared journal.
    const servicesOnB = (await (await fetch(`${b.url}/api/v1/services`, { headers: auth })).json()) as { services: { name: string; vms: { name: string; host: string }[] }[] };
    const lisHost = servicesOnB.services.find((service) => service.name === 'lis')!.vms[0]!.host;
    expect(lisHost).toMatch(/^r\d-h\d$/);

    await fetch(`${twin.url}/faults/inject`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'host-crash', host: lisHost }) });
    // Kill the leader once it has decided the host failed and fenced it, before lis is back.
    await waitFor('the leader acts on the failure', async () => {
      const page = (await (await fetch(`${a.url}/api/v1/audit?fromSeq=1&limit=5000`, { headers: auth })).json()) as { entries: { type: string; subject: string }[] };
      return page.entries.some((entry) => entry.type === 'fenceHost' && entry.subject === lisHost);
    }, 30_000, 10);
    const lisHealthyAtKill = (await truth()).healthyPrimaries.includes('lis-1');
    const killedAtMs = performance.now();
    await a.kill('SIGKILL');

    await waitFor('b leads', async () => ((await (await fetch(`${b.url}/readyz`)).json()) as { role: string }).role === 'leader', 15_000, 20);
    const takeoverMs = performance.now() - killedAtMs;
    await waitFor('every VM runs and answers again', async () => (await truth()).healthyPrimaries.length === 5, 60_000);
    const recoveredMs = performance.now() - killedAtMs;
    watching = false;
    await watcher;

    const journal = (await (await fetch(`${b.url}/api/v1/audit?fromSeq=1&limit=5000`, { headers: auth })).json()) as { entries: { type: string; subject: string; data: Record<string, unknown> }[] };
    const epochs = journal.entries.filter((entry) => entry.type === 'controller.started').map((entry) => entry.data.epoch);
    const verdict = (await (await fetch(`${b.url}/api/v1/audit/verify`, { headers: auth })).json()) as { ok: boolean };
    console.log(
      `failover: leader killed ${lisHealthyAtKill ? 'after' : 'before'} lis-1 was back; follower took over in ${(takeoverMs / 1000).toFixed(2)} s (target < 10 s), ` +
        `every VM healthy ${(recoveredMs / 1000).toFixed(2)} s after the kill; split-brain VMs ${splitBrain.size}; terms ${epochs.join(' → ')}`,
    );
    expect(takeoverMs).toBeLessThan(10_000);
    expect([...splitBrain]).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(epochs.length).toBe(2);
    expect(Number(epochs[1])).toBeGreaterThan(Number(epochs[0]));

    // A deposed leader's late action is refused by the substrate…
    const late = (await (
      await fetch(`${twin.url}/call/fenceHost`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: { epoch: Number(epochs[0]) }, host: 'r2-h1' }) })
    ).json()) as { ok: boolean; reason: string };
    expect(late.ok).toBe(false);
    expect(late.reason).toContain('older');
  }, 180_000);

  it("refuses a deposed leader's journal writes in the database", async () => {
    const pool = new pg.Pool({ connectionString: PG_URL! });
    await migrate(pool);
    const lease = (await pool.query<{ token: string }>('SELECT token FROM leader_lease WHERE id = 1')).rows[0]!;
    const journal = await PostgresJournal.open(pool);
    const before = journal.length;
    let fenced = false;
    journal.onFenced = () => (fenced = true);
    await journal.becomeWriter(Number(lease.token) - 1);
    journal.append({ atMs: 0, kind: 'audit', type: 'late.write', subject: 'x', actor: 'deposed', data: {} });
    await journal.flush();
    expect(fenced).toBe(true);
    expect(() => journal.append({ atMs: 0, kind: 'audit', type: 'later.write', subject: 'x', actor: 'deposed', data: {} })).toThrow(TomaranaiError);
    const rows = await pool.query("SELECT count(*)::int AS n FROM journal WHERE type IN ('late.write', 'later.write')");
    expect(rows.rows[0].n).toBe(0);
    journal.follow(1000);
    expect(journal.length).toBe(before);
    await journal.close();
    await pool.end();
  });
});
