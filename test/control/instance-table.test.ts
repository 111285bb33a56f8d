import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexInstances, InstanceTable } from '../../src/control/instance-table.ts';
import type { InstanceObservation } from '../../src/ports/index.ts';

const VMS = ['a', 'b', 'c'];
const HOSTS = ['h1', 'h2', 'h3'];

function copy(id: number, vm: string, host: string, healthy = true): InstanceObservation {
  return { id: `${vm}#${id}`, vm, host, role: id % 2 === 0 ? 'primary' : 'secondary', state: 'running', healthy, synced: false, datastore: 'ds' };
}

/** Each index as plain arrays of ids, for comparison; the unwell copies in the Map's order. */
function ids(index: ReturnType<typeof indexInstances>) {
  const flat = (map: ReadonlyMap<string, readonly InstanceObservation[]>) => Object.fromEntries([...map].sort((x, y) => x[0].localeCompare(y[0])).map(([key, list]) => [key, list.map((instance) => instance.id)]));
  const unwell = [...index.unwell].sort((a, b) => index.placeOf(a) - index.placeOf(b)).map((instance) => instance.id);
  return { byVm: flat(index.byVm), byHost: flat(index.byHost), byDatastore: flat(index.byDatastore), unwell };
}

type Step = { kind: 'add'; vm: number; host: number } | { kind: 'update'; pick: number; host: number; healthy: boolean; state: InstanceObservation['state']; datastore: string } | { kind: 'delete'; pick: number } | { kind: 'clear' };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), vm: fc.nat(VMS.length - 1), host: fc.nat(HOSTS.length - 1) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('update' as const), pick: fc.nat(50), host: fc.nat(HOSTS.length - 1), healthy: fc.boolean(), state: fc.constantFrom('booting' as const, 'running' as const, 'stopping' as const), datastore: fc.constantFrom('ds', 'ds-2') }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
);

describe('the instance table', () => {
  it('keeps its indexes as a walk of the same Map would build them, through adds, moves, deletes and clears', () => {
    // A copy: healthy and running when added, then seen again in any state, on any host and datastore.
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const table = new InstanceTable();
        const plain = new Map<string, InstanceObservation>();
        let next = 0;
        for (const change of steps) {
          const existing = [...plain.values()];
          if (change.kind === 'add') {
            const instance = copy(next++, VMS[change.vm]!, HOSTS[change.host]!);
            table.set(instance.id, instance);
            plain.set(instance.id, instance);
          } else if (change.kind === 'update' && existing.length > 0) {
            // A copy seen again: healthier or not, or on another host (a live migration).
            const before = existing[change.pick % existing.length]!;
            const after = { ...before, host: HOSTS[change.host]!, healthy: change.healthy, state: change.state, datastore: change.datastore };
            table.set(after.id, after);
            plain.set(after.id, after);
          } else if (change.kind === 'delete' && existing.length > 0) {
            const gone = existing[change.pick % existing.length]!;
            expect(table.delete(gone.id)).toBe(plain.delete(gone.id));
          } else if (change.kind === 'clear') {
            table.clear();
            plain.clear();
          }
          expect([...table.entries()]).toEqual([...plain.entries()]);
          expect(ids(indexInstances(table))).toEqual(ids(indexInstances(plain)));
          const places = [...table.values()].map((instance) => table.placeOf(instance));
          expect(places).toEqual([...places].sort((a, b) => a - b));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is a Map for its readers, built from entries as one', () => {
    const entries: [string, InstanceObservation][] = [copy(0, 'a', 'h1'), copy(1, 'a', 'h2'), copy(2, 'b', 'h1')].map((instance) => [instance.id, instance]);
    const table = new InstanceTable(entries);
    expect(table).toBeInstanceOf(Map);
    expect(table.size).toBe(3);
    expect(table.byVm.get('a')!.map((instance) => instance.host)).toEqual(['h1', 'h2']);
    expect(table.byHost.get('h1')!.map((instance) => instance.vm)).toEqual(['a', 'b']);
    expect(table.delete('nothing#9')).toBe(false);
  });

  it('refuses a copy set under another id, and changes nothing', () => {
    const table = new InstanceTable();
    expect(() => table.set('a#1', copy(2, 'a', 'h1'))).toThrow(/set under the id a#1; key each copy by its own id/);
    expect(table.size).toBe(0);
    expect(table.byVm.size).toBe(0);
  });

  it('logs every VM whose copies changed, so a reader that kept its place learns what to look at again', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), fc.array(step, { maxLength: 20 }), (before, after) => {
        const table = new InstanceTable();
        let next = 0;
        const apply = (change: Step) => {
          const existing = [...table.values()];
          if (change.kind === 'add') table.set(`${VMS[change.vm]!}#${next}`, copy(next++, VMS[change.vm]!, HOSTS[change.host]!));
          else if (change.kind === 'update' && existing.length > 0) {
            const was = existing[change.pick % existing.length]!;
            table.set(was.id, { ...was, host: HOSTS[change.host]!, healthy: change.healthy, state: change.state, datastore: change.datastore });
          } else if (change.kind === 'delete' && existing.length > 0) table.delete(existing[change.pick % existing.length]!.id);
          else if (change.kind === 'clear') table.clear();
        };
        before.forEach(apply);
        const position = table.changePosition;
        const copiesOf = (vm: string) => JSON.stringify(table.byVm.get(vm) ?? []);
        const was = new Map(VMS.map((vm) => [vm, copiesOf(vm)]));
        after.forEach(apply);
        const logged = table.vmsChangedSince(position);
        if (after.some((change) => change.kind === 'clear')) {
          // Cleared: the log does not reach back; the reader must look at everything.
          expect(logged).toBeNull();
          return;
        }
        expect(logged).not.toBeNull();
        for (const vm of VMS) if (copiesOf(vm) !== was.get(vm)) expect(logged, `${vm}'s copies changed`).toContain(vm);
        expect(table.vmsChangedSince(table.changePosition)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('forgets the older half of its log past 65,536 changes: a reader that far behind is told to look at everything', () => {
    const table = new InstanceTable();
    const start = table.changePosition;
    for (let index = 0; index < 70_000; index++) table.set('a#0', copy(0, 'a', HOSTS[index % HOSTS.length]!));
    expect(table.vmsChangedSince(start)).toBeNull();
    expect(table.vmsChangedSince(table.changePosition - 10)).toEqual(Array.from({ length: 10 }, () => 'a'));
    expect(table.vmsChangedSince(table.changePosition + 1)).toBeNull();
  });
});
