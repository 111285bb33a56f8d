/** Snapshots of a VM and restores: an operator's restore is approved at once; a vendor's waits for one. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { allows } from '../../service/auth/roles.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import { NAME, ReasonBody } from '../schemas.ts';
import { inScope, requireVmInScope } from '../scope.ts';
import type { PluginOptions } from './types.ts';

const Snapshot = z.object({ id: z.string(), vm: z.string(), datastore: z.string(), takenAtMs: z.number(), retainUntilMs: z.number(), immutable: z.boolean(), digest: z.string() });
const Restore = z.object({ id: z.string(), snapshotId: z.string(), vm: z.string(), reason: z.string(), requestedBy: z.string(), status: z.enum(['awaiting-approval', 'approved', 'rejected']), decidedBy: z.string().nullable() });

export const snapshotsPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;

  route(
    app,
    { method: 'GET', url: '/vms/:vm/snapshots', summary: "A VM's snapshots, oldest first", tag: 'snapshots', permission: 'snapshots.read', params: z.object({ vm: NAME }), response: z.object({ snapshots: z.array(Snapshot) }), errors: ['TMR_API_NOT_FOUND', 'TMR_API_NOT_YOUR_SYSTEM'] },
    async ({ params, principal }) => {
      requireVmInScope(plane, principal, params.vm);
      return { snapshots: await plane.snapshots(params.vm) };
    },
  );

  route(
    app,
    {
      method: 'POST',
      url: '/vms/:vm/snapshots/:snapshot/restore',
      summary: 'Restore a VM from a snapshot, with a reason (a vendor\'s request waits for an operator\'s approval)',
      tag: 'snapshots',
      permission: 'restores.request',
      params: z.object({ vm: NAME, snapshot: NAME }),
      body: ReasonBody,
      response: Restore,
      responseStatus: 202,
      errors: ['TMR_API_NOT_FOUND', 'TMR_API_NOT_YOUR_SYSTEM', 'TMR_API_NOT_LEADER'],
    },
    async ({ params, body, principal }) => {
      requireVmInScope(plane, principal, params.vm);
      return plane.requestRestore(params.vm, params.snapshot, body.reason, actorOf(principal), allows(principal.role, 'snapshots.restore'));
    },
  );

  route(app, { method: 'GET', url: '/restores', summary: 'Restore requests and their approval (a vendor sees its own)', tag: 'snapshots', permission: 'restores.read', response: z.object({ restores: z.array(Restore) }) }, async ({ principal }) => ({
    restores: plane.restores().filter((restore) => inScope(plane, principal, plane.serviceOfVm(restore.vm) ?? '')),
  }));

  for (const [verb, approve] of [['approve', true], ['reject', false]] as const) {
    route(
      app,
      { method: 'POST', url: `/restores/:id/${verb}`, summary: `${verb === 'approve' ? 'Approve' : 'Reject'} a vendor's restore request`, tag: 'snapshots', permission: 'restores.decide', params: z.object({ id: z.string().max(100) }), body: ReasonBody, response: Restore, errors: ['TMR_API_NOT_FOUND', 'TMR_API_CONFLICT', 'TMR_API_NOT_LEADER'] },
      async ({ params, body, principal }) => plane.decideRestore(params.id, approve, actorOf(principal), body.reason),
    );
  }
};
