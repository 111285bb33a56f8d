/** A service's tile state, from its VMs as GET /api/v1/services reports them. */
export type TileState = 'up' | 'degraded' | 'failing-over' | 'restarting' | 'shed' | 'quarantined' | 'down';

export interface VmView {
  readonly name: string;
  readonly state: 'running' | 'starting' | 'pending' | 'shed' | 'quarantined' | 'stopped';
  readonly host: string | null;
  readonly healthy: boolean;
  readonly secondary: { readonly host: string; readonly synced: boolean } | null;
  readonly waitReason: string | null;
  readonly shedReason: string | null;
}

export interface ServiceView {
  readonly name: string;
  readonly title: string;
  readonly tier: string;
  readonly vendor: string;
  readonly state: 'up' | 'degraded' | 'down';
  readonly lastRtoS: number | null;
  readonly vms: readonly VmView[];
}

export interface TierView {
  readonly name: string;
  readonly rtoS: number;
  readonly rpoS: number;
  readonly priority: number;
}

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
