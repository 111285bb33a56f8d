/**
 * Capacity of hosts and the cost of VMs on them. A VM costs vCPU / its tier's CPU overcommit
 * ceiling in physical cores ("1.5 vCPU" of a standard VM is 0.75 of a core), and its memory in
 * full: memory is never overcommitted.
 */
import type { Blueprint, BlueprintIndex, Host, Service, Tier, Vm } from '../model/index.ts';
import { indexBlueprint, tierOf, vmCost } from '../model/index.ts';

export type { VmCost } from '../model/index.ts';
import type { VmCost } from '../model/index.ts';

/** What the controller needs to know of a VM, looked up once. */
export interface VmInfo {
  readonly vm: Vm;
  readonly service: Service;
  readonly tier: Tier;
}

export class CapacityModel {
  readonly index: BlueprintIndex;
  private readonly costs = new Map<string, VmCost>();
  private readonly priorities = new Map<string, number>();
  private readonly infos = new Map<string, VmInfo>();

  constructor(readonly blueprint: Blueprint) {
    this.index = indexBlueprint(blueprint);
    for (const vm of blueprint.vms) {
      const service = this.index.service.get(vm.service)!;
      const tier = tierOf(blueprint, service);
      // The same cost rules as the planner's (validate-placement.ts), so plan and controller agree.
      this.costs.set(vm.name, vmCost(vm, tier));
      this.priorities.set(vm.name, tier.priority);
      this.infos.set(vm.name, { vm, service, tier });
    }
  }

  info(vm: string): VmInfo {
    const info = this.infos.get(vm);
    if (info === undefined) throw new Error(`capacity: unknown VM ${vm}`);
    return info;
  }

  cost(vm: string): VmCost {
    const cost = this.costs.get(vm);
    if (cost === undefined) throw new Error(`capacity: unknown VM ${vm}`);
    return cost;
  }

  /** The tier priority of a VM: lower restarts first and is shed last. */
  priority(vm: string): number {
    return this.priorities.get(vm) ?? 99;
  }

  vm(name: string): Vm {
    return this.index.vm.get(name)!;
  }

  host(name: string): Host {
    return this.index.host.get(name)!;
  }
}

/** Running totals per host; cheap to copy for what-if questions. */
export class HostLoad {
  /** Per host: what is used, and its size (looked up once, not at every question). */
  private readonly totals = new Map<string, HostTotals>();

  constructor(private readonly model: CapacityModel) {
    for (const host of model.blueprint.hosts) this.totals.set(host.name, { cores: 0, memory: 0, size: host });
  }

  add(host: string, vm: string): void {
    const cost = this.model.cost(vm);
    const totals = this.totalsOf(host);
    totals.cores += cost.cores;
    totals.memory += cost.memoryGiB;
  }

  /** Adds what several VMs hold at once (their costs summed in the order add() would have taken them). */
  addTotals(host: string, cores: number, memoryGiB: number): void {
    const totals = this.totalsOf(host);
    totals.cores += cores;
    totals.memory += memoryGiB;
  }

  remove(host: string, vm: string): void {
    const cost = this.model.cost(vm);
    const totals = this.totalsOf(host);
    totals.cores -= cost.cores;
    totals.memory -= cost.memoryGiB;
  }

  freeCores(host: string): number {
    const totals = this.totals.get(host);
    return this.sizeOf(host, totals).cores - (totals?.cores ?? 0);
  }

  freeMemoryGiB(host: string): number {
    const totals = this.totals.get(host);
    return this.sizeOf(host, totals).memoryGiB - (totals?.memory ?? 0);
  }

  usedCores(host: string): number {
    return this.totals.get(host)?.cores ?? 0;
  }

  fits(host: string, vm: string): boolean {
    const cost = this.model.cost(vm);
    // A small epsilon keeps fractional vCPU sums (0.5 + 1.5 + ...) from failing on rounding.
    return this.freeCores(host) + 1e-9 >= cost.cores && this.freeMemoryGiB(host) + 1e-9 >= cost.memoryGiB;
  }

  clone(): HostLoad {
    const copy = new HostLoad(this.model);
    for (const [host, totals] of this.totals) copy.totals.set(host, { ...totals });
    return copy;
  }

  /** A host not in the blueprint starts at zero, as any other (its size is then unknown). */
  private totalsOf(host: string): HostTotals {
    let totals = this.totals.get(host);
    if (totals === undefined) this.totals.set(host, (totals = { cores: 0, memory: 0, size: null }));
    return totals;
  }

  private sizeOf(host: string, totals: HostTotals | undefined): Host {
    return totals?.size ?? this.model.host(host);
  }
}

interface HostTotals {
  cores: number;
  memory: number;
  readonly size: Host | null;
}

export type Placement = { readonly primary: string; readonly secondary: string | null };

/** Failure-domain distance between two hosts: 3 other room, 2 other rack, 1 other host, 0 same host. */
export function domainDistance(a: Host, b: Host): number {
  if (a.room !== b.room) return 3;
  if (a.rack !== b.rack) return 2;
  return a.name === b.name ? 0 : 1;
}
