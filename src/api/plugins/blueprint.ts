/** The blueprint: read the running one; review a candidate (validate, diff, plan); apply it. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { BLUEPRINT_SIZE_LIMIT_BYTES } from '../../model/index.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import { REASON } from '../schemas.ts';
import type { PluginOptions } from './types.ts';

const BlueprintInfo = z.object({ name: z.string(), version: z.number(), sha256: z.string(), services: z.number(), vms: z.number(), hosts: z.number(), source: z.string() });
const Candidate = z.object({ source: z.string().min(1).max(BLUEPRINT_SIZE_LIMIT_BYTES) }).strict();
const Apply = z.object({ source: z.string().min(1).max(BLUEPRINT_SIZE_LIMIT_BYTES), baseVersion: z.number().int().positive(), reason: REASON }).strict();
const Change = z.object({ name: z.string(), changes: z.array(z.string()) });
const Diff = z.object({
  unchanged: z.boolean(),
  services: z.object({ added: z.array(z.string()), removed: z.array(z.string()), changed: z.array(Change) }),
  hosts: z.object({ added: z.array(z.string()), removed: z.array(z.string()), changed: z.array(Change) }),
  vms: z.object({ added: z.array(z.string()), removed: z.array(z.string()) }),
  flows: z.object({ added: z.number(), removed: z.number() }),
  tiers: z.object({ changed: z.array(z.string()) }),
});
export const PlanSchema = z.object({
  placements: z.array(z.object({ vm: z.string(), service: z.string(), tier: z.string(), primary: z.string(), secondary: z.string().nullable() })),
  unplaced: z.array(z.object({ vm: z.string(), reason: z.string() })),
  restartOrder: z.array(z.string()),
});
const Review = z.object({ baseVersion: z.number(), name: z.string(), diff: Diff, plan: PlanSchema, warnings: z.array(z.object({ code: z.string(), message: z.string() })) });
const BODY_LIMIT = BLUEPRINT_SIZE_LIMIT_BYTES * 2 + 64 * 1024;

export const blueprintPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  const plane = deps.plane;

  route(app, { method: 'GET', url: '/blueprint', summary: 'The running blueprint, its version and source', tag: 'blueprint', permission: 'blueprint.read', response: BlueprintInfo }, async () => plane.blueprintInfo());

  route(
    app,
    { method: 'POST', url: '/blueprint/review', summary: 'Validate a candidate, diff it against the running one and plan it; changes nothing', tag: 'blueprint', permission: 'blueprint.apply', body: Candidate, response: Review, errors: ['TMR_API_BLUEPRINT_INVALID'], bodyLimitBytes: BODY_LIMIT },
    async ({ body }) => {
      const review = await plane.reviewBlueprint(body.source);
      return { baseVersion: plane.blueprintVersion, name: review.blueprint.name, diff: review.diff, plan: review.plan, warnings: review.warnings.map((warning) => ({ code: warning.code, message: warning.message })) };
    },
  );

  route(
    app,
    {
      method: 'PUT',
      url: '/blueprint',
      summary: 'Apply a reviewed blueprint: validated, diffed and planned again, refused if the running version moved',
      tag: 'blueprint',
      permission: 'blueprint.apply',
      body: Apply,
      response: z.object({ version: z.number(), diff: Diff, plan: PlanSchema }),
      errors: ['TMR_API_BLUEPRINT_INVALID', 'TMR_API_BLUEPRINT_STALE', 'TMR_API_CONFLICT', 'TMR_API_NOT_LEADER'],
      bodyLimitBytes: BODY_LIMIT,
    },
    async ({ body, principal }) => plane.applyBlueprint(body.source, body.baseVersion, actorOf(principal), body.reason),
  );

  route(app, { method: 'GET', url: '/plan', summary: 'The placement plan and restart order of the running blueprint', tag: 'blueprint', permission: 'plan.read', response: PlanSchema }, async () => plane.plan());
};
