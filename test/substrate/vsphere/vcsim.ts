/**
 * The vSphere API simulator for tests: finds or builds govmomi's vcsim (../shared/tools/vcsim,
 * scripts/ci-vsphere.sh), starts it on a free port, and populates it through the SOAP API with an
 * estate shaped like the reference hospital: 14 hosts in one cluster with `room` and `rack` custom
 * attributes, the 74 VMs with their names, sizes, datastores, port groups and folders, placed as
 * the planner places them, powered on, and HA restart priorities set per tier.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VsphereClient } from '../../../src/substrate/vsphere/client.ts';
import { reconfigureClusterBody, type ClusterChange } from '../../../src/substrate/vsphere/cluster-spec.ts';
import { readInventory, type RestartPriority } from '../../../src/substrate/vsphere/inventory.ts';
import { element, moRef, type MoRef } from '../../../src/substrate/vsphere/xml.ts';
import type { Blueprint } from '../../../src/model/index.ts';
import { planPlacement } from '../../../src/capacity/placement.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The vcsim binary: TOMARANAI_VCSIM, or one built before, or built now when Go is installed; null when none can be had. */
export function vcsimBinary(): string | null {
  const fromEnv = process.env.TOMARANAI_VCSIM;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const built = join(ROOT, '.state/vcsim/vcsim');
  if (existsSync(built)) return built;
  const go = spawnSync('sh', ['-c', 'command -v go && dpkg-query -W golang-github-vmware-govmomi-dev'], { encoding: 'utf8' });
  if (go.status !== 0) return null;
  const build = spawnSync('bash', [join(ROOT, 'scripts/ci-vsphere.sh')], { encoding: 'utf8' });
  return build.status === 0 && existsSync(built) ? built : null;
}

export interface RunningVcsim {
  readonly url: URL;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function startVcsim(binary: string, args: readonly string[] = ['-cluster-host', '14', '-host', '0', '-vm', '0', '-ds', '2']): Promise<RunningVcsim> {
  // The reference hospital's host unit (unit-2s: 40 cores, 2.8 GHz, 768 GiB), scripts/vcsim/hospital_hosts.go.
  const env = { ...process.env, VCSIM_HOST_CORES: '40', VCSIM_HOST_MHZ: '2800', VCSIM_HOST_MEMORY_GIB: '768', VCSIM_HOST_MODEL: 'unit-2s' };
  const child = spawn(binary, ['-l', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const url = await new Promise<URL>((resolveUrl, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`vcsim did not start within 10 s: ${output}`)), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /vcsim listening: (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        const listening = new URL(match[1]!);
        resolveUrl(new URL(`${listening.protocol}//${listening.host}/sdk`));
      }
    });
    child.stderr!.resume();
    child.on('exit', (code) => reject(new Error(`vcsim exited with ${code}: ${output}`)));
  });
  return {
    url,
    process: child,
    stop: () =>
      new Promise<void>((resolveStop) => {
        if (child.exitCode !== null) return resolveStop();
        child.once('exit', () => resolveStop());
        child.kill('SIGTERM');
      }),
  };
}

export const SIMULATOR_CREDENTIALS = { username: 'user', password: 'pass' } as const;

/** The restart priority the hospital had set in vSphere for each tier before Tomaranai. */
export const ESTATE_PRIORITY: Readonly<Record<string, RestartPriority>> = { continuous: 'highest', critical: 'high', standard: 'medium', deferred: 'lowest' };

export interface Estate {
  /** Blueprint host name → vSphere host name. */
  readonly hostNames: ReadonlyMap<string, string>;
  readonly vmRefs: ReadonlyMap<string, MoRef>;
  readonly cluster: MoRef;
}

const concurrently = async <T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
};

export async function populateHospital(client: VsphereClient, blueprint: Blueprint): Promise<Estate> {
  const content = client.serviceContent;
  const inventory = await readInventory(client);
  const vsphereHosts = [...inventory.hosts].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  if (vsphereHosts.length < blueprint.hosts.length) throw new Error(`vcsim has ${vsphereHosts.length} hosts, the blueprint ${blueprint.hosts.length}`);
  const hostRef = new Map(blueprint.hosts.map((host, index) => [host.name, vsphereHosts[index]!]));
  const cluster = inventory.clusters[0]!;
  const datastores = [...inventory.datastores].sort((a, b) => a.name.localeCompare(b.name));
  const datastoreOf = new Map(blueprint.datastores.map((store, index) => [store.name, datastores[index % datastores.length]!.name]));
  const dmz = inventory.networks.find((network) => network.name === 'DC0_DVPG0')!;
  const server = inventory.networks.find((network) => network.name === 'VM Network')!;

  // Rooms and racks as custom attributes on the hosts (what a site would keep in vCenter).
  const manager = content.customFieldsManager!;
  const fieldKeys = new Map<string, string>();
  for (const name of ['room', 'rack']) {
    const added = await client.call('AddCustomFieldDef', `<AddCustomFieldDef>${moRef('_this', manager)}${element('name', name)}${element('moType', 'HostSystem')}</AddCustomFieldDef>`);
    fieldKeys.set(name, String((added as { returnval?: { key?: string } } | undefined)?.returnval?.key ?? ''));
  }
  for (const host of blueprint.hosts) {
    const ref = hostRef.get(host.name)!.ref;
    for (const [field, value] of [['room', host.room], ['rack', host.rack]] as const) {
      await client.call('SetField', `<SetField>${moRef('_this', manager)}${moRef('entity', ref)}${element('key', fieldKeys.get(field)!)}${element('value', value)}</SetField>`);
    }
  }

  // One folder per vendor under the datacenter's VM folder.
  const vmFolder = [...inventory.folders].find(([, folder]) => folder.name === 'vm')![0];
  const vendorFolders = new Map<string, MoRef>();
  for (const vendor of new Set(blueprint.services.map((service) => service.vendor))) {
    const created = await client.call('CreateFolder', `<CreateFolder>${moRef('_this', { type: 'Folder', value: vmFolder })}${element('name', vendor)}</CreateFolder>`);
    const value = (created as { returnval?: { '#text'?: string } } | undefined)?.returnval?.['#text'];
    vendorFolders.set(vendor, { type: 'Folder', value: value! });
  }

  const placement = planPlacement(blueprint).placements;
  const pool = (await client.retrieveObjects([cluster.ref], ['resourcePool']))[0]!.props.get('resourcePool') as { '#text': string };
  const vmRefs = new Map<string, MoRef>();
  const serviceOf = new Map(blueprint.services.map((service) => [service.name, service]));
  await concurrently(blueprint.vms, 6, async (vm) => {
    const service = serviceOf.get(vm.service)!;
    const host = hostRef.get(placement.get(vm.name)!.primary)!;
    const network = service.network === 'dmz' ? dmz : server;
    const config =
      `<config>${element('name', vm.name)}${element('guestId', 'otherGuest64')}<files>${element('vmPathName', `[${datastoreOf.get(service.datastore)}]`)}</files>` +
      `${element('numCPUs', Math.ceil(vm.vcpu))}${element('memoryMB', Math.round(vm.memoryGiB * 1024))}` +
      `<deviceChange>${element('operation', 'add')}<device xsi:type="VirtualLsiLogicController">${element('key', 1000)}${element('busNumber', 0)}${element('sharedBus', 'noSharing')}</device></deviceChange>` +
      `<deviceChange>${element('operation', 'add')}${element('fileOperation', 'create')}<device xsi:type="VirtualDisk">${element('key', 2000)}<backing xsi:type="VirtualDiskFlatVer2BackingInfo">${element('fileName', '')}${element('diskMode', 'persistent')}${element('thinProvisioned', true)}</backing>${element('controllerKey', 1000)}${element('unitNumber', 0)}${element('capacityInKB', Math.round(vm.diskGiB * 1024 * 1024))}</device></deviceChange>` +
      `<deviceChange>${element('operation', 'add')}<device xsi:type="VirtualVmxnet3">${element('key', 4000)}<backing xsi:type="VirtualEthernetCardNetworkBackingInfo">${element('deviceName', network.name)}${moRef('network', network.ref)}</backing>${element('addressType', 'generated')}</device></deviceChange></config>`;
    const result = await client.runTask(
      'CreateVM_Task',
      `<CreateVM_Task>${moRef('_this', vendorFolders.get(service.vendor)!)}${config}${moRef('pool', { type: 'ResourcePool', value: pool['#text'] })}${moRef('host', host.ref)}</CreateVM_Task>`,
    );
    const ref: MoRef = { type: 'VirtualMachine', value: (result as { '#text': string })['#text'] };
    vmRefs.set(vm.name, ref);
    await client.runTask('PowerOnVM_Task', `<PowerOnVM_Task>${moRef('_this', ref)}</PowerOnVM_Task>`);
  });

  const tierOf = new Map(blueprint.services.map((service) => [service.name, service.tier]));
  const overrides: ClusterChange[] = blueprint.vms.map((vm) => ({
    kind: 'override',
    operation: 'add',
    vm: vmRefs.get(vm.name)!,
    restartPriority: ESTATE_PRIORITY[tierOf.get(vm.service)!] ?? 'medium',
    isolationResponse: 'none',
  }));
  await client.runTask('ReconfigureComputeResource_Task', reconfigureClusterBody(cluster.ref, overrides));
  return { hostNames: new Map([...hostRef].map(([name, host]) => [name, host.name])), vmRefs, cluster: cluster.ref };
}
