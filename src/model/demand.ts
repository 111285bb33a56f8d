/**
 * Clinical demand: how busy each system is at a given simulated moment, from its demand profile
 * (the hospital's rhythm in shared/data/reference-hospital.md), and how a host's CPU is shared
 * out when demand exceeds it. Pure functions of time; the twin and the rebalancer both use them.
 */
import type { DemandProfile } from './index.ts';

/** Simulated time zero is a Monday, 00:00, on the 1st of a month. */
export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;

/** Fraction of its vCPU a VM uses at its profile's quietest level. */
export const BASE_UTILISATION = 0.25;

export interface CalendarMoment {
  /** 0 = Monday … 6 = Sunday. */
  readonly weekday: number;
  readonly hour: number;
  /** 1-based day of the month. */
  readonly dayOfMonth: number;
}

export function momentOf(atMs: number): CalendarMoment {
  const day = Math.floor(atMs / DAY_MS);
  return { weekday: ((day % 7) + 7) % 7, hour: (atMs - day * DAY_MS) / HOUR_MS, dayOfMonth: (day % 30) + 1 };
}

/** Piecewise-linear shape through (hour, level) points, level in [0, 1]. */
function shape(points: readonly (readonly [number, number])[], hour: number): number {
  for (let index = 1; index < points.length; index++) {
    const [h1, v1] = points[index]!;
    const [h0, v0] = points[index - 1]!;
    if (hour <= h1) return v0 + ((v1 - v0) * (hour - h0)) / Math.max(1e-9, h1 - h0);
  }
  return points[points.length - 1]![1];
}

// Outpatient clinics: reception from 08:00, EHR peaks near 10:00 and 14:00, lunch dip, done by 17:00.
const OUTPATIENT_WEEKDAY: readonly (readonly [number, number])[] = [
  [0, 0], [7.5, 0.05], [8.5, 0.55], [10, 1], [11.5, 0.8], [12.5, 0.6], [13.5, 0.8], [14, 0.95], [15.5, 0.7], [17, 0.3], [19, 0.05], [24, 0],
];
const OUTPATIENT_SATURDAY: readonly (readonly [number, number])[] = [[0, 0], [8, 0.05], [9.5, 0.6], [11.5, 0.5], [13, 0.05], [24, 0]];
const OFFICE_WEEKDAY: readonly (readonly [number, number])[] = [[0, 0], [8, 0], [9, 1], [12, 1], [12.5, 0.7], [13, 1], [17.5, 1], [18.5, 0], [24, 0]];
// Wards run all day; meal orders close at 06:00, 10:30 and 16:00.
const MEAL_ORDER_HOURS = [6, 10.5, 16];

/** Load multiplier (1 = the quiet level) of a profile at a moment; `surge` during a mass-casualty event. */
export function demandFactor(profile: DemandProfile, atMs: number, surge = false): number {
  const { weekday, hour, dayOfMonth } = momentOf(atMs);
  const peak = profile.peakFactor;
  let level = 0;
  switch (profile.profile) {
    case 'outpatient':
      level = weekday < 5 ? shape(OUTPATIENT_WEEKDAY, hour) : weekday === 5 ? shape(OUTPATIENT_SATURDAY, hour) : 0;
      break;
    case 'office':
      level = weekday < 5 ? shape(OFFICE_WEEKDAY, hour) : 0;
      break;
    case 'ward':
      level = Math.max(0.3, ...MEAL_ORDER_HOURS.map((close) => Math.max(0, 1 - Math.abs(hour - (close - 0.5)) / 0.75)));
      break;
    case 'batch': {
      const night = hour >= 0.5 && hour < 5 ? 1 : 0;
      // Claims (レセプト) runs at month start, days 1-10: the night batch runs longer and harder.
      level = night * (dayOfMonth <= 10 ? 1 : 0.6);
      break;
    }
    case 'emergency':
      level = 0.3;
      break;
    default:
      // flat: a steady load at its peak factor, day and night.
      level = 1;
  }
  const factor = 1 + (peak - 1) * level;
  return surge ? factor * profile.surgeFactor : factor;
}

/** CPU a VM wants, in vCPU (= core-equivalents), never more than it has. */
export function cpuDemand(vcpu: number, profile: DemandProfile, atMs: number, surge = false): number {
  return Math.min(vcpu, vcpu * BASE_UTILISATION * demandFactor(profile, atMs, surge));
}

export interface CpuClaim {
  readonly demandCores: number;
  readonly shares: number;
}

export interface CpuGrant {
  readonly allocatedCores: number;
  /** Share of the time the VM was ready to run but waited for a core (VMware's "CPU ready"). */
  readonly readyFraction: number;
}

/**
 * A proportional-share scheduler: capacity is handed out in proportion to shares, no VM gets more
 * than it asks, the surplus is handed out again (water-filling). On top of any shortfall, a
 * queueing wait grows as the host fills (u / (1 − u)), felt less by VMs with more shares.
 */
export function shareCpu(capacityCores: number, claims: readonly CpuClaim[]): CpuGrant[] {
  const allocated = claims.map(() => 0);
  let remaining = capacityCores;
  let open = claims.map((_, index) => index).filter((index) => claims[index]!.demandCores > 0);
  for (let round = 0; round < claims.length + 1 && open.length > 0 && remaining > 1e-12; round++) {
    const shareSum = open.reduce((sum, index) => sum + claims[index]!.shares, 0);
    let used = 0;
    const stillOpen: number[] = [];
    for (const index of open) {
      const offer = (remaining * claims[index]!.shares) / shareSum;
      const want = claims[index]!.demandCores - allocated[index]!;
      const take = Math.min(offer, want);
      allocated[index]! += take;
      used += take;
      if (want - take > 1e-12) stillOpen.push(index);
    }
    remaining -= used;
    open = stillOpen;
    if (used < 1e-12) break;
  }
  const totalAllocated = allocated.reduce((sum, value) => sum + value, 0);
  const utilisation = Math.min(0.98, totalAllocated / Math.max(1e-9, capacityCores));
  const meanShares = claims.length === 0 ? 1 : claims.reduce((sum, claim) => sum + claim.shares, 0) / claims.length;
  return claims.map((claim, index) => {
    const demand = claim.demandCores;
    if (demand <= 0) return { allocatedCores: 0, readyFraction: 0 };
    const shortfall = (demand - allocated[index]!) / demand;
    const queueing = 0.004 * (utilisation / (1 - utilisation)) * Math.sqrt(meanShares / claim.shares);
    return { allocatedCores: allocated[index]!, readyFraction: Math.min(1, shortfall + queueing) };
  });
}
