/** Acting on one VM: quarantine and release it, restart it (vendors: their own). */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { vendorOf } from '../../service/auth/roles.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import { NAME, Ok, ReasonBody } from '../schemas.ts';
import { inScope, requireVmInScope } from '../scope.ts';
import type { PluginOptions } from './types.ts';

const Params = z.object({ vm: NAME });
const RestartBody = z
  .object({
    reason: ReasonBody.shape.reason,
    /** When the disruption budget refuses the restart, hold it for another person's approval instead of refusing. */
    askApproval: z.boolean().default(false),
  })
  .strict();
const Approval = z.object({
  id: z.string(),
  kind: z.literal('restart'),
  vm: z.string(),
  reason: z.string(),
  breaks: z.string(),
  requestedBy: z.string(),
  requestedAtMs: z.number(),
  expiresAtMs: z.number(),
  expired: z.boolean(),
  status: z.enum(['awaiting-approval', 'approved', 'rejected']),
  decidedBy: z.string().nullable(),
});
const Restarted = z.object({ ok: z.literal(true), approval: Approval.nullable() });

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
    {
      method: 'POST',
      url: '/vms/:vm/restart',
      summary: "Restart a VM (its primary stops; the controller starts it again); with askApproval, one the disruption budget refuses is held for another person's approval",
      tag: 'vms',
      permission: 'vms.restart',
      params: Params,
      body: RestartBody,
      response: Restarted,
      responseStatus: 202,
      errors: ['TMR_API_NOT_FOUND', 'TMR_API_NOT_YOUR_SYSTEM', 'TMR_API_CONFLICT', 'TMR_API_DISRUPTION', 'TMR_API_OUTSIDE_WINDOW', 'TMR_API_ACTION_RATE_LIMITED', 'TMR_API_NOT_LEADER', 'TMR_API_SUBSTRATE_REFUSED'],
    },
    async ({ params, body, principal }) => {
      requireVmInScope(plane, principal, params.vm);
      const { approval } = await plane.restartVm(params.vm, body.reason, actorOf(principal), vendorOf(principal.role), body.askApproval);
      return { ok: true as const, approval };
    },
  );

  route(app, { method: 'GET', url: '/approvals', summary: 'Disruptive requests held for approval, and how they were decided (a vendor sees its own)', tag: 'vms', permission: 'approvals.read', response: z.object({ approvals: z.array(Approval) }) }, async ({ principal }) => ({
    approvals: plane.approvals().filter((approval) => inScope(plane, principal, plane.serviceOfVm(approval.vm) ?? '')),
  }));

  for (const [verb, approve] of [['approve', true], ['reject', false]] as const) {
    route(
      app,
      {
        method: 'POST',
        url: `/approvals/:id/${verb}`,
        summary: verb === 'approve' ? 'Approve a held disruptive request: it is carried out now, accepting what it said it would break' : 'Reject a held disruptive request',
        tag: 'vms',
        permission: 'disruptions.approve',
        params: z.object({ id: z.string().max(100) }),
        body: ReasonBody,
        response: Approval,
        errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT', 'TMR_API_ACTION_RATE_LIMITED', 'TMR_API_NOT_LEADER', 'TMR_API_SUBSTRATE_REFUSED'],
      },
      async ({ params, body, principal }) => plane.decideApproval(params.id, approve, actorOf(principal), body.reason),
    );
  }
};
