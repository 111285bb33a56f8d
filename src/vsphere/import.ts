/**
 * A blueprint draft from a vSphere inventory, and the list of every guess in it for a person to
 * confirm. Hosts go into rooms and racks from custom attributes (`room`, `rack`, `powerFeed`) where
 * vCenter has them, else from their cluster; VMs into services by a `service` attribute, else by
 * name (`pacs-2` → pacs); tiers from what vSphere already says: FT → continuous, HA restart priority
 * highest or high → critical, medium or low → standard, lowest or disabled → deferred.
 */
import { stringify } from 'yaml';
import type { Inventory, InventoryVm, RestartPriority } from '../substrate/vsphere/inventory.ts';
import { blueprintName, serviceByName } from './names.ts';

export interface ReviewItem {
  /** What the guess is about: `host dc0-c0-h0`, `service pacs`, `datastore ds-a`. */
  readonly subject: string;
  readonly field: string;
  readonly value: string;
  readonly because: string;
}

export interface ImportDraft {
  /** The blueprint document (validate it with loadBlueprint). */
  readonly document: Record<string, unknown>;
  readonly yaml: string;
  readonly review: readonly ReviewItem[];
  readonly summary: { readonly hosts: number; readonly vms: number; readonly services: number; readonly ftSecondariesSkipped: number };
}

const FT_ACTIVE = new Set(['enabled', 'running', 'starting', 'needSecondary']);
const PRIORITY_TIER: Readonly<Record<RestartPriority, string>> = {
  highest: 'critical',
  high: 'critical',
  medium: 'standard',
  low: 'standard',
  lowest: 'deferred',
  disabled: 'deferred',
  clusterRestartPriority: 'standard',
};
const TIER_RANK: Readonly<Record<string, number>> = { continuous: 0, critical: 1, standard: 2, deferred: 3 };
const GIB = 1024 ** 3;

export function draftFromInventory(inventory: Inventory, options: { name: string }): ImportDraft {
  const review: ReviewItem[] = [];
  const guess = (subject: string, field: string, value: string, because: string) => review.push({ subject, field, value, because });
  const hosts = draftHosts(inventory, guess);
  const rooms = [...new Set(hosts.map((host) => host.room))];
  const powerFeeds = [...new Set(hosts.map((host) => host.powerFeed))].map((feed) => ({ name: feed, room: hosts.find((host) => host.powerFeed === feed)!.room, generator: false }));
  for (const feed of powerFeeds) guess(`power feed ${feed.name}`, 'generator', 'false', 'vCenter does not know which feeds a generator backs');
  const hostRoom = new Map(inventory.hosts.map((host, index) => [host.ref.value, hosts[index]!.room]));
  const primaries = inventory.vms.filter((vm) => vm.ftRole <= 1 && !vm.name.startsWith('vCLS'));
  const datastores = draftDatastores(inventory, primaries, hostRoom, rooms, guess);
  const networks = draftNetworks(inventory, primaries, guess);
  const services = draftServices(inventory, primaries, guess);
  const document: Record<string, unknown> = {
    apiVersion: 'tomaranai/v1',
    kind: 'Hospital',
    name: blueprintName(options.name, 'imported-estate'),
    description: `Imported from ${inventory.about} by tomaranai import vsphere: a draft; confirm every item of the review report.`,
    powerFeeds,
    hosts,
    datastores,
    networks,
    services,
    protection: { survive: ['host'] },
  };
  guess('blueprint', 'hosts[].watts', '750', 'vCenter does not report a host\'s nameplate power: used by `tomaranai size` only');
  guess('blueprint', 'protection.survive', '[host]', 'vSphere HA protects against host failures; add rack, room or powerFeed if the hospital must survive them');
  guess('blueprint', 'flows', '(none)', 'vCenter does not record which systems talk to which; segmentation is default-deny, so add the allowed flows before enforcing it');
  return {
    document,
    yaml: `# Draft blueprint imported from vSphere (${inventory.about}). Every guess is in the review report.\n${stringify(document, { lineWidth: 0 })}`,
    review,
    summary: { hosts: hosts.length, vms: primaries.length, services: services.length, ftSecondariesSkipped: inventory.vms.length - primaries.length },
  };
}

type Guess = (subject: string, field: string, value: string, because: string) => void;

function draftHosts(inventory: Inventory, guess: Guess) {
  return inventory.hosts.map((host) => {
    const name = blueprintName(host.name, `host-${host.ref.value}`);
    const subject = `host ${name}`;
    const room = host.attributes.room ? blueprintName(host.attributes.room) : blueprintName(host.cluster ?? 'room-1');
    if (!host.attributes.room) guess(subject, 'room', room, host.cluster ? `no "room" attribute: its cluster ${host.cluster} taken as the room` : 'no "room" attribute and no cluster');
    const rack = host.attributes.rack ? blueprintName(host.attributes.rack) : `${room}-rack`;
    if (!host.attributes.rack) guess(subject, 'rack', rack, 'no "rack" attribute: one rack per room assumed');
    const powerFeed = host.attributes.powerFeed ? blueprintName(host.attributes.powerFeed) : `${room}-feed`;
    if (!host.attributes.powerFeed) guess(subject, 'powerFeed', powerFeed, 'no "powerFeed" attribute: one feed per room assumed');
    return {
      name,
      cores: Math.max(1, host.cores),
      ghz: Math.max(0.1, Math.round(host.mhz / 100) / 10),
      memoryGiB: Math.max(1, Math.round(host.memoryBytes / GIB)),
      watts: 750,
      room,
      rack,
      powerFeed,
    };
  });
}

function draftDatastores(inventory: Inventory, vms: readonly InventoryVm[], hostRoom: ReadonlyMap<string, string>, rooms: readonly string[], guess: Guess) {
  return inventory.datastores.map((store) => {
    const name = blueprintName(store.name, `ds-${store.ref.value}`);
    const counts = new Map<string, number>();
    for (const vm of vms) if (vm.datastores.includes(store.name) && vm.host !== null) counts.set(hostRoom.get(vm.host) ?? rooms[0]!, (counts.get(hostRoom.get(vm.host) ?? rooms[0]!) ?? 0) + 1);
    const room = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? rooms[0]!;
    guess(`datastore ${name}`, 'room', room, 'vCenter does not say where an array stands: the room where most of its VMs run');
    guess(`datastore ${name}`, 'replicatedTo', '(none)', 'array replication is outside vCenter: name the replica datastore if there is one');
    return { name, room, capacityTiB: Math.max(0.001, Math.round((store.capacityBytes / 1024 ** 4) * 1000) / 1000), immutableSnapshots: false };
  });
}

function draftNetworks(inventory: Inventory, vms: readonly InventoryVm[], guess: Guess) {
  const used = new Set(vms.flatMap((vm) => vm.networks));
  return inventory.networks
    .filter((network) => used.has(network.name))
    .map((network) => {
      const name = blueprintName(network.name, `net-${network.ref.value}`);
      const lower = network.name.toLowerCase();
      const kind = /dmz/.test(lower) ? 'dmz' : /mgmt|management/.test(lower) ? 'management' : /modality|dicom/.test(lower) ? 'modality' : 'server';
      guess(`network ${name}`, 'kind', kind, `from the port group's name "${network.name}"${network.kind === 'nsx' ? ' (an NSX-T segment)' : ''}`);
      return { name, kind };
    });
}

function tierOfVm(vm: InventoryVm, priority: RestartPriority | null): { tier: string; because: string } {
  if (FT_ACTIVE.has(vm.faultTolerance)) return { tier: 'continuous', because: `vSphere FT protects it (${vm.faultTolerance})` };
  if (priority === null) return { tier: 'standard', because: 'no HA override: the cluster default restart priority (medium)' };
  const tier = PRIORITY_TIER[priority];
  const note = priority === 'highest' ? '; no FT: if it must not stop at all, make it continuous' : '';
  return { tier, because: `HA restart priority ${priority}${note}` };
}

function draftServices(inventory: Inventory, vms: readonly InventoryVm[], guess: Guess) {
  const overrides = new Map(inventory.clusters.flatMap((cluster) => [...cluster.configuration.overrides]));
  const groups = new Map<string, InventoryVm[]>();
  for (const vm of vms) {
    const service = vm.attributes.service ? blueprintName(vm.attributes.service) : serviceByName(vm.name) ?? blueprintName(vm.name, `vm-${vm.ref.value}`);
    groups.set(service, [...(groups.get(service) ?? []), vm]);
  }
  const datastoreName = (vm: InventoryVm) => blueprintName(vm.datastores[0] ?? '', `ds-${vm.ref.value}`);
  return [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([name, members]) => {
    const subject = `service ${name}`;
    const tiers = members.map((vm) => tierOfVm(vm, overrides.get(vm.ref.value)?.restartPriority ?? null));
    const chosen = [...tiers].sort((a, b) => (TIER_RANK[a.tier] ?? 9) - (TIER_RANK[b.tier] ?? 9))[0]!;
    guess(subject, 'tier', chosen.tier, `${chosen.because}${new Set(tiers.map((tier) => tier.tier)).size > 1 ? ' (its VMs differ: the highest taken)' : ''}`);
    const first = members[0]!;
    const vendor = first.attributes.vendor ? blueprintName(first.attributes.vendor) : blueprintName(first.folder.split('/').pop() ?? '', 'unknown-vendor');
    guess(subject, 'vendor', vendor, first.attributes.vendor ? 'its "vendor" attribute' : `its folder "${first.folder || '(root)'}"`);
    if (!first.attributes.service) guess(subject, 'members', members.map((vm) => vm.name).join(', '), 'grouped by name (a trailing number dropped)');
    const sizes = new Set(members.map((vm) => `${vm.vcpu}/${vm.memoryMiB}/${vm.diskBytes}`));
    if (sizes.size > 1) guess(subject, 'vms', 'the largest size', 'its VMs differ in size; one group of the largest is drafted');
    const vcpu = Math.max(...members.map((vm) => vm.vcpu));
    const memoryGiB = Math.max(...members.map((vm) => vm.memoryMiB)) / 1024;
    const diskGiB = Math.max(...members.map((vm) => vm.diskBytes)) / GIB;
    guess(subject, 'bootTimeS', '60', 'vCenter does not know how long the application takes to pass its health check');
    guess(subject, 'dependsOn', '[]', 'vCenter does not record dependencies (HA VM-VM rules aside): add them, they set the restart order');
    const network = first.networks[0];
    return {
      name,
      tier: chosen.tier,
      vendor,
      datastore: datastoreName(first),
      ...(network === undefined ? {} : { network: blueprintName(network, 'server') }),
      vms: [{ count: members.length, vcpu: Math.max(1, vcpu), memoryGiB: Math.max(0.25, Math.round(memoryGiB * 100) / 100), diskGiB: Math.max(1, Math.round(diskGiB)), bootTimeS: 60 }],
    };
  });
}

export function formatReview(draft: ImportDraft, format: 'md' | 'json'): string {
  if (format === 'json') return JSON.stringify({ summary: draft.summary, review: draft.review }, null, 2);
  const lines = [
    `# Review of the imported blueprint ${String(draft.document.name)}`,
    '',
    `${draft.summary.hosts} hosts, ${draft.summary.vms} VMs in ${draft.summary.services} services${draft.summary.ftSecondariesSkipped ? `, ${draft.summary.ftSecondariesSkipped} FT secondaries left out` : ''}. Confirm or correct each guess below, then \`tomaranai validate\`.`,
    '',
    '| subject | field | draft value | because |',
    '|---|---|---|---|',
    ...draft.review.map((item) => `| ${item.subject} | ${item.field} | ${item.value.replace(/\|/g, '\\|')} | ${item.because.replace(/\|/g, '\\|')} |`),
  ];
  return lines.join('\n');
}
