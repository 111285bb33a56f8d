/**
 * `tomaranai twin serve`: the twin in its own process, on real time (optionally sped up), behind
 * HTTP, so a control plane can be killed and restarted while the "hospital" keeps running. It also
 * exposes the twin's own fault API and its truth (for tests), which a real substrate would not.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { SubstrateEvent } from '../ports/index.ts';
import { createRandom } from '../ports/random.ts';
import type { Blueprint } from '../model/index.ts';
import { RealClock } from '../runtime/real-clock.ts';
import { Twin, type Fault } from '../substrate/twin/twin.ts';
import { SUBSTRATE_CALLS, type WireEvent, type WireSnapshot } from '../substrate/remote/protocol.ts';

export interface TwinServer {
  readonly app: FastifyInstance;
  readonly twin: Twin;
  readonly clock: RealClock;
  close(): Promise<void>;
}

export async function buildTwinServer(options: { blueprint: Blueprint; speed: number; seed: number; logger?: boolean }): Promise<TwinServer> {
  const clock = new RealClock(options.speed);
  const twin = new Twin(options.blueprint, clock, createRandom(options.seed).fork('twin'));
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: 1024 * 1024 });
  const streams = new Set<ServerResponse>();
  // Heartbeats cross the port as transitions, so a client that connects late must be told which
  // channels are silent now: the server remembers them from the start.
  const silent = new Map<string, WireEvent>();
  twin.subscribe((event: SubstrateEvent) => {
    if (event.type === 'heartbeat.lost') silent.set(`${event.host}/${event.channel}`, { nowMs: clock.nowMs(), event });
    if (event.type === 'heartbeat.restored') silent.delete(`${event.host}/${event.channel}`);
    const text = `data: ${JSON.stringify({ nowMs: clock.nowMs(), event })}\n\n`;
    for (const stream of streams) stream.write(text);
  });

  app.get('/snapshot', async (): Promise<WireSnapshot> => {
    const snapshot = twin.snapshot();
    return { ...snapshot, vmGenerations: [...snapshot.vmGenerations] };
  });
  for (const call of SUBSTRATE_CALLS) {
    // Every call of the port takes one request object and answers an ActionOutcome.
    app.post(`/call/${call}`, async (request) => {
      const method = (twin as unknown as Record<string, ((body: unknown) => unknown) | undefined>)[call];
      return method === undefined ? { ok: false, reason: `this twin has no ${call}` } : method.call(twin, request.body);
    });
  }
  app.get('/metrics', async () => (twin as unknown as { metrics?: () => unknown }).metrics?.() ?? []);
  app.get<{ Params: { vm: string } }>('/snapshots/:vm', async (request) => twin.listSnapshots(request.params.vm));
  app.get('/events', (request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    reply.raw.write(': connected\n\n');
    for (const wire of silent.values()) reply.raw.write(`data: ${JSON.stringify({ ...wire, nowMs: clock.nowMs() })}\n\n`);
    streams.add(reply.raw);
    request.raw.on('close', () => streams.delete(reply.raw));
  });
  app.post<{ Body: Fault }>('/faults/inject', async (request) => {
    twin.inject(request.body);
    return { ok: true };
  });
  app.post<{ Body: Fault }>('/faults/heal', async (request) => {
    twin.heal(request.body);
    return { ok: true };
  });
  app.get('/truth', async () => {
    const truth = twin.truth();
    return { nowMs: clock.nowMs(), splitBrainVms: truth.splitBrainVms, activeCopies: [...truth.activeCopies], healthyPrimaries: [...twin.healthyPrimaries()], refusals: twin.refusals.slice(-200) };
  });
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
    streams.clear();
  });
  return {
    app,
    twin,
    clock,
    close: async () => {
      await app.close();
      clock.close();
    },
  };
}
