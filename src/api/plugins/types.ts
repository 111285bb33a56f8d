import type { ApiDeps } from '../deps.ts';

export interface PluginOptions {
  readonly deps: ApiDeps;
}
