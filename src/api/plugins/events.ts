/** The live stream of journal events (server-sent events), resumable with Last-Event-ID. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { vendorOf } from '../../service/auth/roles.ts';
import { apiError } from '../../errors/index.ts';
import { route } from '../route.ts';
import { actorOf } from '../principal.ts';
import { CLIENTS_PER_PRINCIPAL, type EventHub } from '../sse.ts';
import type { PluginOptions } from './types.ts';

export const eventsPlugin: FastifyPluginAsync<PluginOptions & { events: EventHub }> = async (app, { events }) => {
  route(
    app,
    {
      method: 'GET',
      url: '/events',
      summary: 'Journal events as text/event-stream; send Last-Event-ID (or ?lastEventId) to resume after that entry (a vendor sees its own systems)',
      tag: 'events',
      permission: 'events.read',
      query: z.object({ lastEventId: z.coerce.number().int().min(0).optional() }).strict(),
    },
    async ({ query, principal, request, reply }) => {
      const header = request.headers['last-event-id'];
      const fromHeader = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : null;
      const lastEventId = fromHeader ?? query.lastEventId ?? null;
      const vendor = vendorOf(principal.role);
      const admits = vendor === null ? () => true : events.vendorFilter(vendor);
      reply.hijack();
      const attached = events.attach(reply.raw, lastEventId, admits, actorOf(principal));
      if (attached !== 'attached') {
        const error = apiError(
          'TMR_API_TOO_MANY_STREAMS',
          attached === 'principal-full' ? `this account holds ${CLIENTS_PER_PRINCIPAL} event streams already` : 'the server holds as many event streams as it serves',
          attached === 'principal-full' ? 'close a stream you no longer read (each browser tab holds one), then retry' : 'retry later',
        );
        reply.raw.writeHead(error.status, { 'content-type': 'application/json', 'retry-after': '5' }).end(JSON.stringify(error.body()));
      }
    },
  );
};
