/**
 * What the worst inputs cost the running service: `/healthz` latency (p50, p99, max) measured while
 * hostile blueprints are sent for review back to back — an 8 MiB alias bomb, a 40,000-key map, a
 * 1 MB deeply nested login body — and how long each took to be refused, with what code. The review
 * runs in a worker thread (src/service/blueprint-loader.ts); the loop that answers /healthz and runs
 * the controller must not wait for it.
 *
 * Run directly: node --import tsx bench/hostile.ts
 */
import { readFileSync } from 'node:fs';
import { startService } from '../src/api/server.ts';
import type { BenchResult } from './twin.ts';

const HOSPITAL = readFileSync(new URL('../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
const SMALL = readFileSync(new URL('../test/api/small-hospital.yaml', import.meta.url), 'utf8');

function aliasBomb(): string {
  return `a: &a {k: v}\nlist:\n${'  - *a\n'.repeat(Math.floor((8 * 1024 * 1024 - 256) / 7))}`;
}

function manyKeys(): string {
  return `${SMALL.trimEnd()}\nx-extra:\n${Array.from({ length: 40_000 }, (_, index) => `  k${index}: ${index}\n`).join('')}`;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

export async function benchHostile(): Promise<BenchResult[]> {
  const service = await startService({ db: 'sqlite::memory:', substrate: 'twin', blueprintSource: HOSPITAL, port: 0, logger: false, scryptCost: { N: 1024, r: 8, p: 1 } });
  const results: BenchResult[] = [];
  try {
    const password = 'a long enough password for the bench';
    await service.storage.accounts.addUser('bench', password, 'admin');
    const token = (await service.storage.accounts.createToken('bench', 'bench', 3600_000)).token;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const hostile: { name: string; send: () => Promise<Response> }[] = [
      { name: '8 MiB alias bomb', send: () => fetch(`${service.url}/api/v1/blueprint/review`, { method: 'POST', headers, body: JSON.stringify({ source: aliasBomb() }) }) },
      { name: '40,000-key blueprint', send: () => fetch(`${service.url}/api/v1/blueprint/review`, { method: 'POST', headers, body: JSON.stringify({ source: manyKeys() }) }) },
      { name: '1 MB nested login body', send: () => fetch(`${service.url}/api/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `${'{"a":'.repeat(150_000)}1${'}'.repeat(150_000)}` }) },
    ];
    const health: number[] = [];
    let attacking = true;
    const poll = (async () => {
      while (attacking) {
        const started = performance.now();
        await fetch(`${service.url}/healthz`);
        health.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const rssBefore = process.memoryUsage().rss;
    for (let round = 0; round < 3; round++) {
      for (const input of hostile) {
        const started = performance.now();
        const response = await input.send();
        const body = (await response.json()) as { error?: { code: string } };
        if (round === 0) results.push({ name: `${input.name} refused in`, value: performance.now() - started, unit: 'ms', note: `${response.status} ${body.error?.code ?? 'accepted?'}` });
      }
    }
    attacking = false;
    await poll;
    const sorted = [...health].sort((a, b) => a - b);
    results.push({ name: '/healthz during hostile reviews, p50', value: percentile(sorted, 50), unit: 'ms', note: `${sorted.length} probes, every 20 ms` });
    results.push({ name: '/healthz during hostile reviews, p99', value: percentile(sorted, 99), unit: 'ms', note: 'target < 100 ms' });
    results.push({ name: '/healthz during hostile reviews, max', value: sorted.at(-1) ?? 0, unit: 'ms' });
    results.push({ name: 'process RSS growth over 9 hostile requests', value: (process.memoryUsage().rss - rssBefore) / 1024 / 1024, unit: 'MB', note: 'the 8 MiB bodies and the worker, whose heap is capped at 512 MB' });
  } finally {
    await service.stop();
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const result of await benchHostile()) console.log(`${result.name}: ${result.value.toFixed(1)} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
}
