/**
 * What vCenter holds, read in one pass of the property collector and typed: hosts (hardware,
 * cluster, connection, custom attributes), clusters (their HA and DRS configuration: VM overrides,
 * groups, rules, admission control), datastores, port groups and VMs (size, placement, FT state,
 * folder, custom attributes). Pure parsing lives beside the reads so recorded answers test it.
 */
import type { VsphereClient, ObjectContent } from './client.ts';
import { child, children, numberAt, path, refOf, text, xsiType, type MoRef, type XmlNode } from './xml.ts';

export type RestartPriority = 'disabled' | 'lowest' | 'low' | 'medium' | 'high' | 'highest' | 'clusterRestartPriority';
export type IsolationResponse = 'none' | 'powerOff' | 'shutdown' | 'clusterIsolationResponse';

export interface InventoryHost {
  readonly ref: MoRef;
  readonly name: string;
  readonly cluster: string | null;
  readonly model: string;
  readonly cores: number;
  readonly mhz: number;
  readonly memoryBytes: number;
  readonly connectionState: string;
  readonly powerState: string;
  readonly inMaintenance: boolean;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface VmOverride {
  readonly restartPriority: RestartPriority | null;
  readonly isolationResponse: IsolationResponse | null;
}

export type ClusterGroup = { readonly kind: 'vm'; readonly name: string; readonly members: readonly string[] } | { readonly kind: 'host'; readonly name: string; readonly members: readonly string[] };

export type ClusterRule =
  | { readonly kind: 'antiAffinity' | 'affinity'; readonly key: number; readonly name: string; readonly enabled: boolean; readonly mandatory: boolean; readonly vms: readonly string[] }
  | { readonly kind: 'vmHost'; readonly key: number; readonly name: string; readonly enabled: boolean; readonly mandatory: boolean; readonly vmGroup: string; readonly affineHostGroup: string | null; readonly antiAffineHostGroup: string | null }
  | { readonly kind: 'dependency'; readonly key: number; readonly name: string; readonly enabled: boolean; readonly mandatory: boolean; readonly vmGroup: string; readonly dependsOnVmGroup: string };

export interface AdmissionControl {
  readonly enabled: boolean;
  readonly cpuPercent: number | null;
  readonly memoryPercent: number | null;
}

/** A cluster's HA and DRS configuration. VM references are managed object ids (`vm-63`). */
export interface ClusterConfiguration {
  readonly haEnabled: boolean;
  readonly admission: AdmissionControl;
  readonly overrides: ReadonlyMap<string, VmOverride>;
  readonly groups: readonly ClusterGroup[];
  readonly rules: readonly ClusterRule[];
}

export interface InventoryCluster {
  readonly ref: MoRef;
  readonly name: string;
  readonly hosts: readonly string[];
  readonly configuration: ClusterConfiguration;
}

export interface InventoryDatastore {
  readonly ref: MoRef;
  readonly name: string;
  readonly type: string;
  readonly capacityBytes: number;
}

export interface InventoryNetwork {
  readonly ref: MoRef;
  readonly name: string;
  /** NSX-T segments are opaque networks (or NSX-backed distributed port groups). */
  readonly kind: 'standard' | 'distributed' | 'nsx';
}

export interface InventoryVm {
  readonly ref: MoRef;
  readonly name: string;
  readonly vcpu: number;
  readonly memoryMiB: number;
  readonly diskBytes: number;
  readonly host: string | null;
  readonly powerState: string;
  readonly connectionState: string;
  /** runtime.faultToleranceState: notConfigured, disabled, enabled, needSecondary, starting, running. */
  readonly faultTolerance: string;
  /** 1 for a primary (or a VM without FT), 2+ for an FT secondary. */
  readonly ftRole: number;
  readonly datastores: readonly string[];
  readonly networks: readonly string[];
  readonly folder: string;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface Inventory {
  readonly about: string;
  readonly hosts: readonly InventoryHost[];
  readonly clusters: readonly InventoryCluster[];
  readonly datastores: readonly InventoryDatastore[];
  readonly networks: readonly InventoryNetwork[];
  readonly vms: readonly InventoryVm[];
  readonly folders: ReadonlyMap<string, { readonly name: string; readonly parent: string | null }>;
}

export const VM_PATHS = [
  'name',
  'config.hardware.numCPU',
  'config.hardware.memoryMB',
  'config.hardware.device',
  'config.ftInfo',
  'runtime.host',
  'runtime.powerState',
  'runtime.connectionState',
  'runtime.faultToleranceState',
  'datastore',
  'network',
  'parent',
  'customValue',
] as const;
export const HOST_PATHS = ['name', 'parent', 'summary.hardware', 'runtime.connectionState', 'runtime.powerState', 'runtime.inMaintenanceMode', 'customValue'] as const;
export const CLUSTER_PATHS = ['name', 'host', 'configurationEx'] as const;

export async function readInventory(client: VsphereClient): Promise<Inventory> {
  const content = client.serviceContent;
  const fieldNames = new Map<string, string>();
  if (content.customFieldsManager !== null) {
    const [manager] = await client.retrieveObjects([content.customFieldsManager], ['field']);
    for (const field of children(manager?.props.get('field'), 'CustomFieldDef')) fieldNames.set(path(field, 'key'), path(field, 'name'));
  }
  const [hosts, clusters, datastores, networks, vms, folders] = await Promise.all([
    client.retrieveAll('HostSystem', HOST_PATHS),
    client.retrieveAll('ClusterComputeResource', CLUSTER_PATHS),
    client.retrieveAll('Datastore', ['name', 'summary.type', 'summary.capacity']),
    client.retrieveAll('Network', ['name']),
    client.retrieveAll('VirtualMachine', VM_PATHS),
    client.retrieveAll('Folder', ['name', 'parent']),
  ]);
  return parseInventory({ about: content.fullName, fieldNames, hosts, clusters, datastores, networks, vms, folders });
}

export interface RawInventory {
  readonly about: string;
  readonly fieldNames: ReadonlyMap<string, string>;
  readonly hosts: readonly ObjectContent[];
  readonly clusters: readonly ObjectContent[];
  readonly datastores: readonly ObjectContent[];
  readonly networks: readonly ObjectContent[];
  readonly vms: readonly ObjectContent[];
  readonly folders: readonly ObjectContent[];
}

export function parseInventory(raw: RawInventory): Inventory {
  const nameOf = (object: ObjectContent) => text(object.props.get('name'));
  const clusterOfHost = new Map<string, string>();
  const clusters = raw.clusters.map((object): InventoryCluster => {
    const hosts = refsIn(object.props.get('host')).map((ref) => ref.value);
    for (const host of hosts) clusterOfHost.set(host, nameOf(object));
    return { ref: object.obj, name: nameOf(object), hosts, configuration: parseClusterConfiguration(object.props.get('configurationEx')) };
  });
  const datastoreNames = new Map(raw.datastores.map((object) => [object.obj.value, nameOf(object)]));
  const networkNames = new Map(raw.networks.map((object) => [object.obj.value, nameOf(object)]));
  const folders = new Map(raw.folders.map((object) => [object.obj.value, { name: nameOf(object), parent: refOf(object.props.get('parent'))?.value ?? null }]));
  return {
    about: raw.about,
    hosts: raw.hosts.map((object) => ({
      ref: object.obj,
      name: nameOf(object),
      cluster: clusterOfHost.get(object.obj.value) ?? null,
      model: path(object.props.get('summary.hardware'), 'model'),
      cores: numberAt(object.props.get('summary.hardware'), 'numCpuCores'),
      mhz: numberAt(object.props.get('summary.hardware'), 'cpuMhz'),
      memoryBytes: numberAt(object.props.get('summary.hardware'), 'memorySize'),
      connectionState: text(object.props.get('runtime.connectionState')),
      powerState: text(object.props.get('runtime.powerState')),
      inMaintenance: text(object.props.get('runtime.inMaintenanceMode')) === 'true',
      attributes: customValues(object.props.get('customValue'), raw.fieldNames),
    })),
    clusters,
    datastores: raw.datastores.map((object) => ({
      ref: object.obj,
      name: nameOf(object),
      type: text(object.props.get('summary.type')),
      capacityBytes: Number(text(object.props.get('summary.capacity')) || 0),
    })),
    networks: raw.networks.map((object) => ({ ref: object.obj, name: nameOf(object), kind: networkKind(object.obj.type) })),
    vms: raw.vms.map((object) => parseVm(object, { datastoreNames, networkNames, folders, fieldNames: raw.fieldNames })),
    folders,
  };
}

function networkKind(type: string): InventoryNetwork['kind'] {
  if (type === 'OpaqueNetwork') return 'nsx';
  return type === 'DistributedVirtualPortgroup' ? 'distributed' : 'standard';
}

function parseVm(
  object: ObjectContent,
  names: { datastoreNames: ReadonlyMap<string, string>; networkNames: ReadonlyMap<string, string>; folders: Inventory['folders']; fieldNames: ReadonlyMap<string, string> },
): InventoryVm {
  const { props } = object;
  const disks = children(props.get('config.hardware.device'), 'VirtualDevice').filter((device) => xsiType(device) === 'VirtualDisk');
  const diskBytes = disks.reduce((sum, disk) => {
    const bytes = numberAt(disk, 'capacityInBytes');
    return sum + (Number.isFinite(bytes) && bytes > 0 ? bytes : numberAt(disk, 'capacityInKB') * 1024);
  }, 0);
  const role = numberAt(props.get('config.ftInfo'), 'role');
  return {
    ref: object.obj,
    name: text(props.get('name')),
    vcpu: Number(text(props.get('config.hardware.numCPU')) || 0),
    memoryMiB: Number(text(props.get('config.hardware.memoryMB')) || 0),
    diskBytes,
    host: refOf(props.get('runtime.host'))?.value ?? null,
    powerState: text(props.get('runtime.powerState')),
    connectionState: text(props.get('runtime.connectionState')),
    faultTolerance: text(props.get('runtime.faultToleranceState')) || 'notConfigured',
    ftRole: Number.isFinite(role) ? role : 1,
    datastores: refsIn(props.get('datastore')).map((ref) => names.datastoreNames.get(ref.value) ?? ref.value),
    networks: refsIn(props.get('network')).map((ref) => names.networkNames.get(ref.value) ?? ref.value),
    folder: folderPath(refOf(props.get('parent'))?.value ?? null, names.folders),
    attributes: customValues(props.get('customValue'), names.fieldNames),
  };
}

/** `hospital/vendor-a`: the VM's folders below the datacenter's `vm` folder. */
function folderPath(folder: string | null, folders: Inventory['folders']): string {
  const parts: string[] = [];
  let current = folder;
  for (let depth = 0; current !== null && depth < 32; depth++) {
    const entry = folders.get(current);
    if (entry === undefined) break;
    parts.unshift(entry.name);
    current = entry.parent;
  }
  const top = parts.lastIndexOf('vm');
  return (top === -1 ? parts : parts.slice(top + 1)).join('/');
}

export function refsIn(node: XmlNode | undefined): MoRef[] {
  return children(node, 'ManagedObjectReference')
    .map(refOf)
    .filter((ref): ref is MoRef => ref !== null);
}

function customValues(node: XmlNode | undefined, fieldNames: ReadonlyMap<string, string>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const value of [...children(node, 'CustomFieldValue'), ...children(node, 'CustomFieldStringValue')]) {
    const name = fieldNames.get(path(value, 'key'));
    if (name !== undefined) values[name] = path(value, 'value');
  }
  return values;
}

export function parseClusterConfiguration(node: XmlNode | undefined): ClusterConfiguration {
  const das = child(node, 'dasConfig');
  const policy = child(das, 'admissionControlPolicy');
  const percent = (key: string) => {
    const value = numberAt(policy, key);
    return xsiType(policy) === 'ClusterFailoverResourcesAdmissionControlPolicy' && Number.isFinite(value) ? value : null;
  };
  const overrides = new Map<string, VmOverride>();
  for (const entry of children(node, 'dasVmConfig')) {
    const key = refOf(child(entry, 'key'));
    if (key === null) continue;
    const settings = child(entry, 'dasSettings');
    const priority = path(settings, 'restartPriority') || path(entry, 'restartPriority');
    const isolation = path(settings, 'isolationResponse') || path(entry, 'powerOffOnIsolation');
    overrides.set(key.value, {
      restartPriority: priority === '' ? null : (priority as RestartPriority),
      isolationResponse: isolation === '' ? null : isolation === 'true' ? 'powerOff' : isolation === 'false' ? 'none' : (isolation as IsolationResponse),
    });
  }
  return {
    haEnabled: path(das, 'enabled') === 'true',
    admission: { enabled: path(das, 'admissionControlEnabled') === 'true', cpuPercent: percent('cpuFailoverResourcesPercent'), memoryPercent: percent('memoryFailoverResourcesPercent') },
    overrides,
    groups: children(node, 'group').map(parseGroup),
    rules: children(node, 'rule').map(parseRule).filter((rule): rule is ClusterRule => rule !== null),
  };
}

function parseGroup(node: XmlNode): ClusterGroup {
  const name = path(node, 'name');
  if (xsiType(node) === 'ClusterHostGroup') return { kind: 'host', name, members: children(node, 'host').map((ref) => text(ref)) };
  return { kind: 'vm', name, members: children(node, 'vm').map((ref) => text(ref)) };
}

function parseRule(node: XmlNode): ClusterRule | null {
  const base = { key: numberAt(node, 'key'), name: path(node, 'name'), enabled: path(node, 'enabled') === 'true', mandatory: path(node, 'mandatory') === 'true' };
  switch (xsiType(node)) {
    case 'ClusterAntiAffinityRuleSpec':
      return { kind: 'antiAffinity', ...base, vms: children(node, 'vm').map((ref) => text(ref)) };
    case 'ClusterAffinityRuleSpec':
      return { kind: 'affinity', ...base, vms: children(node, 'vm').map((ref) => text(ref)) };
    case 'ClusterVmHostRuleInfo':
      return { kind: 'vmHost', ...base, vmGroup: path(node, 'vmGroupName'), affineHostGroup: path(node, 'affineHostGroupName') || null, antiAffineHostGroup: path(node, 'antiAffineHostGroupName') || null };
    case 'ClusterDependencyRuleInfo':
      return { kind: 'dependency', ...base, vmGroup: path(node, 'vmGroup'), dependsOnVmGroup: path(node, 'dependsOnVmGroup') };
    default:
      return null;
  }
}
