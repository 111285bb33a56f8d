/**
 * SLA tiers: what a clinical system must survive, and the mechanism that delivers it.
 * The defaults are DESIGN.md's table; a blueprint may override any field or add tiers.
 */

export type RecoveryMechanism = 'failover' | 'restart' | 'restore';
export type ReplicationMode = 'sync' | 'async';
export type AntiAffinity = 'room' | 'rack' | 'host' | 'none';

export interface Tier {
  readonly name: string;
  /** Recovery time objective: fault → health check passing again. */
  readonly rtoS: number;
  /** Recovery point objective: how much acknowledged data may be lost. */
  readonly rpoS: number;
  readonly mechanism: RecoveryMechanism;
  /** Lower numbers restart first and are shed last. */
  readonly priority: number;
  readonly replication: { readonly mode: ReplicationMode; readonly intervalS: number };
  readonly snapshot: { readonly intervalS: number; readonly retentionS: number; readonly immutable: boolean };
  /** vCPU per physical core allowed on a host for VMs of this tier (1.0 = no overcommit). */
  readonly cpuOvercommit: number;
  readonly memoryOvercommit: boolean;
  readonly antiAffinity: AntiAffinity;
  /** Capacity is reserved so that this tier restarts after any single host failure. */
  readonly reserveFailoverCapacity: boolean;
  /** May be stopped to free capacity for a higher tier. */
  readonly sheddable: boolean;
  readonly costWeight: number;
}

const MINUTE_S = 60;
const HOUR_S = 3600;
const DAY_S = 86_400;

export const DEFAULT_TIERS: Readonly<Record<string, Tier>> = Object.freeze({
  continuous: {
    name: 'continuous',
    rtoS: 5,
    rpoS: 0,
    mechanism: 'failover',
    priority: 0,
    replication: { mode: 'sync', intervalS: 0 },
    snapshot: { intervalS: 15 * MINUTE_S, retentionS: 14 * DAY_S, immutable: true },
    cpuOvercommit: 1.0,
    memoryOvercommit: false,
    antiAffinity: 'room',
    reserveFailoverCapacity: true,
    sheddable: false,
    costWeight: 4,
  },
  critical: {
    name: 'critical',
    rtoS: 5 * MINUTE_S,
    rpoS: 0,
    mechanism: 'restart',
    priority: 1,
    replication: { mode: 'sync', intervalS: 0 },
    snapshot: { intervalS: 15 * MINUTE_S, retentionS: 14 * DAY_S, immutable: true },
    cpuOvercommit: 1.0,
    memoryOvercommit: false,
    antiAffinity: 'host',
    reserveFailoverCapacity: true,
    sheddable: false,
    costWeight: 2,
  },
  standard: {
    name: 'standard',
    rtoS: HOUR_S,
    rpoS: 15 * MINUTE_S,
    mechanism: 'restart',
    priority: 2,
    replication: { mode: 'async', intervalS: 5 * MINUTE_S },
    snapshot: { intervalS: 15 * MINUTE_S, retentionS: 7 * DAY_S, immutable: true },
    cpuOvercommit: 2.0,
    memoryOvercommit: true,
    antiAffinity: 'host',
    reserveFailoverCapacity: false,
    sheddable: true,
    costWeight: 1,
  },
  deferred: {
    name: 'deferred',
    rtoS: DAY_S,
    rpoS: DAY_S,
    mechanism: 'restore',
    priority: 3,
    replication: { mode: 'async', intervalS: 6 * HOUR_S },
    snapshot: { intervalS: DAY_S, retentionS: 30 * DAY_S, immutable: true },
    cpuOvercommit: 4.0,
    memoryOvercommit: true,
    antiAffinity: 'none',
    reserveFailoverCapacity: false,
    sheddable: true,
    costWeight: 0.5,
  },
});
