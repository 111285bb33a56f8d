/**
 * The ports the core declares and adapters implement: Clock, Random, Substrate, Journal, and the
 * FaultInjector drills strike faults through.
 * Nothing here does I/O; adapters live under substrate/, journal/ and runtime/.
 */
export * from './clock.ts';
export * from './faults.ts';
export * from './journal.ts';
export * from './liveness.ts';
export * from './substrate.ts';
export * from './events.ts';
