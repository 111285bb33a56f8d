/**
 * Vite builds the dashboard from this folder into out/web (never committed). `tomaranai serve`
 * builds it on start when it is missing or stale (src/api/plugins/web.ts); `npm run build:web`
 * builds it by hand. Charts (ECharts) are split into their own chunk, loaded only by the views
 * that draw them, so the Hospital view paints without them.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../out/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
});
