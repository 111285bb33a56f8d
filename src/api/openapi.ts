/** The OpenAPI 3.1 document, built from the same zod schemas that validate the requests. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { API_ERRORS } from '../errors/index.ts';
import { ROUTES, type AnyRouteSpec } from './route.ts';
import { ErrorBody } from './schemas.ts';

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(spec: AnyRouteSpec): unknown[] {
  const list: unknown[] = [];
  for (const [where, schema] of [['path', spec.params], ['query', spec.query]] as const) {
    if (schema === undefined) continue;
    const object = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, property] of Object.entries(object.properties ?? {})) {
      list.push({ name, in: where, required: where === 'path' || (object.required ?? []).includes(name), schema: property });
    }
  }
  return list;
}

export function buildOpenApi(app: FastifyInstance): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of app[ROUTES]) {
    const path = spec.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const fullPath = path;
    const status = String(spec.responseStatus ?? 200);
    const codes = [...(spec.permission === null ? [] : ['TMR_API_UNAUTHENTICATED', 'TMR_API_TOKEN_INVALID', 'TMR_API_FORBIDDEN']), ...(spec.body || spec.query || spec.params ? ['TMR_API_VALIDATION'] : []), ...(spec.errors ?? [])];
    const responses: Record<string, unknown> = {
      [status]: { description: 'success', ...(spec.response ? { content: { 'application/json': { schema: jsonSchema(spec.response, 'output') } } } : {}) },
    };
    for (const code of codes) {
      const known = API_ERRORS[code as keyof typeof API_ERRORS];
      if (known === undefined) continue;
      const key = String(known.status);
      const existing = responses[key] as { description: string } | undefined;
      responses[key] = { description: existing ? `${existing.description}; ${code}` : code, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    paths[fullPath] ??= {};
    paths[fullPath]![spec.method.toString().toLowerCase()] = {
      summary: spec.summary,
      tags: [spec.tag],
      ...(spec.permission === null ? { security: [] } : { 'x-permission': spec.permission }),
      parameters: parameters(spec),
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Tomaranai control plane', version: '1', description: 'Every /api/v1 call needs "Authorization: Bearer <token>". Errors carry a stable code, a message and a hint.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: { Error: jsonSchema(ErrorBody, 'output') },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
