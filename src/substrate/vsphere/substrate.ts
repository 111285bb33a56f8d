/**
 * vSphere behind the Substrate port. Observations come from vCenter's change stream: a host's
 * connection state is its management channel; vCenter's API does not expose HA's datastore
 * heartbeats, so the datastore channel is reported as the same signal (one channel, stated in
 * every drill report). Actions go through tasks: power on and off, relocate (to restart a VM
 * elsewhere, or to move it live), CPU shares; snapshots are read from the VM's snapshot tree.
 * Fencing tokens are kept here, on Tomaranai's side: vCenter knows nothing of them.
 *
 * Fencing: vCenter cannot switch off a host that does not answer it, so a fence is confirmed only
 * by vCenter seeing the host powered off or in standby, or by a power fence the caller supplies
 * (a BMC agent such as fence_ipmilan). Without either the fence fails and the controller restarts
 * nothing of that host, as its rules say: never two running copies.
 */
import type {
  ActionOutcome,
  DatastoreObservation,
  FencingToken,
  HostObservation,
  InstanceObservation,
  SnapshotObservation,
  StartRequest,
  Substrate,
  SubstrateEvent,
  SubstrateSnapshot,
  VmMetrics,
} from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import type { VsphereClient } from './client.ts';
import { readInventory, type Inventory, type InventoryHost, type InventoryVm } from './inventory.ts';
import { blueprintName } from './names.ts';
import { element, moRef, type MoRef } from './xml.ts';

export interface PowerFence {
  /** Switches the host off at its BMC and confirms it is off. */
  off(host: string): Promise<{ readonly ok: boolean; readonly detail: string }>;
}

export interface VsphereSubstrateOptions {
  readonly client: VsphereClient;
  readonly blueprint: Blueprint;
  /** The controller's clock, for observation times. */
  readonly nowMs: () => number;
  readonly powerFence?: PowerFence;
  /** How long one WaitForUpdatesEx waits on the server. */
  readonly waitS?: number;
}

interface HostState {
  readonly name: string;
  readonly ref: MoRef;
  connected: boolean;
  poweredOn: boolean;
  lastSeenAtMs: number;
}

interface VmState {
  readonly name: string;
  readonly ref: MoRef;
  host: string | null;
  running: boolean;
  connected: boolean;
  /** Starts Tomaranai made: a restarted copy is a new instance. */
  generation: number;
}

const ONE_CHANNEL_NOTE = 'vCenter exposes no datastore heartbeat: the datastore channel is the connection state too';

export class VsphereSubstrate implements Substrate {
  readonly name = 'vsphere';
  private readonly listeners = new Set<(event: SubstrateEvent) => void>();
  private readonly hosts = new Map<string, HostState>();
  private readonly vms = new Map<string, VmState>();
  private readonly datastoreOf = new Map<string, string>();
  private newestEpoch = 0;
  /** Hosts whose fence was confirmed: what vCenter still lists on them is stale. */
  private readonly fenced = new Set<string>();
  private closed = false;
  private watching: Promise<void> | null = null;
  readonly note = ONE_CHANNEL_NOTE;

  constructor(private readonly options: VsphereSubstrateOptions) {
    for (const service of options.blueprint.services) for (const vm of service.vms) this.datastoreOf.set(vm.name, service.datastore);
  }

  /** Reads the inventory and starts following the change stream. */
  async open(): Promise<void> {
    this.absorb(await readInventory(this.options.client), false);
    const { client } = this.options;
    await client.watch('HostSystem', ['runtime.connectionState', 'runtime.powerState']);
    await client.watch('VirtualMachine', ['runtime.host', 'runtime.powerState', 'runtime.connectionState']);
    let version = (await client.waitForUpdates('', 0))?.version ?? '';
    this.watching = (async () => {
      while (!this.closed) {
        const batch = await client.waitForUpdates(version, this.options.waitS ?? 1).catch(() => null);
        if (this.closed) return;
        if (batch === null) continue;
        version = batch.version;
        if (batch.updates.length > 0) this.absorb(await readInventory(client), true);
      }
    })();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watching;
  }

  private absorb(inventory: Inventory, emit: boolean): void {
    const now = this.options.nowMs();
    const hostName = new Map(inventory.hosts.map((host) => [host.ref.value, blueprintName(host.name)]));
    const known = new Set(this.options.blueprint.hosts.map((host) => host.name));
    for (const host of inventory.hosts) {
      const name = blueprintName(host.name);
      if (!known.has(name)) continue;
      this.absorbHost(name, host, now, emit);
    }
    const vmNames = new Set(this.options.blueprint.vms.map((vm) => vm.name));
    for (const vm of inventory.vms) {
      const name = blueprintName(vm.name);
      if (!vmNames.has(name) || vm.ftRole > 1) continue;
      this.absorbVm(name, vm, vm.host === null ? null : hostName.get(vm.host) ?? null, emit);
    }
  }

  private absorbHost(name: string, host: InventoryHost, now: number, emit: boolean): void {
    const connected = host.connectionState === 'connected';
    // A host that does not answer may still run (power unknown); one whose fence was confirmed does not.
    const poweredOn = this.fenced.has(name) && !connected ? false : host.powerState === 'poweredOn' || host.powerState === 'unknown';
    const before = this.hosts.get(name);
    if (before === undefined) {
      this.hosts.set(name, { name, ref: host.ref, connected, poweredOn, lastSeenAtMs: now });
      return;
    }
    if (connected) {
      before.lastSeenAtMs = now;
      this.fenced.delete(name);
    }
    if (emit && before.connected !== connected) {
      for (const channel of ['management', 'datastore'] as const) {
        this.emit(connected ? { type: 'heartbeat.restored', host: name, channel } : { type: 'heartbeat.lost', host: name, channel, lastSeenAtMs: before.lastSeenAtMs });
      }
    }
    if (emit && before.poweredOn !== poweredOn) this.emit({ type: 'host.power', host: name, poweredOn });
    before.connected = connected;
    before.poweredOn = poweredOn;
  }

  private absorbVm(name: string, vm: InventoryVm, host: string | null, emit: boolean): void {
    const running = vm.powerState === 'poweredOn';
    const connected = vm.connectionState === 'connected';
    const before = this.vms.get(name);
    if (before === undefined) {
      this.vms.set(name, { name, ref: vm.ref, host, running, connected, generation: 0 });
      return;
    }
    const changed = before.host !== host || before.running !== running || before.connected !== connected;
    const previous = this.instanceOf(before);
    before.host = host;
    before.running = running;
    before.connected = connected;
    if (!emit || !changed) return;
    if (previous !== null && (!running || previous.host !== host)) this.emit({ type: 'instance.removed', id: previous.id, vm: name, host: previous.host });
    const now = this.instanceOf(before);
    if (now !== null) this.emit({ type: 'instance.changed', instance: now });
  }

  private instanceOf(vm: VmState): InstanceObservation | null {
    if (!vm.running || vm.host === null) return null;
    return { id: `${vm.ref.value}#${vm.generation}`, vm: vm.name, host: vm.host, role: 'primary', state: 'running', healthy: vm.connected, synced: false, datastore: this.datastoreOf.get(vm.name) ?? '' };
  }

  private emit(event: SubstrateEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  snapshot(): SubstrateSnapshot {
    const hosts: HostObservation[] = [...this.hosts.values()].map((host) => ({
      name: host.name,
      poweredOn: host.poweredOn,
      heartbeats: { management: { up: host.connected, lastSeenAtMs: host.lastSeenAtMs }, datastore: { up: host.connected, lastSeenAtMs: host.lastSeenAtMs } },
    }));
    const instances = [...this.vms.values()].map((vm) => this.instanceOf(vm)).filter((instance): instance is InstanceObservation => instance !== null);
    const datastores: DatastoreObservation[] = this.options.blueprint.datastores.map((store) => ({ name: store.name, up: true }));
    return { atMs: this.options.nowMs(), hosts, instances, datastores, vmGenerations: new Map([...this.vms].map(([name, vm]) => [name, vm.generation])) };
  }

  claimEpoch(token: FencingToken): ActionOutcome {
    if (token.epoch < this.newestEpoch) return { ok: false, reason: `epoch ${token.epoch} is older than ${this.newestEpoch}` };
    this.newestEpoch = token.epoch;
    return { ok: true };
  }

  private refused(token: FencingToken, vm: VmState | null): ActionOutcome | null {
    if (token.epoch < this.newestEpoch) return { ok: false, reason: `stale fencing token: epoch ${token.epoch} < ${this.newestEpoch}` };
    this.newestEpoch = token.epoch;
    if (vm !== null && token.vmGeneration !== undefined && token.vmGeneration !== vm.generation) return { ok: false, reason: `stale VM generation ${token.vmGeneration} (now ${vm.generation})` };
    return null;
  }

  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async task(method: string, body: string): Promise<ActionOutcome> {
    try {
      await this.options.client.runTask(method, body);
      return { ok: true, detail: method };
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
  }

  async startVm(request: StartRequest): Promise<ActionOutcome> {
    const vm = this.vms.get(request.vm);
    const host = this.hosts.get(request.host);
    if (vm === undefined || host === undefined) return { ok: false, reason: `${request.vm} or ${request.host} is not in vCenter's inventory` };
    const refused = this.refused(request.token, vm);
    if (refused !== null) return refused;
    if (request.role === 'secondary') return { ok: false, reason: 'a hot secondary on vSphere is an FT secondary: vSphere creates it (tomaranai vsphere apply), Tomaranai does not start one' };
    if (vm.running && vm.host === request.host) return { ok: true, detail: 'already running there' };
    if (vm.running && vm.host !== null && !this.fenced.has(vm.host)) return { ok: false, reason: `${request.vm} runs on ${vm.host}, which is not fenced: never two running copies` };
    if (vm.running) {
      // vCenter still lists it as on, on a host fenced since: the last it heard. (A real vCenter
      // cannot act on a VM of a dead host: HA registers its .vmx elsewhere; the simulator powers it off.)
      const off = await this.task('PowerOffVM_Task', `<PowerOffVM_Task>${moRef('_this', vm.ref)}</PowerOffVM_Task>`);
      if (!off.ok) return off;
    }
    if (vm.host !== request.host) {
      const moved = await this.task('RelocateVM_Task', `<RelocateVM_Task>${moRef('_this', vm.ref)}<spec>${moRef('host', host.ref)}</spec></RelocateVM_Task>`);
      if (!moved.ok) return moved;
    }
    vm.generation++;
    return this.task('PowerOnVM_Task', `<PowerOnVM_Task>${moRef('_this', vm.ref)}${moRef('host', host.ref)}</PowerOnVM_Task>`);
  }

  async stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): Promise<ActionOutcome> {
    const vm = this.vms.get(request.vm);
    if (vm === undefined) return { ok: false, reason: `${request.vm} is not in vCenter's inventory` };
    const refused = this.refused(request.token, vm);
    if (refused !== null) return refused;
    if (!vm.running) return { ok: true, detail: 'already off' };
    return this.task('PowerOffVM_Task', `<PowerOffVM_Task>${moRef('_this', vm.ref)}</PowerOffVM_Task>`);
  }

  promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): ActionOutcome {
    return { ok: false, reason: `${request.vm}: vSphere FT fails over on its own; Tomaranai does not promote an FT secondary` };
  }

  async fenceHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    const refused = this.refused(request.token, null);
    if (refused !== null) return refused;
    const host = this.hosts.get(request.host);
    if (host === undefined) return { ok: false, reason: `unknown host ${request.host}` };
    if (!host.poweredOn) {
      this.fenced.add(request.host);
      this.emit({ type: 'fence.completed', host: request.host, method: 'power', ok: true, detail: 'vCenter reports the host powered off' });
      return { ok: true, detail: 'already off' };
    }
    if (this.options.powerFence === undefined) {
      const detail = 'vCenter cannot switch off a host that does not answer it and no power fence (BMC agent) is configured: nothing of this host is restarted';
      this.emit({ type: 'fence.completed', host: request.host, method: 'power', ok: false, detail });
      return { ok: false, reason: detail };
    }
    const result = await this.options.powerFence.off(request.host).catch((error: unknown) => ({ ok: false, detail: String(error) }));
    if (result.ok) {
      host.poweredOn = false;
      this.fenced.add(request.host);
    }
    this.emit({ type: 'fence.completed', host: request.host, method: 'power', ok: result.ok, detail: result.detail });
    return result.ok ? { ok: true, detail: result.detail } : { ok: false, reason: result.detail };
  }

  powerOnHost(request: { token: FencingToken; host: string }): ActionOutcome {
    return { ok: false, reason: `${request.host}: power it on at its BMC; vCenter reconnects it when it answers` };
  }

  async listSnapshots(vmName: string): Promise<readonly SnapshotObservation[]> {
    const vm = this.vms.get(vmName);
    if (vm === undefined) return [];
    const [object] = await this.options.client.retrieveObjects([vm.ref], ['snapshot']);
    const tree = object?.props.get('snapshot');
    const snapshots: SnapshotObservation[] = [];
    const walk = (nodes: unknown): void => {
      for (const node of (Array.isArray(nodes) ? nodes : nodes === undefined ? [] : [nodes]) as Record<string, unknown>[]) {
        const id = String((node.snapshot as Record<string, unknown> | undefined)?.['#text'] ?? '');
        const takenAtMs = Date.parse(String(node.createTime ?? ''));
        snapshots.push({ id, vm: vmName, datastore: this.datastoreOf.get(vmName) ?? '', takenAtMs, retainUntilMs: takenAtMs, immutable: false, digest: id });
        walk(node.childSnapshotList);
      }
    };
    walk((tree as Record<string, unknown> | undefined)?.rootSnapshotList);
    return snapshots.sort((a, b) => a.takenAtMs - b.takenAtMs);
  }

  metrics(): readonly VmMetrics[] {
    return [];
  }

  async migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): Promise<ActionOutcome> {
    const vm = this.vms.get(request.vm);
    const host = this.hosts.get(request.toHost);
    if (vm === undefined || host === undefined) return { ok: false, reason: `${request.vm} or ${request.toHost} is not in vCenter's inventory` };
    const refused = this.refused(request.token, vm);
    if (refused !== null) return refused;
    return this.task('RelocateVM_Task', `<RelocateVM_Task>${moRef('_this', vm.ref)}<spec>${moRef('host', host.ref)}</spec></RelocateVM_Task>`);
  }

  async setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): Promise<ActionOutcome> {
    const vm = this.vms.get(request.vm);
    if (vm === undefined) return { ok: false, reason: `${request.vm} is not in vCenter's inventory` };
    const refused = this.refused(request.token, vm);
    if (refused !== null) return refused;
    const spec = `<spec><cpuAllocation><shares>${element('shares', Math.round(request.shares))}${element('level', 'custom')}</shares></cpuAllocation></spec>`;
    return this.task('ReconfigVM_Task', `<ReconfigVM_Task>${moRef('_this', vm.ref)}${spec}</ReconfigVM_Task>`);
  }

  deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): ActionOutcome {
    // vSphere snapshots carry no retention lock: Tomaranai cannot promise invariant 3 on them, so it deletes none.
    return { ok: false, reason: `${request.snapshotId}: vSphere snapshots have no immutability Tomaranai could enforce; expire them in vCenter or the backup product` };
  }
}
