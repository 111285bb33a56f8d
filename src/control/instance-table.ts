/**
 * The controller's instances, indexed as they change, so that a pass over a large estate (10,000
 * VMs) neither rebuilds its indexes nor walks every copy each time. It is the Map the state always
 * was (id → observation); each index lists a VM's, a host's or a datastore's copies in the Map's
 * own order (insertion order; a copy set again keeps its place), exactly as a pass that walked the
 * Map would have grouped them.
 */
import type { InstanceObservation } from '../ports/index.ts';

/** Copies per VM, host and datastore, each list in the instances' Map order. */
export interface InstanceIndex {
  readonly byVm: ReadonlyMap<string, readonly InstanceObservation[]>;
  readonly byHost: ReadonlyMap<string, readonly InstanceObservation[]>;
  readonly byDatastore: ReadonlyMap<string, readonly InstanceObservation[]>;
  /** The copies that run and fail their health check, in no particular order (booting ones are not among them). */
  readonly unwell: Iterable<InstanceObservation>;
  /** A copy's place in the Map's order. */
  placeOf(instance: InstanceObservation): number;
  /** A number that changes whenever the host's list does; null when changes are not tracked. */
  hostVersion(host: string): number | null;
  /** Where the log of VMs whose copies changed stands now (give it to vmsChangedSince later); null when changes are not tracked. */
  readonly changePosition: number | null;
  /**
   * The VMs whose copies were added, changed or removed since `position` (a VM may be named more
   * than once), or null when the log does not reach back that far (or is not kept): then anything
   * may have changed.
   */
  vmsChangedSince(position: number): readonly string[] | null;
}

/** How many changes the log keeps before it forgets the older half (a reader that far behind looks at everything). */
const CHANGE_LOG_LIMIT = 1 << 16;

export class InstanceTable extends Map<string, InstanceObservation> implements InstanceIndex {
  private readonly vmIndex = new Map<string, InstanceObservation[]>();
  private readonly hostIndex = new Map<string, InstanceObservation[]>();
  private readonly datastoreIndex = new Map<string, InstanceObservation[]>();
  private readonly unwellCopies = new Map<string, InstanceObservation>();
  /** Each id's place in the Map's order (a copy deleted and set again goes last, as in a Map). */
  private readonly places = new Map<string, number>();
  private readonly hostVersions = new Map<string, number>();
  private nextPlace = 0;
  private nextVersion = 0;
  /** The VMs whose copies changed, oldest first; `changeLog[0]` is change number `logStart`. */
  private changeLog: string[] = [];
  private logStart = 0;

  constructor(entries?: Iterable<readonly [string, InstanceObservation]>) {
    // Map's constructor would call set() before this class's fields exist: add them afterwards.
    super();
    if (entries !== undefined) for (const [id, instance] of entries) this.set(id, instance);
  }

  get byVm(): ReadonlyMap<string, readonly InstanceObservation[]> {
    return this.vmIndex;
  }

  get byHost(): ReadonlyMap<string, readonly InstanceObservation[]> {
    return this.hostIndex;
  }

  get byDatastore(): ReadonlyMap<string, readonly InstanceObservation[]> {
    return this.datastoreIndex;
  }

  get unwell(): Iterable<InstanceObservation> {
    return this.unwellCopies.values();
  }

  placeOf(instance: InstanceObservation): number {
    return this.places.get(instance.id)!;
  }

  hostVersion(host: string): number {
    return this.hostVersions.get(host) ?? -1;
  }

  get changePosition(): number {
    return this.logStart + this.changeLog.length;
  }

  vmsChangedSince(position: number): readonly string[] | null {
    if (position < this.logStart || position > this.changePosition) return null;
    return this.changeLog.slice(position - this.logStart);
  }

  private changed(vm: string): void {
    if (this.changeLog.length >= CHANGE_LOG_LIMIT) {
      const forget = CHANGE_LOG_LIMIT / 2;
      this.changeLog = this.changeLog.slice(forget);
      this.logStart += forget;
    }
    this.changeLog.push(vm);
  }

  override set(id: string, instance: InstanceObservation): this {
    if (instance.id !== id) throw new Error(`instance table: ${instance.vm}'s copy ${instance.id} set under the id ${id}; key each copy by its own id`);
    const before = super.get(id);
    super.set(id, instance);
    this.changed(instance.vm);
    if (before !== undefined && before.vm !== instance.vm) this.changed(before.vm);
    if (instance.state === 'running' && !instance.healthy) this.unwellCopies.set(id, instance);
    else this.unwellCopies.delete(id);
    this.hostVersions.set(instance.host, this.nextVersion++);
    if (before === undefined) {
      this.places.set(id, this.nextPlace++);
      push(this.vmIndex, instance.vm, instance);
      push(this.hostIndex, instance.host, instance);
      push(this.datastoreIndex, instance.datastore, instance);
      return this;
    }
    const place = this.places.get(id)!;
    if (before.host !== instance.host) this.hostVersions.set(before.host, this.nextVersion++);
    this.move(this.vmIndex, before.vm, instance.vm, id, instance, place);
    this.move(this.hostIndex, before.host, instance.host, id, instance, place);
    this.move(this.datastoreIndex, before.datastore, instance.datastore, id, instance, place);
    return this;
  }

  override delete(id: string): boolean {
    const before = super.get(id);
    if (before === undefined) return super.delete(id);
    super.delete(id);
    this.changed(before.vm);
    const place = this.places.get(id)!;
    this.unwellCopies.delete(id);
    this.hostVersions.set(before.host, this.nextVersion++);
    this.removeAt(this.vmIndex, before.vm, place);
    this.removeAt(this.hostIndex, before.host, place);
    this.removeAt(this.datastoreIndex, before.datastore, place);
    this.places.delete(id);
    return true;
  }

  override clear(): void {
    super.clear();
    // Every copy is gone: a reader of the log looks at everything again.
    this.logStart += this.changeLog.length + 1;
    this.changeLog = [];
    for (const index of [this.vmIndex, this.hostIndex, this.datastoreIndex]) index.clear();
    this.unwellCopies.clear();
    this.places.clear();
    for (const host of this.hostVersions.keys()) this.hostVersions.set(host, this.nextVersion++);
  }

  /**
   * Where the copy at `place` is in a list (a datastore's holds thousands): lists are in the Map's
   * order, so by place, and a binary search finds it.
   */
  private positionIn(list: readonly InstanceObservation[], place: number): number {
    let low = 0;
    let high = list.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = this.places.get(list[middle]!.id)!;
      if (at === place) return middle;
      if (at < place) low = middle + 1;
      else high = middle - 1;
    }
    throw new Error(`instance table: no copy at place ${place} in its list; the indexes are out of step`);
  }

  private removeAt(index: Map<string, InstanceObservation[]>, key: string, place: number): void {
    const list = index.get(key)!;
    list.splice(this.positionIn(list, place), 1);
    if (list.length === 0) index.delete(key);
  }

  /** Replaces a copy in its list, or moves it to the list of its new key at its place in the order. */
  private move(index: Map<string, InstanceObservation[]>, fromKey: string, toKey: string, id: string, instance: InstanceObservation, place: number): void {
    if (fromKey === toKey) {
      const list = index.get(fromKey)!;
      list[this.positionIn(list, place)] = instance;
      return;
    }
    this.removeAt(index, fromKey, place);
    const list = index.get(toKey);
    if (list === undefined) {
      index.set(toKey, [instance]);
      return;
    }
    let at = list.length;
    while (at > 0 && this.places.get(list[at - 1]!.id)! > place) at--;
    list.splice(at, 0, instance);
  }
}

/** The indexes of any instances Map: the table's own, or built by one walk of a plain Map. */
export function indexInstances(instances: ReadonlyMap<string, InstanceObservation>): InstanceIndex {
  if (instances instanceof InstanceTable) return instances;
  const byVm = new Map<string, InstanceObservation[]>();
  const byHost = new Map<string, InstanceObservation[]>();
  const byDatastore = new Map<string, InstanceObservation[]>();
  const unwell: InstanceObservation[] = [];
  const places = new Map<InstanceObservation, number>();
  for (const instance of instances.values()) {
    places.set(instance, places.size);
    push(byVm, instance.vm, instance);
    push(byHost, instance.host, instance);
    push(byDatastore, instance.datastore, instance);
    if (instance.state === 'running' && !instance.healthy) unwell.push(instance);
  }
  return { byVm, byHost, byDatastore, unwell, placeOf: (instance) => places.get(instance)!, hostVersion: () => null, changePosition: null, vmsChangedSince: () => null };
}

function push(index: Map<string, InstanceObservation[]>, key: string, instance: InstanceObservation): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [instance]);
  else list.push(instance);
}
