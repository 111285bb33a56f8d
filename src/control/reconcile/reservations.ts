/**
 * Reservations: room claimed by a VM that waits (for a fence, its dependencies, shed VMs to stop)
 * is held for it, counted once before anything else is placed, and released to it when its turn
 * comes, so that nothing of a lower tier takes it first. A claim lapses when it expires, when the
 * VM runs, when its host can no longer receive VMs, and when a recovery target is followed (the
 * target shares capacity out over the whole failure itself).
 */
import type { Hosts } from './hosts.ts';
import type { Instances } from './instances.ts';
import type { Pass } from './pass.ts';

/** VM → the host whose room is held for it in this pass. */
export type Claims = ReadonlyMap<string, string>;

export function reconcileReservations(pass: Pass, hosts: Hosts, instances: Instances): Claims {
  const claims = new Map<string, string>();
  for (const [vm, reservation] of pass.state.reservations) {
    const live = (instances.byVm.get(vm) ?? []).some((instance) => instance.role === 'primary' && instance.state !== 'stopping' && hosts.reachable(instance.host));
    if (pass.target !== null || reservation.untilMs <= pass.nowMs || live || !hosts.eligible(reservation.host)) {
      pass.mark({ type: 'vm.reserve', vm, host: null, untilMs: 0 });
      continue;
    }
    claims.set(vm, reservation.host);
    pass.load.add(reservation.host, vm);
    pass.wake(reservation.untilMs);
  }
  return claims;
}

/** Claims `host` for `vm` until the reservation time runs out, unless it holds that claim already. */
export function claim(pass: Pass, claims: Claims, vm: string, host: string): void {
  if (claims.get(vm) !== host) pass.mark({ type: 'vm.reserve', vm, host, untilMs: pass.nowMs + pass.input.timings.reservationMs });
}

/** Gives a VM that starts now the claim it held: the room is its own, the reservation ends. */
export function releaseClaim(pass: Pass, claims: Claims, vm: string): void {
  if (claims.has(vm)) pass.mark({ type: 'vm.reserve', vm, host: null, untilMs: 0 });
}
