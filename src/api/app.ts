/**
 * api/ owns the HTTP face of the control plane: buildApp(deps) builds a Fastify app (it does not
 * listen), one plugin per resource, token authentication, the role checks, coded errors, the
 * OpenAPI document, server-sent events and Prometheus metrics. It may import the service's
 * ControlPlane, the journal stores and the core's types; nothing in the core imports it.
 */
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import { allows } from '../service/auth/roles.ts';
import { LoginLimiter } from './auth/rate-limit.ts';
import { ApiError, apiError } from '../errors/index.ts';
import { actorOf } from './principal.ts';
import { ROUTES, zodValidator } from './route.ts';
import { EventHub } from './sse.ts';
import { accountsPlugin } from './plugins/accounts.ts';
import { credentialsPlugin } from './plugins/credentials.ts';
import { directoryPlugin } from './plugins/directory.ts';
import { auditPlugin } from './plugins/audit.ts';
import { blueprintPlugin } from './plugins/blueprint.ts';
import { drillsPlugin } from './plugins/drills.ts';
import { eventsPlugin } from './plugins/events.ts';
import { hostsPlugin } from './plugins/hosts.ts';
import { insightPlugin } from './plugins/insight.ts';
import { incidentsPlugin } from './plugins/incidents.ts';
import { notificationsPlugin } from './plugins/notifications.ts';
import { opsPlugin } from './plugins/ops.ts';
import { servicesPlugin } from './plugins/services.ts';
import { snapshotsPlugin } from './plugins/snapshots.ts';
import { vmsPlugin } from './plugins/vms.ts';
import { webPlugin } from './plugins/web.ts';

export type { ApiApp, ApiDeps, HealthState } from './deps.ts';
import type { ApiDeps } from './deps.ts';

/** Bodies other than a blueprint's: small JSON documents (a login's is smaller still, see accounts.ts). */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const loggerOption = deps.logger ?? false;
  const isInstance = typeof loggerOption === 'object' && loggerOption !== null && 'info' in loggerOption && typeof loggerOption.info === 'function';
  // With a key and certificate the server speaks HTTPS; the routes and plugins are the same either way.
  const app = Fastify({
    ...(deps.tls ? { https: { key: deps.tls.key, cert: deps.tls.cert, minVersion: 'TLSv1.2' as const } } : {}),
    ...(isInstance
      ? { loggerInstance: loggerOption as FastifyBaseLogger }
      : {
          logger:
            loggerOption === false
              ? false
              : {
                  ...(typeof loggerOption === 'object' ? loggerOption : {}),
                  // Tokens and passwords never reach a log: headers and bodies are not logged at all.
                  redact: { paths: ['req.headers.authorization', 'req.headers.cookie', 'body.password', 'password', 'token'], censor: '[redacted]' },
                  serializers: {
                    req: (request: { method: string; url: string; ip?: string; id: string }) => ({ method: request.method, url: request.url.split('?')[0], ip: request.ip, id: request.id }),
                  },
                },
        }),
    // Every body but a blueprint's is a small JSON document; the blueprint routes set their own limit.
    bodyLimit: DEFAULT_BODY_LIMIT_BYTES,
    // Only a proxy the operator names may say who the client is (login protection counts per address).
    trustProxy: deps.trustProxy === undefined || deps.trustProxy.length === 0 ? false : [...deps.trustProxy],
    return503OnClosing: true,
    // A request HTTP cannot even parse gets a coded answer too, not Node's bare "400 Bad Request".
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return;
      const body = JSON.stringify(new ApiError('TMR_API_MALFORMED_HTTP', `the request is not valid HTTP/1.1: ${error.message}`.slice(0, 300)).body());
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    },
  });
  // Security headers on every response (helmet's defaults: nosniff, same-origin framing only, a
  // same-origin content security policy the dashboard keeps to, no referrer, …); HSTS only over TLS.
  await app.register(helmet, { hsts: deps.tls ? { maxAge: 31_536_000, includeSubDomains: false } : false, crossOriginEmbedderPolicy: false });
  // Only the OpenID login reads a cookie (its browser binding); the API itself takes bearer tokens.
  await app.register(cookie);
  // API answers are about live state: no cache keeps them.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/') && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.decorate(ROUTES, []);
  app.decorateRequest('principal', null);
  app.setValidatorCompiler(zodValidator);
  // Response schemas document; responses are plain JSON.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    const apiErr = toApiError(error);
    if (apiErr.status >= 500) request.log.error({ err: error, code: apiErr.code }, 'request failed');
    else request.log.info({ code: apiErr.code, actor: request.principal ? actorOf(request.principal) : 'anonymous' }, 'request refused');
    if (apiErr.code === 'TMR_API_LOGIN_RATE_LIMITED' && apiErr.retryAfterS !== undefined) reply.header('retry-after', String(apiErr.retryAfterS));
    return reply.code(apiErr.status).type('application/json').send(JSON.stringify(apiErr.body()));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = apiError('TMR_API_ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(error.status).type('application/json').send(JSON.stringify(error.body()));
  });

  // Authentication and the role check run before the body is parsed or validated, so a refused
  // caller learns nothing about the input and changes nothing.
  app.addHook('onRequest', async (request) => {
    const permission = request.routeOptions.config.permission;
    if (permission === undefined || permission === null) return;
    const header = request.headers.authorization;
    if (header === undefined || header === '') throw apiError('TMR_API_UNAUTHENTICATED');
    const match = /^Bearer ([A-Za-z0-9_\-.~+/=]{8,200})$/.exec(header);
    if (match === null) throw apiError('TMR_API_TOKEN_INVALID', 'the Authorization header is not "Bearer <token>"');
    const resolved = await deps.accounts.resolveToken(match[1]!);
    if (resolved === null) throw apiError('TMR_API_TOKEN_INVALID');
    request.principal = { username: resolved.account.username, role: resolved.account.role, tokenId: resolved.token.id };
    if (!allows(resolved.account.role, permission)) throw apiError('TMR_API_FORBIDDEN', `role ${resolved.account.role} may not ${permission.replace('.', ' ')}`);
  });

  // Every mutating call that changed something is journaled with its actor (refusals go to the log).
  app.addHook('onResponse', async (request, reply) => {
    if (!MUTATING.has(request.method) || reply.statusCode >= 400 || !request.url.startsWith('/api/v1/')) return;
    if (!deps.plane.leading) return;
    deps.plane.record('audit', 'api.request', request.routeOptions.url ?? request.url, request.principal ? actorOf(request.principal) : 'anonymous', {
      method: request.method,
      status: reply.statusCode,
      requestId: request.id,
    });
  });

  const events = new EventHub(deps.journal, deps.plane, { heartbeatMs: deps.sseHeartbeatMs ?? 15_000 });
  app.addHook('onClose', async () => events.close());
  // Server-sent event streams never end on their own: close them first when the server stops.
  app.addHook('preClose', async () => events.close());

  await app.register(opsPlugin, { deps });
  await app.register(accountsPlugin, { deps, prefix: '/api/v1' });
  await app.register(credentialsPlugin, { deps, prefix: '/api/v1' });
  await app.register(directoryPlugin, { deps, prefix: '/api/v1' });
  await app.register(blueprintPlugin, { deps, prefix: '/api/v1' });
  await app.register(servicesPlugin, { deps, prefix: '/api/v1' });
  await app.register(hostsPlugin, { deps, prefix: '/api/v1' });
  await app.register(incidentsPlugin, { deps, prefix: '/api/v1' });
  await app.register(drillsPlugin, { deps, prefix: '/api/v1' });
  await app.register(snapshotsPlugin, { deps, prefix: '/api/v1' });
  await app.register(vmsPlugin, { deps, prefix: '/api/v1' });
  await app.register(auditPlugin, { deps, prefix: '/api/v1' });
  await app.register(eventsPlugin, { deps, events, prefix: '/api/v1' });
  await app.register(insightPlugin, { deps, prefix: '/api/v1' });
  await app.register(notificationsPlugin, { deps, prefix: '/api/v1' });
  await app.register(webPlugin);
  return app;
}

function toApiError(error: FastifyError | ApiError): ApiError & { retryAfterS?: number } {
  if (error instanceof ApiError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return apiError('TMR_API_PAYLOAD_TOO_LARGE');
  const status = fastifyError.statusCode ?? 500;
  if (status === 404) return apiError('TMR_API_ROUTE_NOT_FOUND');
  if (status >= 400 && status < 500) {
    return new ApiError('TMR_API_VALIDATION', `the request cannot be read: ${fastifyError.message}`.slice(0, 500), undefined, [{ path: '(body)', code: fastifyError.code ?? 'invalid', message: fastifyError.message }]);
  }
  return apiError('TMR_API_INTERNAL');
}
