/**
 * The dashboard: the static bundle that Vite builds from src/web into out/web, served at `/`.
 * Nothing built is committed. `tomaranai serve` (and the end-to-end tests) call `ensureDashboard()`
 * first, which builds the bundle when it is missing or older than its sources; the API itself
 * never builds, so API tests and followers start at once. Without a bundle, `/` says how to make one.
 * The bundle needs no account (it holds no data); everything it shows comes from /api/v1 with the
 * user's token.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WEB_SOURCE_DIR = join(ROOT, 'src/web');
export const WEB_BUNDLE_DIR = join(ROOT, 'out/web');
const STAMP = '.built-from';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.ico': 'image/x-icon',
};

function newestMtimeMs(directory: string, depth = 0): number {
  if (depth > 6) return 0;
  let newest = 0;
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestMtimeMs(path, depth + 1) : stat.mtimeMs);
  }
  return newest;
}

/** True when out/web holds a bundle at least as new as every file under src/web. */
export function dashboardIsFresh(): boolean {
  const stamp = join(WEB_BUNDLE_DIR, STAMP);
  if (!existsSync(stamp) || !existsSync(join(WEB_BUNDLE_DIR, 'index.html'))) return false;
  return Number(readFileSync(stamp, 'utf8')) >= newestMtimeMs(WEB_SOURCE_DIR);
}

let building: Promise<'built' | 'fresh' | 'unavailable'> | null = null;

/**
 * Builds the dashboard with Vite when the bundle is missing or stale (a few seconds, once). The
 * build goes to a fresh directory that replaces out/web in one rename, so a server never serves
 * half a bundle. Vite is a development dependency: a production install without it serves the
 * bundle it was shipped with, or the "not built" page.
 */
export function ensureDashboard(log: (line: string) => void = () => {}): Promise<'built' | 'fresh' | 'unavailable'> {
  building ??= (async () => {
    if (dashboardIsFresh()) return 'fresh' as const;
    let vite: typeof import('vite');
    try {
      vite = await import('vite');
    } catch {
      log('the dashboard is not built and Vite is not installed: run `npm install`, then `npm run build:web`\n');
      return 'unavailable' as const;
    }
    const sourceMtimeMs = newestMtimeMs(WEB_SOURCE_DIR);
    const staging = `${WEB_BUNDLE_DIR}.staging-${process.pid}`;
    log('building the dashboard (once, with Vite)…\n');
    await vite.build({ configFile: join(WEB_SOURCE_DIR, 'vite.config.ts'), logLevel: 'warn', build: { outDir: staging, emptyOutDir: true } });
    writeFileSync(join(staging, STAMP), String(sourceMtimeMs));
    rmSync(WEB_BUNDLE_DIR, { recursive: true, force: true });
    renameSync(staging, WEB_BUNDLE_DIR);
    return 'built' as const;
  })().finally(() => {
    building = null;
  });
  return building;
}

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Tomaranai</title>
<main style="font-family:sans-serif;max-width:40em;margin:3em auto"><h1>The dashboard is not built</h1>
<p>Run <code>npm run build:web</code> (or start the service with <code>npx tomaranai serve</code>, which builds it), then reload. The API is at <a href="/openapi.json">/openapi.json</a>.</p></main></html>`;

export const webPlugin: FastifyPluginAsync<{ bundleDir?: string }> = async (app, options) => {
  const bundle = options.bundleDir ?? WEB_BUNDLE_DIR;
  const sendFile = (path: string, reply: import('fastify').FastifyReply, immutable: boolean) => {
    const body = readFileSync(path);
    reply.header('content-type', TYPES[extname(path)] ?? 'application/octet-stream');
    reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    reply.header('x-content-type-options', 'nosniff');
    return reply.send(body);
  };

  const index = async (_request: unknown, reply: import('fastify').FastifyReply) => {
    const path = join(bundle, 'index.html');
    if (!existsSync(path)) return reply.code(503).type('text/html; charset=utf-8').send(NOT_BUILT);
    reply.header('content-security-policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
    return sendFile(path, reply, false);
  };
  app.get('/', index);
  app.get('/index.html', index);
  app.get('/assets/*', async (request, reply) => {
    const wanted = (request.params as { '*': string })['*'];
    const path = normalize(join(bundle, 'assets', wanted));
    // No path may leave the bundle's assets folder.
    if (!path.startsWith(join(bundle, 'assets') + sep) || !existsSync(path) || !statSync(path).isFile()) {
      return reply.code(404).type('application/json').send(JSON.stringify({ error: { code: 'TMR_API_ROUTE_NOT_FOUND', message: `no asset ${wanted}`, hint: 'reload the dashboard', transient: false } }));
    }
    return sendFile(path, reply, true);
  });
};
