// The storm worker thread's entry: the sources are TypeScript, so it registers tsx (as
// bin/tomaranai.js and the blueprint loader's worker do) before it loads the worker itself.
import { register } from 'tsx/esm/api';
register();
await import('./storm-worker.ts');
