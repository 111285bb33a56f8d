/**
 * Problems found in a blueprint: data first (code, path, position, message, hint), display apart.
 * Every code is registered here and documented in docs/errors.md (a test keeps them in step).
 */

export const PROBLEM_CODES = {
  TMR_BLUEPRINT_TOO_LARGE: 'The file is larger than a blueprint can reasonably be.',
  TMR_BLUEPRINT_NOT_TEXT: 'The file is not UTF-8 text.',
  TMR_BLUEPRINT_YAML: 'The YAML does not parse.',
  TMR_BLUEPRINT_TOO_DEEP: 'The document nests deeper than any blueprint needs.',
  TMR_BLUEPRINT_TOO_MANY_ALIASES: 'The document uses more YAML aliases than any blueprint needs.',
  TMR_BLUEPRINT_SCHEMA: 'A field is missing, unknown, or has the wrong type or range.',
  TMR_BLUEPRINT_DUPLICATE: 'Two things of one kind share a name.',
  TMR_BLUEPRINT_UNKNOWN_REF: 'A reference names something the blueprint does not define.',
  TMR_BLUEPRINT_UNKNOWN_TIER: 'A service names a tier that is neither a default nor defined.',
  TMR_BLUEPRINT_CYCLE: 'Services depend on each other in a cycle, so no restart order exists.',
  TMR_BLUEPRINT_VM_TOO_LARGE: 'A VM needs more CPU or memory than the largest host has.',
  TMR_BLUEPRINT_SINGLE_DOMAIN: 'A continuous service needs two failure domains, the blueprint has one.',
  TMR_BLUEPRINT_HOST_INCOMPLETE: 'A host has no model and lacks cores, ghz, memoryGiB or watts.',
  TMR_BLUEPRINT_TIER_INVERSION: 'A service depends on a service of a lower tier, which is shed first.',
  TMR_BLUEPRINT_REPLICA_ROOM: 'A datastore replicates to a datastore in its own room.',
  TMR_BLUEPRINT_FEED_ROOM: 'A host is fed by a power feed of another room.',
} as const;

export type ProblemCode = keyof typeof PROBLEM_CODES;

export interface Problem {
  readonly code: ProblemCode;
  readonly severity: 'error' | 'warning';
  /** Path of the offending field in the document, e.g. ["services", 3, "dependsOn", 0]. */
  readonly path: readonly (string | number)[];
  readonly line: number;
  readonly col: number;
  readonly message: string;
  readonly hint: string;
}

export function formatProblem(file: string, problem: Problem): string {
  const severity = problem.severity === 'warning' ? 'warning: ' : '';
  return `${file}:${problem.line}:${problem.col}: ${severity}${problem.message} (${problem.hint})`;
}
