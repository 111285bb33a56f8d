/**
 * The disruption budget: what an operator's or a vendor's request may take down. A restart that
 * would leave a continuous service without a synchronised copy, or take a critical service further
 * down than it already is, is refused with TMR_API_DISRUPTION naming what it would break; a vendor
 * acts on its systems only inside a maintenance window of that service; and each account may take
 * only so many disruptive actions in a short time. Before this, two restarts of the EHR database
 * 1.5 s apart (a vendor's token, both accepted) stopped both copies: a cold restart, 151 s of outage
 * against a 5 s target.
 *
 * Pure: it reads the controller's view, the blueprint and the journal's windows, and changes nothing.
 */
import type { ControllerState } from '../control/state.ts';
import { TomaranaiError } from '../errors/index.ts';
import { tierOf, type Blueprint } from '../model/index.ts';
import type { MaintenanceWindow } from './journal-view.ts';

export interface DisruptionRequest {
  readonly kind: 'restart';
  readonly vm: string;
  /** The vendor acting, or null for the hospital's own staff. */
  readonly vendor: string | null;
  readonly nowMs: number;
}

/** Disruptive actions one account may take within DISRUPTION_WINDOW_MS. */
export const DISRUPTIONS_PER_ACCOUNT = 6;
export const DISRUPTION_WINDOW_MS = 10 * 60_000;
/** A held request not approved within this has expired: the situation it described has moved on. */
export const APPROVAL_TTL_MS = 30 * 60_000;

/** Throws TMR_API_DISRUPTION or TMR_API_OUTSIDE_WINDOW when the request may not go ahead now. */
export function checkDisruption(request: DisruptionRequest, blueprint: Blueprint, state: ControllerState, windows: Iterable<MaintenanceWindow>): void {
  const vm = blueprint.vms.find((candidate) => candidate.name === request.vm);
  const service = vm === undefined ? undefined : blueprint.services.find((candidate) => candidate.name === vm.service);
  if (vm === undefined || service === undefined) return;
  if (request.vendor !== null) {
    const open = [...windows].some((window) => window.service === service.name && window.fromMs <= request.nowMs && request.nowMs <= window.toMs);
    if (!open) {
      throw new TomaranaiError('TMR_API_OUTSIDE_WINDOW', `${service.name} has no maintenance window open now: a vendor restarts its systems only inside one`, `open a window first (POST /api/v1/services/${service.name}/maintenance-windows), or ask the hospital's operators`);
    }
  }
  const tier = tierOf(blueprint, service);
  const copies = [...state.instances.values()].filter((instance) => instance.vm === request.vm);
  if (tier.mechanism === 'failover') {
    const healthyPrimary = copies.some((instance) => instance.role === 'primary' && instance.state === 'running' && instance.healthy);
    if (!healthyPrimary) {
      throw new TomaranaiError(
        'TMR_API_DISRUPTION',
        `${request.vm} is failing over now (no healthy primary): ${service.name} (${tier.name}, RTO ${tier.rtoS} s) must not be disturbed until it has a primary and a synchronised secondary again`,
        `wait until ${service.name} is up and protected (GET /api/v1/services/${service.name}), then retry; or send askApproval: true to hold it for another operator's approval`,
      );
    }
    const syncedSecondary = copies.some((instance) => instance.role === 'secondary' && instance.state === 'running' && instance.healthy && instance.synced);
    if (!syncedSecondary) {
      throw new TomaranaiError(
        'TMR_API_DISRUPTION',
        `${request.vm} has no synchronised secondary now: restarting it would stop ${service.name} (${tier.name}, RTO ${tier.rtoS} s) for a cold restart`,
        `wait until ${request.vm}'s secondary is synchronised again (GET /api/v1/services/${service.name} shows it), then retry; or send askApproval: true to hold it for another operator's approval`,
      );
    }
    return;
  }
  if (tier.priority <= 1) {
    const healthyPrimary = (name: string) => [...state.instances.values()].some((instance) => instance.vm === name && instance.role === 'primary' && instance.state === 'running' && instance.healthy);
    const alreadyDown = service.vms.filter((sibling) => sibling.name !== request.vm && !healthyPrimary(sibling.name)).map((sibling) => sibling.name);
    if (alreadyDown.length > 0) {
      throw new TomaranaiError(
        'TMR_API_DISRUPTION',
        `${service.name} (${tier.name}) already has ${alreadyDown.join(', ')} down: restarting ${request.vm} now would take more of it down than its tier allows`,
        `wait until ${alreadyDown.join(', ')} is back, then retry; or send askApproval: true to hold it for another operator's approval`,
      );
    }
  }
}

/** Counts each account's disruptive actions in a sliding window; refuses past the budget. */
export class DisruptionRateLimiter {
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly perAccount: number = DISRUPTIONS_PER_ACCOUNT,
    private readonly windowMs: number = DISRUPTION_WINDOW_MS,
  ) {}

  /** Records the action, or throws TMR_API_ACTION_RATE_LIMITED when the account is over its budget. */
  take(actor: string, nowMs: number): void {
    const times = (this.recent.get(actor) ?? []).filter((atMs) => nowMs - atMs < this.windowMs);
    if (times.length >= this.perAccount) {
      throw new TomaranaiError('TMR_API_ACTION_RATE_LIMITED', `${actor} took ${times.length} disruptive actions in the last ${this.windowMs / 60_000} minutes`, `wait ${Math.ceil((times[0]! + this.windowMs - nowMs) / 1000)} s, or ask another operator`);
    }
    times.push(nowMs);
    this.recent.set(actor, times);
  }
}
