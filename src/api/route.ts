/**
 * One way to declare a route: its schemas (zod) are declared once and give request validation,
 * handler types and the OpenAPI document; its permission is checked before the body is read.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { z } from 'zod';
import type { Permission } from '../service/auth/roles.ts';
import { ApiError } from '../errors/index.ts';
import type { Principal } from './principal.ts';

export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined, P extends z.ZodType | undefined> {
  readonly method: HTTPMethods;
  readonly url: string;
  readonly summary: string;
  readonly tag: string;
  /** Null: no account needed (health, metrics, the OpenAPI document, logging in). */
  readonly permission: Permission | null;
  readonly body?: B;
  readonly query?: Q;
  readonly params?: P;
  readonly response?: z.ZodType;
  readonly responseStatus?: number;
  /** Extra documented error codes (401/403 are added for every protected route). */
  readonly errors?: readonly string[];
  readonly bodyLimitBytes?: number;
}

type Infer<T> = T extends z.ZodType ? z.infer<T> : undefined;

export interface RouteContext<B, Q, P> {
  readonly body: B;
  readonly query: Q;
  readonly params: P;
  readonly principal: Principal;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
}

export type AnyRouteSpec = RouteSpec<z.ZodType | undefined, z.ZodType | undefined, z.ZodType | undefined>;

/** The routes declared so far, for the OpenAPI document (one registry per app). */
export const ROUTES = Symbol('tomaranai.routes');

declare module 'fastify' {
  interface FastifyInstance {
    [ROUTES]: AnyRouteSpec[];
  }
  interface FastifyContextConfig {
    permission?: Permission | null;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function route<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined, P extends z.ZodType | undefined = undefined>(
  app: FastifyInstance,
  spec: RouteSpec<B, Q, P>,
  handler: (context: RouteContext<Infer<B>, Infer<Q>, Infer<P>>) => Promise<unknown>,
): void {
  app[ROUTES].push({ ...(spec as AnyRouteSpec), url: `${app.prefix}${spec.url}` });
  app.route({
    method: spec.method,
    url: spec.url,
    config: { permission: spec.permission },
    ...(spec.bodyLimitBytes === undefined ? {} : { bodyLimit: spec.bodyLimitBytes }),
    schema: {
      ...(spec.body ? { body: spec.body } : {}),
      ...(spec.query ? { querystring: spec.query } : {}),
      ...(spec.params ? { params: spec.params } : {}),
    },
    handler: async (request, reply) => {
      const principal = request.principal ?? ANONYMOUS;
      const result = await handler({
        body: request.body as Infer<B>,
        query: request.query as Infer<Q>,
        params: request.params as Infer<P>,
        principal,
        request,
        reply,
      });
      if (spec.responseStatus !== undefined) reply.code(spec.responseStatus);
      return result;
    },
  });
}

const ANONYMOUS: Principal = { username: 'anonymous', role: 'viewer', tokenId: null, anonymous: true };

/** Fastify's validator compiler for zod schemas: every issue is collected, each with its path. */
export function zodValidator({ schema }: { schema: unknown }) {
  const zodSchema = schema as z.ZodType;
  return (data: unknown) => {
    const result = zodSchema.safeParse(data);
    if (result.success) return { value: result.data };
    const issues = result.error.issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(root)', code: issue.code, message: issue.message }));
    return { error: new ApiError('TMR_API_VALIDATION', `${issues.length} field(s) at fault: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`.slice(0, 1000), undefined, issues) };
  };
}
