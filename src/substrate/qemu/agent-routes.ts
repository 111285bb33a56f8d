/**
 * The host agent's HTTP edge on the management network: every call carries the lab's bearer token
 * (compared in constant time; a wrong one changes nothing), every body is checked against its
 * strict schema (agent-protocol.ts) before anything runs, and an authenticated call is what tells
 * the agent the control plane can still reach it (the self-fence of agent-heartbeat.ts counts on
 * that silence). A refused operation answers 409 with the reason, a malformed body 400.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { AgentHost } from './agent-host.ts';
import { isControlPlaneCertificate, type TlsMaterial } from './agent-tls.ts';
import type { VmOperations } from './agent-operations.ts';
import { type AgentAnswer, EpochBody, MigrateBody, PolicyBody, PromoteBody, QuarantineBody, RestoreStartBody, RestoreStopBody, SharesBody, SnapshotBody, StartBody, VmBody } from './agent-protocol.ts';
import type { RestoreOperations } from './agent-restore.ts';
import type { BlockTelemetryReader } from './block-telemetry.ts';
import { applyPolicy, quarantine } from './network-policy.ts';

/** Large enough for a segmentation policy of 20,000 rules. */
const BODY_LIMIT_BYTES = 2 * 1024 * 1024;

function authorized(header: string | undefined, token: Buffer): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const offered = Buffer.from(header.slice(7), 'utf8');
  return offered.length === token.length && timingSafeEqual(offered, token);
}

export function buildAgentServer(options: {
  readonly host: AgentHost;
  readonly operations: VmOperations;
  readonly restores: RestoreOperations;
  readonly telemetry: BlockTelemetryReader;
  readonly token: Buffer;
  readonly tls?: TlsMaterial;
}): FastifyInstance {
  const { host, operations, restores, telemetry, token, tls } = options;
  // With TLS, the handshake itself refuses a client without a certificate of our CA.
  const app = tls === undefined ? Fastify({ logger: false, bodyLimit: BODY_LIMIT_BYTES }) : (Fastify({ logger: false, bodyLimit: BODY_LIMIT_BYTES, https: { key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true } }) as unknown as FastifyInstance);
  app.addHook('onRequest', async (request, reply) => {
    // Our CA also signs the other hosts' agents: only the control plane's certificate may command.
    if (tls !== undefined && !isControlPlaneCertificate(request.raw.socket)) {
      await reply.code(403).send({ ok: false, reason: 'the client certificate is not the control plane\'s' });
      return reply;
    }
    if (!authorized(request.headers.authorization, token)) {
      await reply.code(401).send({ ok: false, reason: 'missing or wrong bearer token' });
      return reply;
    }
    host.lastHeardMs = performance.now();
    return undefined;
  });
  const handle = <S extends z.ZodType>(schema: S, work: (body: z.infer<S>) => Promise<AgentAnswer>) =>
    async (request: { body: unknown }, reply: FastifyReply) => {
      const parsed = schema.safeParse(request.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        return reply.code(400).send({ ok: false, reason: `bad request at ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}` });
      }
      const answer = await work(parsed.data);
      return reply.code(answer.ok ? 200 : 409).send(answer);
    };
  app.get('/state', () => host.state());
  app.post('/epoch', handle(EpochBody, async (body) => {
    const refused = await host.checkEpoch(body.epoch);
    return refused === null ? { ok: true } : { ok: false, reason: refused };
  }));
  app.post('/vms/start', handle(StartBody, (body) => operations.startVm(body)));
  app.post('/vms/stop', handle(VmBody, (body) => operations.stopVm(body)));
  app.post('/vms/promote', handle(PromoteBody, (body) => operations.promote(body)));
  app.post('/vms/migrate', handle(MigrateBody, (body) => operations.migrateOut(body)));
  app.post('/vms/adopt', handle(PromoteBody, (body) => operations.adoptMigrated(body)));
  app.post('/vms/shares', handle(SharesBody, (body) => operations.setShares(body)));
  app.post('/vms/quarantine', handle(QuarantineBody, (body) => quarantine(host, body)));
  app.post('/vms/snapshot', handle(SnapshotBody, (body) => operations.snapshot(body)));
  app.post('/policy', handle(PolicyBody, (body) => applyPolicy(host, body)));
  // Security telemetry (block-telemetry.ts): each reading closes the previous window.
  app.get('/telemetry', () => telemetry.read());
  app.post('/vms/restore', handle(RestoreStartBody, (body) => restores.start(body)));
  app.post('/vms/restore-stop', handle(RestoreStopBody, (body) => restores.stop(body)));
  return app;
}
