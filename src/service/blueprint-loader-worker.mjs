// The worker thread's entry: the sources are TypeScript, so it registers tsx (as bin/tomaranai.js
// does) before it loads the worker module itself.
import { register } from 'tsx/esm/api';
register();
await import('./blueprint-loader-worker.ts');
