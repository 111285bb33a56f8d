/** Acting on one VM: quarantine and release it, restart it (vendors: their own). */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { vendorOf } from '../../service/auth/roles.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import { NAME, Ok, ReasonBody } from '../schemas.ts';
import { requireVmInScope } from '../scope.ts';
import type { PluginOptions } from './types.ts';

const Params = z.object({ vm: NAME });

export const vmsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;
  route(
    app,
    { method: 'POST', url: '/vms/:vm/quarantine', summary: 'Quarantine a VM: it may reach only the forensic network', tag: 'vms', permission: 'vms.quarantine', params: Params, body: ReasonBody, response: Ok, errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT', 'TMR_API_NOT_LEADER'] },
    async ({ params, body, principal }) => {
      await plane.quarantine(params.vm, body.reason, actorOf(principal));
      return { ok: true as const };
    },
  );
  route(
    app,
    { method: 'DELETE', url: '/vms/:vm/quarantine', summary: 'Release a quarantined VM', tag: 'vms', permission: 'vms.quarantine', params: Params, body: ReasonBody, response: Ok, errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT', 'TMR_API_NOT_LEADER'] },
    async ({ params, body, principal }) => {
      await plane.release(params.vm, body.reason, actorOf(principal));
      return { ok: true as const };
    },
  );
  route(
    app,
    { method: 'POST', url: '/vms/:vm/restart', summary: 'Restart a VM (its primary stops; the controller starts it again)', tag: 'vms', permission: 'vms.restart', params: Params, body: ReasonBody, response: Ok, responseStatus: 202, errors: ['TMR_API_NOT_FOUND', 'TMR_API_NOT_YOUR_SYSTEM', 'TMR_API_CONFLICT', 'TMR_API_DISRUPTION', 'TMR_API_OUTSIDE_WINDOW', 'TMR_API_ACTION_RATE_LIMITED', 'TMR_API_NOT_LEADER', 'TMR_API_SUBSTRATE_REFUSED'] },
    async ({ params, body, principal }) => {
      requireVmInScope(plane, principal, params.vm);
      await plane.restartVm(params.vm, body.reason, actorOf(principal), vendorOf(principal.role));
      return { ok: true as const };
    },
  );
};
