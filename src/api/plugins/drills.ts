/** Drills on a fresh simulated twin: start one, read its report. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { DrillSchema } from '../../dto/index.ts';
import { ALL_SCENARIOS as SCENARIOS } from '../../drill/sim/scenarios.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import type { PluginOptions } from './types.ts';

const Drill = DrillSchema;
const StartDrill = z.object({ scenario: z.enum(SCENARIOS.map((scenario) => scenario.name) as [string, ...string[]]), seed: z.number().int().min(0).max(0xffffffff).default(1) }).strict();

export const drillsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;
  route(
    app,
    { method: 'POST', url: '/drills', summary: 'Start a drill on a fresh simulated twin of the running blueprint', tag: 'drills', permission: 'drills.start', body: StartDrill, response: Drill, responseStatus: 202, errors: ['TMR_API_DRILL_RUNNING'] },
    async ({ body, principal }) => plane.startDrill(body.scenario, body.seed, actorOf(principal)),
  );
  route(app, { method: 'GET', url: '/drills', summary: 'Recent drills (the last 20)', tag: 'drills', permission: 'drills.read', response: z.object({ drills: z.array(Drill.omit({ report: true })) }) }, async () => ({
    drills: plane.listDrills().map(({ report: _report, ...drill }) => drill),
  }));
  route(
    app,
    { method: 'GET', url: '/drills/:id', summary: 'A drill and, once it ended, its report', tag: 'drills', permission: 'drills.read', params: z.object({ id: z.string().max(100) }), response: Drill, errors: ['TMR_API_NOT_FOUND'] },
    async ({ params }) => plane.drill(params.id),
  );
};
