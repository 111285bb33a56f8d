/**
 * model/ owns the blueprint: its format (schema.ts), the SLA tiers, loading with positions and
 * validation (load.ts), and the typed, frozen Blueprint. It imports only yaml and zod, never an
 * adapter, a clock or node: modules.
 */
export * from './blueprint.ts';
export * from './load.ts';
export * from './problems.ts';
export * from './schema.ts';
export * from './tiers.ts';
export * from './tier-rules.ts';
