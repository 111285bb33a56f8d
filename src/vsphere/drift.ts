/**
 * Drift: every setting or placement that no longer matches the blueprint, kept current from
 * vCenter's change stream. A property filter watches the cluster's configuration, where VMs run and
 * whether hosts answer; on any change the watcher reads the inventory again and diffs it
 * (level-triggered: it never relies on having seen a transition), and reports what appeared and what
 * was cleared since the last report.
 */
import type { Blueprint } from '../model/index.ts';
import type { VsphereClient } from '../substrate/vsphere/client.ts';
import { readInventory, refsIn } from '../substrate/vsphere/inventory.ts';
import { diffSettings, type SettingDifference } from './diff.ts';
import type { DesiredSettings } from './settings.ts';

export interface DriftReport {
  readonly atMs: number;
  /** Everything that differs now. */
  readonly current: readonly SettingDifference[];
  readonly appeared: readonly SettingDifference[];
  readonly cleared: readonly SettingDifference[];
}

/** How long one WaitForUpdatesEx waits on the server before the loop checks whether to stop. */
export const DRIFT_WAIT_S = 1;
/** New tasks awaited before a re-read, and how long each (a drift report must come within 2 s). */
const TASKS_AWAITED = 8;
const TASK_SETTLE_MS = 1500;

const keyOf = (difference: SettingDifference) => `${difference.area}|${difference.target}|${difference.before}|${difference.after}`;

export interface DriftWatch {
  readonly client: VsphereClient;
  readonly blueprint: Blueprint;
  readonly desired: DesiredSettings;
  readonly nowMs: () => number;
  readonly onReport: (report: DriftReport) => void;
  readonly signal: AbortSignal;
}

export async function checkDrift(client: VsphereClient, blueprint: Blueprint, desired: DesiredSettings): Promise<SettingDifference[]> {
  return [...diffSettings(blueprint, desired, await readInventory(client)).differences];
}

/** Watches until the signal aborts; the first report is the drift at the start. */
export async function watchDrift(watch: DriftWatch): Promise<void> {
  const { client, blueprint, desired } = watch;
  const filters = [
    await client.watch('ClusterComputeResource', ['configurationEx']),
    await client.watch('VirtualMachine', ['runtime.host', 'runtime.powerState', 'runtime.faultToleranceState']),
    await client.watch('HostSystem', ['runtime.connectionState']),
  ];
  // Some servers (vcsim) change a cluster's configuration without a property update; every change
  // made through the API is a task, so new tasks are watched too and awaited before the re-read.
  const taskManager = client.serviceContent.taskManager;
  if (taskManager !== null) filters.push(await client.watchObject(taskManager, ['recentTask']));
  let seenTasks = new Set<string>();
  let known = new Map<string, SettingDifference>();
  const report = async () => {
    const current = await checkDrift(client, blueprint, desired);
    const now = new Map(current.map((difference) => [keyOf(difference), difference]));
    const appeared = current.filter((difference) => !known.has(keyOf(difference)));
    const cleared = [...known].filter(([key]) => !now.has(key)).map(([, difference]) => difference);
    const first = known.size === 0 && appeared.length === current.length;
    known = now;
    if (first || appeared.length > 0 || cleared.length > 0) watch.onReport({ atMs: watch.nowMs(), current, appeared, cleared });
  };
  try {
    let version = (await client.waitForUpdates('', 0))?.version ?? '';
    await report();
    while (!watch.signal.aborted) {
      const batch = await client.waitForUpdates(version, DRIFT_WAIT_S);
      if (batch === null) continue;
      version = batch.version;
      const recent = batch.updates.flatMap((update) => update.changes.filter((change) => change.name === 'recentTask').flatMap((change) => refsIn(change.val)));
      const fresh = recent.filter((task) => !seenTasks.has(task.value));
      if (recent.length > 0) seenTasks = new Set(recent.map((task) => task.value));
      for (const task of fresh.slice(-TASKS_AWAITED)) await client.waitForTask(task, 'a task seen by the drift watch', undefined, TASK_SETTLE_MS).catch(() => undefined);
      if (batch.updates.length > 0) await report();
    }
  } finally {
    for (const filter of filters) await client.destroyFilter(filter).catch(() => undefined);
  }
}
