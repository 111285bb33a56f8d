/** The vendor scope: a vendor account sees and acts only on its own services and their VMs. */
import type { ControlPlane } from '../service/control-plane.ts';
import { vendorOf } from '../service/auth/roles.ts';
import { apiError } from '../errors/index.ts';
import type { Principal } from './principal.ts';

export function requireServiceInScope(plane: ControlPlane, principal: Principal, service: string): void {
  const owner = plane.vendorOfService(service);
  if (owner === null) throw apiError('TMR_API_NOT_FOUND', `no service ${service}`);
  const vendor = vendorOf(principal.role);
  if (vendor !== null && vendor !== owner) throw apiError('TMR_API_NOT_YOUR_SYSTEM', `${service} belongs to another vendor`);
}

export function requireVmInScope(plane: ControlPlane, principal: Principal, vm: string): void {
  const service = plane.serviceOfVm(vm);
  if (service === null) throw apiError('TMR_API_NOT_FOUND', `no VM ${vm}`);
  requireServiceInScope(plane, principal, service);
}

export function inScope(plane: ControlPlane, principal: Principal, service: string): boolean {
  const vendor = vendorOf(principal.role);
  return vendor === null || plane.vendorOfService(service) === vendor;
}
