/**
 * Crash safety: the control plane (SQLite, the twin as its own process) is killed with SIGKILL at
 * several points of a host-failure recovery and started again on the same journal. It rebuilds its
 * view from the journal and the observed substrate, finishes the recovery, starts the lost VM once
 * and never runs two copies of a VM.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServe, startTwin, waitFor, type Child } from './processes.ts';

const SPEED = 20;

interface Row {
  seq: number;
  type: string;
  subject: string;
  data: string;
}

const KILL_POINTS: readonly { name: string; reached: (rows: Row[], host: string) => boolean }[] = [
  { name: 'the host just went silent, before detection', reached: (rows, host) => rows.some((row) => row.type === 'heartbeat.lost' && row.subject === host) },
  { name: 'the host was just declared failed, nothing fenced yet', reached: (rows, host) => rows.some((row) => row.type === 'host.status' && row.subject === host && JSON.parse(row.data).to === 'failed') },
  { name: 'the fence was sent', reached: (rows, host) => rows.some((row) => row.type === 'fenceHost' && row.subject === host) },
  { name: 'the lost VM was being started elsewhere', reached: (rows) => rows.some((row) => row.type === 'startVm' && row.subject === 'lis-1' && JSON.parse(row.data).ok === true) },
];

describe('kill -9 in the middle of a recovery', () => {
  const children: Child[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'tomaranai-kill-'));
  afterAll(async () => {
    for (const child of children) await child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [index, point] of KILL_POINTS.entries()) {
    it(`finishes the recovery after a kill when ${point.name}`, async () => {
      const db = `sqlite:${join(dir, `kill-${index}.db`)}`;
      const twin = await startTwin(SPEED);
      children.push(twin);
      const truth = async () => (await (await fetch(`${twin.url}/truth`)).json()) as { splitBrainVms: string[]; healthyPrimaries: string[] };
      let serve = await startServe({ db, twinUrl: twin.url, speed: SPEED, instanceId: `first-${index}` });
      children.push(serve);
      await waitFor('the hospital is up', async () => (await truth()).healthyPrimaries.length === 5, 60_000);
      const journal = new Database(db.slice('sqlite:'.length), { readonly: true, fileMustExist: true });
      const read = (fromSeq: number) => journal.prepare('SELECT seq, type, subject, data FROM journal WHERE seq > ? ORDER BY seq').all(fromSeq) as Row[];
      const snapshot = (await (await fetch(`${twin.url}/snapshot`)).json()) as { instances: { vm: string; host: string; role: string }[] };
      const host = snapshot.instances.find((instance) => instance.vm === 'lis-1' && instance.role === 'primary')!.host;
      const faultSeq = read(0).at(-1)!.seq;

      const splitBrain = new Set<string>();
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          for (const vm of (await truth()).splitBrainVms) splitBrain.add(vm);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();

      await fetch(`${twin.url}/faults/inject`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'host-crash', host }) });
      await waitFor(point.name, async () => point.reached(read(faultSeq), host), 30_000, 2);
      await serve.kill('SIGKILL');
      const beforeKill = read(faultSeq);
      const atKill = beforeKill.map((row) => row.type);
      const killSeq = beforeKill.at(-1)!.seq;
      const fencedBeforeKill = beforeKill.some((row) => row.type === 'fence.completed' && row.subject === host && JSON.parse(row.data).ok === true);

      serve = await startServe({ db, twinUrl: twin.url, speed: SPEED, instanceId: `second-${index}` });
      children.push(serve);
      await waitFor('every VM runs and answers again', async () => (await truth()).healthyPrimaries.length === 5, 60_000);
      watching = false;
      await watcher;
      const after = read(faultSeq);
      const starts = after.filter((row) => row.type === 'startVm' && row.subject === 'lis-1' && JSON.parse(row.data).role === 'primary' && JSON.parse(row.data).ok === true);
      const terms = read(0).filter((row) => row.type === 'controller.started').map((row) => JSON.parse(row.data).epoch);
      console.log(`kill point "${point.name}": killed after [${[...new Set(atKill)].join(', ')}]; restarted in term ${terms.at(-1)}; lis-1 started ${starts.length}×; split-brain VMs ${splitBrain.size}`);
      journal.close();
      await serve.kill('SIGTERM');
      await twin.kill('SIGTERM');
      expect([...splitBrain]).toEqual([]);
      expect(starts).toHaveLength(1);
      expect(terms).toEqual([1, 2]);
      // A fence that had completed is not sent again.
      if (fencedBeforeKill) expect(after.filter((row) => row.seq > killSeq && row.type === 'fenceHost' && row.subject === host)).toEqual([]);
    }, 120_000);
  }
});
