/** The plan as the API shows it: where each VM runs first, what could not be placed, the restart order. */
import { CapacityModel } from '../capacity/capacity.ts';
import { planInitialPlacement, restartOrder } from '../capacity/first-fit.ts';
import { tierOf, type Blueprint } from '../model/index.ts';

export interface PlanView {
  readonly placements: readonly { vm: string; service: string; tier: string; primary: string; secondary: string | null }[];
  readonly unplaced: readonly { vm: string; reason: string }[];
  readonly restartOrder: readonly string[];
}

export function planOf(blueprint: Blueprint): PlanView {
  const model = new CapacityModel(blueprint);
  const initial = planInitialPlacement(blueprint, model);
  const serviceOf = new Map(blueprint.vms.map((vm) => [vm.name, vm.service]));
  const tierOfService = new Map(blueprint.services.map((service) => [service.name, tierOf(blueprint, service).name]));
  return {
    placements: [...initial.placements].map(([vm, placement]) => ({
      vm,
      service: serviceOf.get(vm)!,
      tier: tierOfService.get(serviceOf.get(vm)!)!,
      primary: placement.primary,
      secondary: placement.secondary,
    })),
    unplaced: [...initial.unplaced].map(([vm, reason]) => ({ vm, reason })),
    restartOrder: restartOrder(blueprint).map((vm) => vm.name),
  };
}
