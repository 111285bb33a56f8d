/**
 * Applies a settings diff through vCenter tasks, in an order vCenter accepts: groups first (rules
 * name them), then HA overrides, rules and admission control, then removals (rules before the
 * groups they name), then FT, one VM at a time. Idempotent: apply computes the diff afresh each
 * time, so a second run finds nothing to do. After applying it reads the cluster back and says what
 * the server did not keep.
 */
import type { Blueprint } from '../model/index.ts';
import type { VsphereClient } from '../substrate/vsphere/client.ts';
import { reconfigureClusterBody, type ClusterChange } from '../substrate/vsphere/cluster-spec.ts';
import { readInventory } from '../substrate/vsphere/inventory.ts';
import { moRef } from '../substrate/vsphere/xml.ts';
import { diffSettings, type SettingDifference, type SettingsDiff } from './diff.ts';
import type { DesiredSettings } from './settings.ts';

export interface ApplyStep {
  readonly what: string;
  readonly task: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ApplyResult {
  readonly dryRun: boolean;
  readonly planned: readonly SettingDifference[];
  readonly steps: readonly ApplyStep[];
  /** Settings still different after applying: the server refused or did not keep them. */
  readonly remaining: readonly SettingDifference[];
}

/** A bound on one ReconfigureComputeResource_Task (vCenter answers large specs slowly). */
const CHANGES_PER_TASK = 200;

const settingOnly = (difference: SettingDifference) => difference.action !== 'report';

export async function applySettings(
  client: VsphereClient,
  blueprint: Blueprint,
  desired: DesiredSettings,
  options: { dryRun: boolean; onStep?: (step: ApplyStep) => void },
): Promise<ApplyResult> {
  const diff = diffSettings(blueprint, desired, await readInventory(client));
  const planned = diff.differences.filter(settingOnly);
  if (options.dryRun || diff.clusterRef === null) return { dryRun: options.dryRun, planned, steps: [], remaining: planned };
  const steps: ApplyStep[] = [];
  const record = (step: ApplyStep) => {
    steps.push(step);
    options.onStep?.(step);
  };
  await reconfigure(client, diff, diff.groupChanges, 'DRS groups', record);
  await reconfigure(client, diff, diff.otherChanges, 'HA overrides, rules and admission control', record);
  await reconfigure(client, diff, diff.removals, 'removals of tmr- rules and groups', record);
  for (const { vm, ref } of diff.ftToEnable) {
    try {
      await client.runTask('CreateSecondaryVMEx_Task', `<CreateSecondaryVMEx_Task>${moRef('_this', ref)}</CreateSecondaryVMEx_Task>`);
      record({ what: `FT for ${vm}`, task: 'CreateSecondaryVMEx_Task', ok: true, detail: 'secondary created' });
    } catch (error) {
      record({ what: `FT for ${vm}`, task: 'CreateSecondaryVMEx_Task', ok: false, detail: error instanceof Error ? error.message : String(error) });
    }
  }
  let after = diffSettings(blueprint, desired, await readInventory(client));
  // Some servers keep only part of an edited override (vcsim keeps the restart priority alone):
  // replace those that are still different, removing and adding them in one spec.
  const replacements = after.otherChanges.flatMap((change): ClusterChange[] =>
    change.kind === 'override' && change.operation === 'edit' ? [{ kind: 'override', operation: 'remove', vm: change.vm }, { ...change, operation: 'add' }] : [],
  );
  if (replacements.length > 0) {
    await reconfigure(client, after, replacements, 'HA overrides replaced (the edit was not kept whole)', record);
    after = diffSettings(blueprint, desired, await readInventory(client));
  }
  return { dryRun: false, planned, steps, remaining: after.differences.filter(settingOnly) };
}

async function reconfigure(client: VsphereClient, diff: SettingsDiff, changes: readonly ClusterChange[], what: string, record: (step: ApplyStep) => void): Promise<void> {
  for (let start = 0; start < changes.length; start += CHANGES_PER_TASK) {
    const batch = changes.slice(start, start + CHANGES_PER_TASK);
    await client.runTask('ReconfigureComputeResource_Task', reconfigureClusterBody(diff.clusterRef!, batch));
    record({ what: `${what} (${batch.length} change${batch.length === 1 ? '' : 's'})`, task: 'ReconfigureComputeResource_Task', ok: true, detail: `cluster ${diff.cluster}` });
  }
}
