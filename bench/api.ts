/**
 * API benchmarks: requests per second on a status endpoint (GET /api/v1/services with a token), and
 * the delay from a journal append to its arrival at each of 200 concurrent event-stream clients
 * (p50/p99, target p99 < 100 ms). Loopback only; the control plane runs on the twin, simulated time.
 * Run directly: node --import tsx bench/api.ts
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/api/app.ts';
import { CLIENTS_PER_PRINCIPAL } from '../src/api/sse.ts';
import { AccountStore, SqliteAccountRows } from '../src/service/auth/accounts.ts';
import { createRandom } from '../src/ports/random.ts';
import { MemoryJournal } from '../src/journal/memory.ts';
import { loadBlueprint } from '../src/model/index.ts';
import { createSigner, newSigningKeyPem } from '../src/service/audit.ts';
import { ControlPlane } from '../src/service/control-plane.ts';
import { Scheduler } from '../src/substrate/twin/scheduler.ts';
import { Twin } from '../src/substrate/twin/twin.ts';

export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly note?: string;
}

const STREAM_CLIENTS = 200;
const EVENTS = 200;
const STATUS_SECONDS = 3;
const STATUS_CONCURRENCY = 32;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function benchApi(): Promise<BenchResult[]> {
  const source = readFileSync(new URL('../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
  const loaded = loadBlueprint(source);
  if (!loaded.ok) throw new Error('reference blueprint invalid');
  const scheduler = new Scheduler();
  const twin = new Twin(loaded.blueprint, scheduler, createRandom(1).fork('twin'));
  const journal = new MemoryJournal();
  const plane = new ControlPlane({ blueprint: loaded.blueprint, blueprintSource: source, substrate: twin, clock: scheduler, journal });
  await plane.lead(1, 'bench');
  scheduler.runUntil(30 * 60_000);
  const accounts = new AccountStore(new SqliteAccountRows(':memory:'), { N: 1024, r: 8, p: 1 });
  await accounts.addUser('bench', 'a long enough password', 'operator');
  const token = (await accounts.createToken('bench', 'bench', null)).token;
  // An account holds at most CLIENTS_PER_PRINCIPAL event streams (a browser tab each): the 200
  // stream clients are spread over as many accounts as that takes, as 200 people's screens would be.
  const streamTokens: string[] = [];
  for (let index = 0; index * CLIENTS_PER_PRINCIPAL < STREAM_CLIENTS; index++) {
    await accounts.addUser(`screen-${index}`, 'a long enough password', 'operator');
    streamTokens.push((await accounts.createToken(`screen-${index}`, `screen-${index}`, null)).token);
  }
  const app = await buildApp({ plane, accounts, journal, signer: createSigner(newSigningKeyPem()), logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  const agent = new Agent({ keepAlive: true, maxSockets: STATUS_CONCURRENCY });
  const results: BenchResult[] = [];
  try {
    // 1. Status endpoint throughput, keep-alive, fixed concurrency.
    const get = () =>
      new Promise<void>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/api/v1/services', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
    let completed = 0;
    const endAt = performance.now() + STATUS_SECONDS * 1000;
    const startedAt = performance.now();
    await Promise.all(
      Array.from({ length: STATUS_CONCURRENCY }, async () => {
        while (performance.now() < endAt) {
          await get();
          completed++;
        }
      }),
    );
    const rps = completed / ((performance.now() - startedAt) / 1000);
    results.push({ name: 'GET /api/v1/services (52 services, 74 VMs), token auth', value: Math.round(rps), unit: 'requests/s', note: `${STATUS_CONCURRENCY} concurrent keep-alive clients, ${completed} requests` });

    // 2. Journal event → arrival at 200 concurrent SSE clients.
    const appendedAt = new Map<number, number>();
    const delays: number[] = [];
    let connected = 0;
    const streams = await Promise.all(
      Array.from(
        { length: STREAM_CLIENTS },
        (_, client) =>
          new Promise<() => void>((resolve, reject) => {
            const streamToken = streamTokens[Math.floor(client / CLIENTS_PER_PRINCIPAL)]!;
            const req = httpRequest({ host: '127.0.0.1', port, path: '/api/v1/events', headers: { authorization: `Bearer ${streamToken}` } }, (res) => {
              if (res.statusCode !== 200) reject(new Error(`events status ${res.statusCode}`));
              connected++;
              let buffer = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                const now = performance.now();
                buffer += chunk;
                let split: number;
                while ((split = buffer.indexOf('\n\n')) >= 0) {
                  const block = buffer.slice(0, split);
                  buffer = buffer.slice(split + 2);
                  const id = /^id: (\d+)$/m.exec(block);
                  if (id) {
                    const sent = appendedAt.get(Number(id[1]));
                    if (sent !== undefined) delays.push(now - sent);
                  }
                }
              });
              resolve(() => req.destroy());
            });
            req.on('error', reject);
            req.end();
          }),
      ),
    );
    for (let index = 0; index < EVENTS; index++) {
      const atMs = performance.now();
      const entry = plane.record('audit', 'host.maintenance.started', `vm-${index}`, 'bench', { reason: `bench ${index}` });
      appendedAt.set(entry.seq, atMs);
      // Spread the events out, as a controller's are, rather than one burst.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const deadline = performance.now() + 5000;
    while (delays.length < STREAM_CLIENTS * EVENTS && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const close of streams) close();
    delays.sort((a, b) => a - b);
    results.push({ name: `journal event → ${STREAM_CLIENTS} SSE clients, p99 delay`, value: Number(percentile(delays, 99).toFixed(2)), unit: 'ms', note: `target < 100 ms; p50 ${percentile(delays, 50).toFixed(2)} ms, max ${delays.at(-1)!.toFixed(2)} ms, ${delays.length}/${STREAM_CLIENTS * EVENTS} deliveries, ${connected} clients` });
  } finally {
    agent.destroy();
    await app.close();
    plane.close();
    await accounts.close();
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const result of await benchApi()) console.log(`${result.name}: ${result.value} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
}
