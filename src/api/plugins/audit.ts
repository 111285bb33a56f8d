/** The audit log: read the journal, verify its chain, export a signed range. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AuditPageSchema, VerdictSchema } from '../../dto/index.ts';
import { exportAudit } from '../../service/audit.ts';
import { entriesBetween } from '../../journal/store.ts';
import { verifyChain } from '../../journal/chain.ts';
import { actorOf } from '../principal.ts';
import { route } from '../route.ts';
import type { PluginOptions } from './types.ts';

const TIME = z.union([z.coerce.number().int(), z.iso.datetime({ offset: true })]);

function toMs(value: number | string): number {
  return typeof value === 'number' ? value : Date.parse(value);
}

export const auditPlugin: FastifyPluginAsync<PluginOptions> = async (app, { deps }) => {
  route(
    app,
    { method: 'GET', url: '/audit', summary: 'Journal entries from a sequence number (paged)', tag: 'audit', permission: 'audit.read', query: z.object({ fromSeq: z.coerce.number().int().min(1).default(1), limit: z.coerce.number().int().min(1).max(5000).default(500) }).strict(), response: AuditPageSchema },
    async ({ query }) => {
      const entries = entriesBetween(deps.journal, query.fromSeq, Number.MAX_SAFE_INTEGER, query.limit);
      const last = entries.at(-1);
      return { entries, nextSeq: last !== undefined && last.seq < deps.journal.length ? last.seq + 1 : null, length: deps.journal.length };
    },
  );
  route(app, { method: 'GET', url: '/audit/verify', summary: 'Verify the hash chain; names the first changed, removed or reordered entry', tag: 'audit', permission: 'audit.verify', response: VerdictSchema }, async () => verifyChain(deps.journal.entries()));
  route(
    app,
    { method: 'GET', url: '/audit/export', summary: 'A signed export of the entries between two times (ISO 8601 or journal ms)', tag: 'audit', permission: 'audit.export', query: z.object({ from: TIME, to: TIME }).strict() },
    async ({ query, principal }) =>
      exportAudit({ journal: deps.journal, signer: deps.signer, fromMs: toMs(query.from), toMs: toMs(query.to), actor: actorOf(principal), nowMs: (deps.wallNowMs ?? Date.now)() }),
  );
  route(app, { method: 'GET', url: '/audit/public-key', summary: 'The public key that signs audit exports (PEM)', tag: 'audit', permission: 'audit.read', response: z.object({ publicKeyPem: z.string() }) }, async () => ({
    publicKeyPem: deps.signer.publicKeyPem,
  }));
};
