/** Health, readiness and the OpenAPI document (no account needed), and Prometheus metrics (a token with metrics.read). */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { buildOpenApi } from '../openapi.ts';
import { renderMetrics } from '../metrics.ts';
import { route } from '../route.ts';
import type { PluginOptions } from './types.ts';

const Health = z.object({ status: z.enum(['ok', 'not-ready']), role: z.string(), instanceId: z.string(), leaderId: z.string().nullable(), epoch: z.number(), detail: z.string() });

export const opsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const health = () =>
    deps.health?.() ?? { live: true, ready: true, role: deps.plane.leading ? 'leader' : 'follower', instanceId: 'local', leaderId: deps.plane.leaderId, epoch: deps.plane.epoch, detail: 'embedded' };

  route(app, { method: 'GET', url: '/healthz', summary: 'Liveness: the process serves requests', tag: 'operations', permission: null, response: Health }, async ({ reply }) => {
    const state = health();
    reply.code(state.live ? 200 : 503);
    return { status: state.live ? 'ok' : 'not-ready', role: state.role, instanceId: state.instanceId, leaderId: state.leaderId, epoch: state.epoch, detail: state.detail };
  });

  route(app, { method: 'GET', url: '/readyz', summary: 'Readiness: journal open, leading or following a known leader', tag: 'operations', permission: null, response: Health }, async ({ reply }) => {
    const state = health();
    reply.code(state.ready ? 200 : 503);
    return { status: state.ready ? 'ok' : 'not-ready', role: state.role, instanceId: state.instanceId, leaderId: state.leaderId, epoch: state.epoch, detail: state.detail };
  });

  // Metrics name every service and host: a scraper sends the token of an auditor (or operator) account.
  route(app, { method: 'GET', url: '/metrics', summary: 'Prometheus metrics (a token with metrics.read: admin, operator, auditor)', tag: 'operations', permission: 'metrics.read' }, async ({ reply }) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return renderMetrics(deps, health());
  });

  route(app, { method: 'GET', url: '/openapi.json', summary: 'This API as an OpenAPI 3.1 document', tag: 'operations', permission: null }, async () => buildOpenApi(app));
};
