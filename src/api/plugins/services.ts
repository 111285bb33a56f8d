/** Services and their state (a vendor sees only its own), and vendors' maintenance windows. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ServiceSchema, ServicesSchema } from '../../dto/index.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import { NAME, REASON } from '../schemas.ts';
import { inScope, requireServiceInScope } from '../scope.ts';
import type { PluginOptions } from './types.ts';

const Window = z.object({ id: z.string(), service: z.string(), fromMs: z.number(), toMs: z.number(), actor: z.string(), reason: z.string() });
const OpenWindow = z.object({ fromMs: z.number().int().nonnegative(), toMs: z.number().int().positive(), reason: REASON }).strict();

export const servicesPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;

  route(
    app,
    { method: 'GET', url: '/services', summary: 'Every service with its state and its VMs (a vendor sees its own)', tag: 'services', permission: 'status.read', response: ServicesSchema },
    async ({ principal }) => {
      const services = (await plane.services()).filter((service) => inScope(plane, principal, service.name));
      const summary = { up: 0, degraded: 0, down: 0 };
      for (const service of services) summary[service.state]++;
      return { summary, services };
    },
  );

  route(
    app,
    { method: 'GET', url: '/services/:name', summary: 'One service with its state', tag: 'services', permission: 'status.read', params: z.object({ name: NAME }), response: ServiceSchema, errors: ['TMR_API_NOT_FOUND', 'TMR_API_NOT_YOUR_SYSTEM'] },
    async ({ params, principal }) => {
      requireServiceInScope(plane, principal, params.name);
      return (await plane.services()).find((service) => service.name === params.name)!;
    },
  );

  route(
    app,
    { method: 'GET', url: '/services/:name/maintenance-windows', summary: "A service's maintenance windows", tag: 'services', permission: 'windows.read', params: z.object({ name: NAME }), response: z.object({ windows: z.array(Window) }) },
    async ({ params, principal }) => {
      requireServiceInScope(plane, principal, params.name);
      return { windows: [...plane.view.windows.values()].filter((window) => window.service === params.name) };
    },
  );

  route(
    app,
    { method: 'POST', url: '/services/:name/maintenance-windows', summary: 'Open a maintenance window for a service (vendors: their own)', tag: 'services', permission: 'windows.open', params: z.object({ name: NAME }), body: OpenWindow, response: Window, responseStatus: 201, errors: ['TMR_API_NOT_YOUR_SYSTEM', 'TMR_API_NOT_LEADER'] },
    async ({ params, body, principal }) => {
      requireServiceInScope(plane, principal, params.name);
      return plane.openMaintenanceWindow(params.name, body.fromMs, body.toMs, body.reason, actorOf(principal));
    },
  );
};
