import type { ApiDeps } from '../app.ts';

export interface PluginOptions {
  readonly deps: ApiDeps;
}
