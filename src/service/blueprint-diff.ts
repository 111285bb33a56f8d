/** What a new blueprint changes against the running one, by name: shown before anything is applied. */
import type { Blueprint } from '../model/index.ts';

export interface NamedChange {
  readonly name: string;
  readonly changes: readonly string[];
}

export interface BlueprintDiff {
  readonly unchanged: boolean;
  readonly services: { readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly NamedChange[] };
  readonly hosts: { readonly added: readonly string[]; readonly removed: readonly string[]; readonly changed: readonly NamedChange[] };
  readonly vms: { readonly added: readonly string[]; readonly removed: readonly string[] };
  readonly flows: { readonly added: number; readonly removed: number };
  readonly tiers: { readonly changed: readonly string[] };
}

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.name, item]));
}

function fieldChanges(before: object, after: object, fields: readonly string[]): string[] {
  const changes: string[] = [];
  for (const field of fields) {
    const a = JSON.stringify((before as Record<string, unknown>)[field]);
    const b = JSON.stringify((after as Record<string, unknown>)[field]);
    if (a !== b) changes.push(`${field}: ${a} → ${b}`);
  }
  return changes;
}

function compare<T extends { name: string }>(before: readonly T[], after: readonly T[], fields: readonly string[]) {
  const a = byName(before);
  const b = byName(after);
  const changed: NamedChange[] = [];
  for (const [name, item] of b) {
    const old = a.get(name);
    if (old === undefined) continue;
    const changes = fieldChanges(old, item, fields);
    if (changes.length > 0) changed.push({ name, changes });
  }
  return {
    added: [...b.keys()].filter((name) => !a.has(name)),
    removed: [...a.keys()].filter((name) => !b.has(name)),
    changed,
  };
}

export function diffBlueprints(running: Blueprint, candidate: Blueprint): BlueprintDiff {
  const services = compare(running.services, candidate.services, ['tier', 'vendor', 'dependsOn', 'datastore', 'network', 'healthCheckIntervalS']);
  // A VM group's size is a change of its service too.
  const vmsBefore = byName(running.vms);
  const changedVms = candidate.vms.filter((vm) => {
    const old = vmsBefore.get(vm.name);
    return old !== undefined && (old.vcpu !== vm.vcpu || old.memoryGiB !== vm.memoryGiB || old.diskGiB !== vm.diskGiB || old.bootTimeS !== vm.bootTimeS);
  });
  const serviceChanges = new Map(services.changed.map((change) => [change.name, [...change.changes]]));
  for (const vm of changedVms) {
    const list = serviceChanges.get(vm.service) ?? [];
    list.push(`vm ${vm.name} resized`);
    serviceChanges.set(vm.service, list);
  }
  const hosts = compare(running.hosts, candidate.hosts, ['cores', 'ghz', 'memoryGiB', 'room', 'rack', 'powerFeed']);
  const vms = compare(running.vms, candidate.vms, []);
  const flowKey = (flow: { from: string; to: string; port: number }) => `${flow.from}>${flow.to}:${flow.port}`;
  const flowsBefore = new Set(running.flows.map(flowKey));
  const flowsAfter = new Set(candidate.flows.map(flowKey));
  const tiersChanged = [...candidate.tiers.keys()].filter((name) => JSON.stringify(candidate.tiers.get(name)) !== JSON.stringify(running.tiers.get(name)));
  const diff: BlueprintDiff = {
    unchanged: false,
    services: { added: services.added, removed: services.removed, changed: [...serviceChanges].map(([name, changes]) => ({ name, changes })) },
    hosts,
    vms: { added: vms.added, removed: vms.removed },
    flows: { added: [...flowsAfter].filter((key) => !flowsBefore.has(key)).length, removed: [...flowsBefore].filter((key) => !flowsAfter.has(key)).length },
    tiers: { changed: tiersChanged },
  };
  const unchanged =
    diff.services.added.length + diff.services.removed.length + diff.services.changed.length + diff.hosts.added.length + diff.hosts.removed.length +
      diff.hosts.changed.length + diff.vms.added.length + diff.vms.removed.length + diff.flows.added + diff.flows.removed + diff.tiers.changed.length ===
    0;
  return { ...diff, unchanged };
}
