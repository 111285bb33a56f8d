import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadBlueprint, type Blueprint } from '../../src/model/index.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const cache = new Map<string, Blueprint>();

/** Loads a shipped blueprint by its file name (without .yaml), failing loudly if it is invalid. */
export function shipped(name: 'university-hospital' | 'regional-hospital' | string): Blueprint {
  const known = cache.get(name);
  if (known) return known;
  const result = loadBlueprint(readFileSync(`${ROOT}blueprints/${name}.yaml`));
  if (!result.ok) throw new Error(`${name}: ${result.problems.map((problem) => problem.message).join('; ')}`);
  cache.set(name, result.blueprint);
  return result.blueprint;
}
