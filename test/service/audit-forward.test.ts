/**
 * Audit that leaves the host as it is written (issue 14, point 3): every journal entry, in order, to
 * a syslog server over TCP (RFC 6587 octet counting), each as an RFC 5424 line whose structured
 * data carries its seq and hash; a server that was down gets everything once it returns, and a
 * restarted service resumes after its cursor instead of sending the journal again.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/api/server.ts';
import { parseForwardTarget } from '../../src/service/audit-forwarder.ts';

const SMALL = readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8');

/** A syslog server: parses octet-counted frames into lines. */
function syslogServer(port = 0): Promise<{ server: Server; port: number; lines: string[]; sockets: Set<Socket> }> {
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) break;
        const length = Number(buffer.subarray(0, space).toString());
        if (buffer.length < space + 1 + length) break;
        lines.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
        buffer = buffer.subarray(space + 1 + length);
      }
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, lines, sockets })));
}

async function until(what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!probe()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const seqOf = (line: string) => Number(/seq="(\d+)"/.exec(line)?.[1]);
const closeServer = (target: { server: Server; sockets: Set<Socket> }) =>
  new Promise<void>((resolve) => {
    for (const socket of target.sockets) socket.destroy();
    target.server.close(() => resolve());
  });

describe('audit forwarding to syslog', () => {
  const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'tomaranai-forward-')), 'state.db')}`;
  const stops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('sends every entry in order, catches up after the server was down, and resumes after its cursor on restart', async () => {
    const first = await syslogServer();
    const options = { db, substrate: 'twin', blueprintSource: SMALL, port: 0, speed: 50, logger: false as const, scryptCost: { N: 1024, r: 8, p: 1 }, auditSyslog: parseForwardTarget(`tcp://127.0.0.1:${first.port}`) };
    let service = await startService(options);
    stops.push(() => service.stop());
    await until('the first entries forwarded', () => first.lines.length >= 20);
    expect(first.lines[0]).toMatch(/^<166>1 \S+ \S+ tomaranai - \S+ \[tomaranai-audit@32473 seq="1" hash="[0-9a-f]{64}" previous="[0-9a-f]{64}" kind="\w+" actor="[^"]*" subject="[^"]*"\] \{/);

    // The server goes away; the service goes on journaling.
    const port = first.port;
    await closeServer(first);
    const whileDown = service.storage.journal.length;
    await until('the journal grew while the server was down', () => service.storage.journal.length > whileDown + 5);
    const second = await syslogServer(port);
    await until('the backlog delivered', () => second.lines.length > 0 && seqOf(second.lines.at(-1)!) >= service.storage.journal.length - 1);
    const seqs = [...first.lines, ...second.lines].map(seqOf);
    const highest = Math.max(...seqs);
    for (let seq = 1; seq <= highest; seq++) expect(seqs, `entry ${seq} never reached the server`).toContain(seq);

    // Restarted: resumes after its cursor (at least once), not from the start.
    await service.stop();
    stops.pop();
    const before = second.lines.length;
    service = await startService(options);
    stops.push(() => service.stop());
    await until('new entries after the restart', () => second.lines.length > before);
    const resumedAt = seqOf(second.lines[before]!);
    expect(resumedAt).toBeGreaterThan(highest - 10);
    await closeServer(second);
  }, 60_000);
});
