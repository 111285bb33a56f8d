/** The live stream of journal events (server-sent events), resumable with Last-Event-ID. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { vendorOf } from '../../service/auth/roles.ts';
import { apiError } from '../../errors/index.ts';
import { route } from '../route.ts';
import type { EventHub } from '../sse.ts';
import type { PluginOptions } from './types.ts';

export const eventsPlugin: FastifyPluginAsync<PluginOptions & { events: EventHub }> = async (app, { deps, events }) => {
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
      if (!events.attach(reply.raw, lastEventId, admits)) {
        const error = apiError('TMR_API_CONFLICT', 'too many event-stream clients', 'retry later');
        reply.raw.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify(error.body()));
      }
      void deps;
    },
  );
};
