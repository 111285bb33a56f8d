/**
 * Admission control: the failover capacity a plan must hold in reserve. A blueprint names what the
 * hospital must survive (`protection.survive`, by default any single host); a plan is admitted when
 * every failure of those kinds is survivable (every continuous and critical service keeps running
 * or restarts within its RTO, none shed or lost) according to the failure analysis, which asks
 * the controller's own decide() what it would do.
 */
import type { Blueprint, ProtectionKind } from '../model/index.ts';
import type { Placement } from '../capacity/capacity.ts';
import { analyseFailures, failureCases, type FailureOutcome } from './failure-analysis.ts';

export interface AdmissionResult {
  readonly required: readonly ProtectionKind[];
  /** Every case of the required kinds is survivable (and there is at least one case per kind asked for). */
  readonly holds: boolean;
  readonly casesChecked: number;
  /** The required cases that are not survivable. */
  readonly failing: readonly FailureOutcome[];
  /** Every analysed case, required or not (host pairs only when analysed). */
  readonly outcomes: readonly FailureOutcome[];
}

export interface AdmissionOptions {
  /** Kinds to require; the blueprint's protection.survive by default. */
  readonly survive?: readonly ProtectionKind[];
  /** Analyse host pairs even when they are not required (the plan report lists them). */
  readonly pairs?: boolean;
}

export function checkAdmission(
  blueprint: Blueprint,
  placements: ReadonlyMap<string, Placement>,
  options: AdmissionOptions = {},
): AdmissionResult {
  const required = options.survive ?? blueprint.protection.survive;
  const pairs = options.pairs === true || required.includes('hostPair');
  const cases = failureCases(blueprint, { pairs });
  const outcomes = analyseFailures(blueprint, placements, cases);
  return admissionOf(required, outcomes);
}

/** Admission from outcomes already analysed. */
export function admissionOf(required: readonly ProtectionKind[], outcomes: readonly FailureOutcome[]): AdmissionResult {
  const relevant = outcomes.filter((outcome) => required.includes(outcome.failed.kind));
  const failing = relevant.filter((outcome) => !outcome.survivable);
  // A required kind with no case at all (e.g. hostPair on a one-host estate) is not a guarantee.
  const covered = required.every((kind) => kind === 'hostPair' || relevant.some((outcome) => outcome.failed.kind === kind));
  return { required: [...required], holds: failing.length === 0 && covered, casesChecked: relevant.length, failing, outcomes };
}

/** Why one failing case fails, in a sentence. */
export function describeFailing(outcome: FailureOutcome): string {
  const parts: string[] = [];
  if (outcome.lost.length > 0) parts.push(`lost ${outcome.lost.join(', ')}`);
  if (outcome.late.length > 0) parts.push(`late ${outcome.late.join(', ')}`);
  return `${outcome.failed.kind} ${outcome.failed.ids.join('+')}: ${parts.join('; ') || 'not survivable'}`;
}
