/** Incidents (a host failed, was isolated or lost storage) and their timelines from the journal. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { route } from '../route.ts';
import { JournalEntrySchema } from '../schemas.ts';
import type { PluginOptions } from './types.ts';

const Incident = z.object({
  id: z.string(),
  kind: z.string(),
  host: z.string(),
  startedAtMs: z.number(),
  detectedAtMs: z.number(),
  fencedAtMs: z.number().nullable(),
  recoveredAtMs: z.number().nullable(),
  vmsAffected: z.array(z.string()),
});

export const incidentsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;
  const summary = ({ timeline: _timeline, ...incident }: ReturnType<typeof plane.incidents>[number]) => incident;
  route(
    app,
    { method: 'GET', url: '/incidents', summary: 'Incidents, newest first', tag: 'incidents', permission: 'incidents.read', query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict(), response: z.object({ incidents: z.array(Incident) }) },
    async ({ query }) => ({ incidents: [...plane.incidents()].reverse().slice(0, query.limit).map(summary) }),
  );
  route(
    app,
    { method: 'GET', url: '/incidents/:id', summary: 'One incident with its timeline (journal entries)', tag: 'incidents', permission: 'incidents.read', params: z.object({ id: z.string().max(100) }), response: z.object({ incident: Incident, timeline: z.array(JournalEntrySchema) }), errors: ['TMR_API_NOT_FOUND'] },
    async ({ params }) => {
      const found = plane.incident(params.id);
      return { incident: summary(found.incident), timeline: found.timeline };
    },
  );
};
