/** Hosts and their state; maintenance: evacuate, then hold until released. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import { NAME, Ok, ReasonBody } from '../schemas.ts';
import type { PluginOptions } from './types.ts';

const Host = z.object({
  name: z.string(),
  room: z.string(),
  rack: z.string(),
  status: z.string(),
  poweredOn: z.boolean().nullable(),
  maintenance: z.object({ reason: z.string(), actor: z.string() }).nullable(),
  vms: z.array(z.string()),
});

export const hostsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;
  route(app, { method: 'GET', url: '/hosts', summary: 'Every host with its status and what runs on it', tag: 'hosts', permission: 'hosts.read', response: z.object({ hosts: z.array(Host) }) }, async () => ({
    hosts: await plane.hosts(),
  }));

  route(
    app,
    { method: 'POST', url: '/hosts/:name/maintenance', summary: 'Evacuate a host (its VMs fail over or restart elsewhere) and hold it off', tag: 'hosts', permission: 'hosts.maintenance', params: z.object({ name: NAME }), body: ReasonBody, response: Ok, responseStatus: 202, errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT', 'TMR_API_NOT_LEADER', 'TMR_API_SUBSTRATE_REFUSED'] },
    async ({ params, body, principal }) => {
      await plane.evacuateHost(params.name, body.reason, actorOf(principal));
      return { ok: true as const };
    },
  );

  route(
    app,
    { method: 'DELETE', url: '/hosts/:name/maintenance', summary: 'Release a held host: it is powered on and rejoins', tag: 'hosts', permission: 'hosts.maintenance', params: z.object({ name: NAME }), body: ReasonBody, response: Ok, errors: ['TMR_API_CONFLICT', 'TMR_API_NOT_LEADER'] },
    async ({ params, body, principal }) => {
      await plane.releaseHost(params.name, body.reason, actorOf(principal));
      return { ok: true as const };
    },
  );
};
