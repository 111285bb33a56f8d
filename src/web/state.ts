/** A service's tile state, from its VMs as GET /api/v1/services reports them. */
import type { ServiceDto, TierDto, VmDto } from '../dto/index.ts';

export type TileState = 'up' | 'degraded' | 'failing-over' | 'restarting' | 'shed' | 'quarantined' | 'down';

/** What GET /api/v1/services and /tiers answer (src/dto): the shapes the views draw. */
export type VmView = VmDto;
export type ServiceView = ServiceDto;
export type TierView = TierDto;

export function tileState(service: ServiceView): TileState {
  if (service.vms.some((vm) => vm.state === 'quarantined')) return 'quarantined';
  if (service.state === 'up') return 'up';
  if (service.vms.some((vm) => vm.state === 'shed')) return 'shed';
  const notRunning = service.vms.filter((vm) => !(vm.state === 'running' && vm.healthy));
  // A continuous VM that lost its primary while a secondary stands by is being failed over, not restarted.
  if (notRunning.some((vm) => vm.secondary !== null && vm.state !== 'starting')) return 'failing-over';
  if (notRunning.some((vm) => vm.state === 'starting' || vm.state === 'pending')) return 'restarting';
  return service.state === 'degraded' ? 'degraded' : 'down';
}
