/**
 * A host-failure drill on vSphere: the unchanged controller drives the vSphere substrate on real
 * time; a host is made to stop answering vCenter (`strike`, e.g. the simulator's test endpoint);
 * the report lists the controller's decisions and their outcomes from its journal, which VMs were
 * restarted where, and whether any VM of the host was started before its fence was confirmed.
 * Timings on a simulator are the simulator's, not vSphere's: the report says so.
 */
import { Controller } from '../control/controller.ts';
import { MemoryJournal } from '../journal/memory.ts';
import type { Blueprint } from '../model/index.ts';
import type { JournalEntry } from '../ports/index.ts';
import { RealClock } from '../runtime/real-clock.ts';
import type { VsphereClient } from '../substrate/vsphere/client.ts';
import { VsphereSubstrate, type PowerFence } from '../substrate/vsphere/substrate.ts';

export interface HostDrillOptions {
  readonly client: VsphereClient;
  readonly blueprint: Blueprint;
  /** Makes a host stop answering vCenter, and later answer again. */
  readonly strike: (host: string) => Promise<void>;
  readonly heal: (host: string) => Promise<void>;
  readonly powerFence?: PowerFence;
  /** How long to watch the controller after the strike. */
  readonly watchMs: number;
  /** The host to fail (default: the one running the most critical VMs). */
  readonly host?: string;
}

export interface HostDrillReport {
  readonly substrate: 'vsphere';
  readonly host: string;
  readonly vmsOnHost: readonly string[];
  readonly fenceConfirmed: boolean;
  readonly restarted: readonly { readonly vm: string; readonly toHost: string; readonly afterFailureS: number }[];
  /** VMs of the failed host started before a confirmed fence (must be none). */
  readonly startedUnfenced: readonly string[];
  /** Every decision and outcome the controller journaled after the strike. */
  readonly decisions: readonly { readonly atS: number; readonly kind: string; readonly type: string; readonly subject: string; readonly detail: string }[];
  readonly notes: readonly string[];
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function busiestCriticalHost(substrate: VsphereSubstrate, blueprint: Blueprint): string {
  const tierOfVm = new Map(blueprint.services.flatMap((service) => service.vms.map((vm) => [vm.name, service.tier] as const)));
  const counts = new Map<string, number>();
  for (const instance of substrate.snapshot().instances) if (tierOfVm.get(instance.vm) === 'critical') counts.set(instance.host, (counts.get(instance.host) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? blueprint.hosts[0]!.name;
}

const detailOf = (entry: JournalEntry): string => {
  const data = entry.data as Record<string, unknown>;
  return ['reason', 'detail', 'host', 'toHost', 'refused', 'ok'].filter((key) => data[key] !== undefined).map((key) => `${key}=${String(data[key])}`).join(' ');
};

export async function runHostFailureDrill(options: HostDrillOptions): Promise<HostDrillReport> {
  const clock = new RealClock();
  const journal = new MemoryJournal();
  const substrate = new VsphereSubstrate({ client: options.client, blueprint: options.blueprint, nowMs: () => clock.nowMs(), ...(options.powerFence ? { powerFence: options.powerFence } : {}) });
  await substrate.open();
  const controller = new Controller({ blueprint: options.blueprint, substrate, clock, journal, epoch: 1, actor: 'controller' });
  const host = options.host ?? busiestCriticalHost(substrate, options.blueprint);
  const vmsOnHost = substrate.snapshot().instances.filter((instance) => instance.host === host).map((instance) => instance.vm).sort();
  let struckAtMs = 0;
  let fromSeq = 1;
  try {
    await controller.start();
    await delay(1_000);
    fromSeq = journal.entries().length + 1;
    struckAtMs = clock.nowMs();
    journal.append({ atMs: struckAtMs, kind: 'fault', type: 'fault.injected', subject: host, actor: 'drill', data: { kind: 'host.notResponding', vms: vmsOnHost.length } });
    await options.strike(host);
    const deadline = Date.now() + options.watchMs;
    while (Date.now() < deadline) {
      const running = new Map(substrate.snapshot().instances.map((instance) => [instance.vm, instance.host]));
      if (vmsOnHost.every((vm) => running.has(vm) && running.get(vm) !== host)) break;
      await delay(200);
    }
    await delay(500);
  } finally {
    controller.stop();
    await options.heal(host).catch(() => undefined);
    await substrate.close();
  }
  const after = journal.entries(fromSeq);
  const fence = after.find((entry) => entry.type === 'fence.completed' && entry.subject === host && (entry.data as { ok?: boolean }).ok === true);
  const starts = after.filter((entry) => entry.kind === 'action' && entry.type === 'startVm' && vmsOnHost.includes(entry.subject) && (entry.data as { ok?: boolean }).ok === true);
  const restarted = starts.map((entry) => ({ vm: entry.subject, toHost: String((entry.data as { host?: string }).host ?? ''), afterFailureS: Math.round((entry.atMs - struckAtMs) / 100) / 10 }));
  const startedUnfenced = starts.filter((entry) => fence === undefined || entry.seq < fence.seq).map((entry) => entry.subject);
  return {
    substrate: 'vsphere',
    host,
    vmsOnHost,
    fenceConfirmed: fence !== undefined,
    restarted,
    startedUnfenced,
    decisions: after.filter((entry) => entry.kind === 'decision' || entry.kind === 'action' || entry.kind === 'outcome' || entry.kind === 'fault').map((entry) => ({ atS: Math.round((entry.atMs - struckAtMs) / 100) / 10, kind: entry.kind, type: entry.type, subject: entry.subject, detail: detailOf(entry) })),
    notes: [
      substrate.note,
      'timings on a simulator are the simulator\'s (vcsim answers in milliseconds, enforces nothing about host state and runs no HA), not vSphere\'s',
      ...(options.powerFence === undefined ? ['no power fence configured: the controller may fence only through vCenter, which cannot switch off a host that does not answer'] : []),
    ],
  };
}
