/**
 * vSphere names and blueprint names: a blueprint name is lower-case letters, digits and dashes
 * (`a1-h1`), a vSphere name is anything (`ESX01.hospital.local`, `DC0_C0_H0`). One function turns
 * the second into the first, so import and plan agree on which VM or host is which.
 */
import type { Blueprint } from '../model/index.ts';
import type { Inventory, InventoryHost, InventoryVm } from '../substrate/vsphere/inventory.ts';
import { blueprintName } from '../substrate/vsphere/names.ts';

export { blueprintName };

/** A VM's service by its name: `ehr-app-3` → `ehr-app`, `ssmix2-1` → `ssmix2`, `pacs02` → `pacs`; null when no number ends it. */
export function serviceByName(vmName: string): string | null {
  const name = blueprintName(vmName);
  const match = /^(.+?)-\d+$/.exec(name) ?? /^(.*[a-z])\d+$/.exec(name);
  return match === null ? null : match[1]!;
}

export interface NameMatch {
  readonly vms: ReadonlyMap<string, InventoryVm>;
  readonly hosts: ReadonlyMap<string, InventoryHost>;
  /** Blueprint VMs that vCenter does not have. */
  readonly missingVms: readonly string[];
  readonly missingHosts: readonly string[];
}

/** Which vSphere VM and host each blueprint VM and host is: by name, FT secondaries left out. */
export function matchNames(blueprint: Blueprint, inventory: Inventory): NameMatch {
  const vmByName = new Map(inventory.vms.filter((vm) => vm.ftRole <= 1).map((vm) => [blueprintName(vm.name), vm]));
  const hostByName = new Map(inventory.hosts.map((host) => [blueprintName(host.name), host]));
  const vms = new Map<string, InventoryVm>();
  const hosts = new Map<string, InventoryHost>();
  const missingVms: string[] = [];
  const missingHosts: string[] = [];
  for (const vm of blueprint.vms) {
    const found = vmByName.get(vm.name);
    if (found === undefined) missingVms.push(vm.name);
    else vms.set(vm.name, found);
  }
  for (const host of blueprint.hosts) {
    const found = hostByName.get(host.name);
    if (found === undefined) missingHosts.push(host.name);
    else hosts.set(host.name, found);
  }
  return { vms, hosts, missingVms, missingHosts };
}
