/**
 * import, plan, apply and drift against govmomi's vSphere simulator populated through the API with
 * the reference hospital's estate (14 hosts, 74 VMs with their names, sizes and HA restart
 * priorities). CI builds the simulator (scripts/ci-vsphere.sh) and sets TOMARANAI_VCSIM; elsewhere
 * the tests build it when Go and Debian's govmomi are installed, and skip, saying so, otherwise.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBlueprint, type Blueprint } from '../../src/model/index.ts';
import { VsphereClient } from '../../src/substrate/vsphere/client.ts';
import { reconfigureClusterBody } from '../../src/substrate/vsphere/cluster-spec.ts';
import { readInventory } from '../../src/substrate/vsphere/inventory.ts';
import { applySettings } from '../../src/vsphere/apply.ts';
import { diffSettings } from '../../src/vsphere/diff.ts';
import { watchDrift, type DriftReport } from '../../src/vsphere/drift.ts';
import { draftFromInventory } from '../../src/vsphere/import.ts';
import { compileSettings, type DesiredSettings } from '../../src/vsphere/settings.ts';
import { ESTATE_PRIORITY, populateHospital, SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary, type Estate, type RunningVcsim } from '../substrate/vsphere/vcsim.ts';

const REFERENCE = new URL('../../blueprints/university-hospital.yaml', import.meta.url);
const binary = vcsimBinary();
if (binary === null) console.warn('vSphere tests skipped: set TOMARANAI_VCSIM to a vcsim binary, or install golang-go and golang-github-vmware-govmomi-dev (scripts/ci-vsphere.sh)');

function load(text: string): Blueprint {
  const result = loadBlueprint(text);
  if (!result.ok) throw new Error(result.problems.map((problem) => `${problem.line}:${problem.col} ${problem.message}`).join('\n'));
  return result.blueprint;
}

describe.skipIf(binary === null)('a hospital estate on the vSphere simulator', () => {
  const referenceText = readFileSync(REFERENCE, 'utf8');
  const reference = load(referenceText);
  let sim: RunningVcsim;
  let client: VsphereClient;
  let estate: Estate;
  /** The reference blueprint with its hosts named as vCenter names them (what a hospital has after import). */
  let blueprint: Blueprint;
  let desired: DesiredSettings;

  beforeAll(async () => {
    sim = await startVcsim(binary!);
    client = new VsphereClient({ url: sim.url, allowInsecure: true });
    await client.connect(SIMULATOR_CREDENTIALS);
    estate = await populateHospital(client, reference);
    let renamed = referenceText;
    for (const [name, vsphereName] of estate.hostNames) renamed = renamed.replace(new RegExp(`name: ${name},`, 'g'), `name: ${vsphereName.toLowerCase().replace(/_/g, '-')},`);
    blueprint = load(renamed);
    desired = compileSettings(blueprint);
  }, 60_000);

  afterAll(async () => {
    await client?.logout();
    await sim?.stop();
  });

  it('imports a draft that validates, with every service, VM size and the tier vSphere implies', async () => {
    const draft = draftFromInventory(await readInventory(client), { name: 'university-hospital' });
    const imported = load(draft.yaml);
    expect(imported.services.map((service) => service.name).sort()).toEqual(reference.services.map((service) => service.name).sort());
    expect(imported.vms.map((vm) => vm.name).sort()).toEqual(reference.vms.map((vm) => vm.name).sort());
    const importedVm = new Map(imported.vms.map((vm) => [vm.name, vm]));
    for (const vm of reference.vms) {
      const found = importedVm.get(vm.name)!;
      // vSphere counts whole vCPUs: a 0.5 or 1.5 vCPU VM of the blueprint was created with 1 or 2.
      expect([vm.name, found.vcpu, found.memoryGiB, found.diskGiB]).toEqual([vm.name, Math.ceil(vm.vcpu), vm.memoryGiB, vm.diskGiB]);
    }
    const importedTier = new Map(imported.services.map((service) => [service.name, service.tier]));
    for (const service of reference.services) {
      // Without FT in the simulator, vSphere can say no more of a continuous system than "highest restart priority": critical, flagged for review.
      const expected = service.tier === 'continuous' ? 'critical' : service.tier;
      expect([service.name, importedTier.get(service.name)]).toEqual([service.name, expected]);
    }
    const continuousReview = draft.review.filter((item) => item.field === 'tier' && item.because.includes('make it continuous'));
    expect(continuousReview.map((item) => item.subject).sort()).toEqual(reference.services.filter((service) => service.tier === 'continuous').map((service) => `service ${service.name}`).sort());
    expect(new Set(imported.hosts.map((host) => host.room))).toEqual(new Set(['room-a', 'room-b']));
    expect(imported.hosts.every((host) => host.cores === 40 && host.memoryGiB === 768)).toBe(true);
    expect(draft.review.some((item) => item.field === 'dependsOn')).toBe(true);
  });

  it('plans the HA overrides, DRS groups and rules and admission control the tiers imply, against what the cluster has', async () => {
    const diff = diffSettings(blueprint, desired, await readInventory(client));
    expect(diff.missingVms).toEqual([]);
    expect(diff.missingHosts).toEqual([]);
    const byTarget = new Map(diff.differences.filter((difference) => difference.area === 'override').map((difference) => [difference.target, difference]));
    // The estate had restart priorities already (continuous highest, critical high…) and no isolation response.
    expect(byTarget.get('ehr-db-1')).toMatchObject({ action: 'edit', before: 'restart highest, isolation none', after: 'restart highest, isolation powerOff' });
    expect(byTarget.get('pacs-1')).toMatchObject({ action: 'edit', before: 'restart high, isolation none', after: 'restart high, isolation powerOff' });
    expect(byTarget.get('dwh-1')).toMatchObject({ action: 'edit', before: 'restart lowest, isolation none', after: 'restart lowest, isolation shutdown' });
    expect(byTarget.size).toBe(74);
    const rules = diff.differences.filter((difference) => difference.area === 'rule').map((difference) => difference.target);
    expect(rules).toEqual(expect.arrayContaining(['tmr-vms-room-a-in-room-a', 'tmr-vms-room-b-in-room-b', 'tmr-apart-directory', 'tmr-apart-ehr-app', 'tmr-ehr-app-after-ehr-db', 'tmr-pacs-after-directory']));
    expect(rules.filter((name) => name.includes('-after-')).length).toBe(blueprint.services.reduce((sum, service) => sum + service.dependsOn.length, 0));
    const groups = diff.differences.filter((difference) => difference.area === 'group').map((difference) => difference.target);
    expect(groups).toEqual(expect.arrayContaining(['tmr-hosts-room-a', 'tmr-hosts-room-b', 'tmr-vms-room-a', 'tmr-svc-ehr-db']));
    expect(diff.differences.find((difference) => difference.area === 'admission')).toMatchObject({ before: 'off', after: '50 % CPU, 50 % memory reserved' });
    const ft = diff.differences.filter((difference) => difference.area === 'ft');
    expect(ft.find((difference) => difference.target === 'ehr-db-1')).toMatchObject({ action: 'report' });
    expect(ft.find((difference) => difference.target === 'ehr-db-1')!.because).toContain("16 vCPU, over FT's 8");
    expect(ft.filter((difference) => difference.action === 'enable').map((difference) => difference.target).sort()).toEqual(['ehr-app-1', 'ehr-app-2', 'ehr-app-3', 'ehr-app-4', 'icu-1', 'icu-2', 'interface-engine-1', 'interface-engine-2']);
  });

  it('applies overrides, groups and rules so the simulator holds them, and a second apply changes nothing it implements', async () => {
    const dry = await applySettings(client, blueprint, desired, { dryRun: true });
    expect(dry.steps).toEqual([]);
    expect((await readInventory(client)).clusters[0]!.configuration.groups).toEqual([]);

    const applied = await applySettings(client, blueprint, desired, { dryRun: false });
    expect(applied.steps.filter((step) => step.task === 'ReconfigureComputeResource_Task').every((step) => step.ok)).toBe(true);
    // The simulator has no CreateSecondaryVMEx_Task and keeps no dasConfig: FT and admission control stay different (tested on recorded answers).
    expect(applied.steps.filter((step) => step.task === 'CreateSecondaryVMEx_Task').every((step) => !step.ok)).toBe(true);
    expect(new Set(applied.remaining.map((difference) => difference.area))).toEqual(new Set(['admission', 'ft']));

    const configuration = (await readInventory(client)).clusters[0]!.configuration;
    const ehrDb = estate.vmRefs.get('ehr-db-1')!;
    expect(configuration.overrides.get(ehrDb.value)).toEqual({ restartPriority: 'highest', isolationResponse: 'powerOff' });
    expect(configuration.groups.find((group) => group.name === 'tmr-svc-ehr-db')?.members).toEqual([ehrDb.value]);
    expect(configuration.rules.find((rule) => rule.name === 'tmr-ehr-app-after-ehr-db')).toMatchObject({ kind: 'dependency', vmGroup: 'tmr-svc-ehr-app', dependsOnVmGroup: 'tmr-svc-ehr-db' });
    expect(configuration.rules.find((rule) => rule.name === 'tmr-apart-ehr-app')).toMatchObject({ kind: 'antiAffinity' });

    const again = await applySettings(client, blueprint, desired, { dryRun: false });
    expect(new Set(again.planned.map((difference) => difference.area))).toEqual(new Set(['admission', 'ft']));
  });

  it('reports a manual change of a restart priority as drift within 2 s, and its undoing as cleared', async () => {
    const reports: DriftReport[] = [];
    const controller = new AbortController();
    const watching = watchDrift({ client, blueprint, desired, nowMs: () => Date.now(), onReport: (report) => reports.push(report), signal: controller.signal });
    try {
    await expect.poll(() => reports.length, { timeout: 5000 }).toBe(1);
    // After apply only what the simulator cannot hold differs: admission control and FT.
    expect(new Set(reports[0]!.current.filter((difference) => difference.action !== 'report').map((difference) => difference.area))).toEqual(new Set(['admission', 'ft']));
    const cluster = estate.cluster;
    const ehrApp = estate.vmRefs.get('ehr-app-1')!;
    // Someone lowers the EHR application's restart priority in the vSphere client.
    const other = new VsphereClient({ url: sim.url, allowInsecure: true });
    await other.connect(SIMULATOR_CREDENTIALS);
    const changedAtMs = Date.now();
    await other.runTask('ReconfigureComputeResource_Task', reconfigureClusterBody(cluster, [{ kind: 'override', operation: 'edit', vm: ehrApp, restartPriority: 'low', isolationResponse: 'powerOff' }]));
    await expect.poll(() => reports.find((report) => report.appeared.some((difference) => difference.area === 'override' && difference.target === 'ehr-app-1')), { timeout: 2000, interval: 50 }).toBeDefined();
    const seen = reports.find((report) => report.appeared.some((difference) => difference.area === 'override' && difference.target === 'ehr-app-1'))!;
    expect(seen.atMs - changedAtMs).toBeLessThan(2000);
    expect(seen.appeared.find((difference) => difference.area === 'override' && difference.target === 'ehr-app-1')).toMatchObject({ area: 'override', before: 'restart low, isolation powerOff', after: 'restart highest, isolation powerOff' });
    await other.runTask('ReconfigureComputeResource_Task', reconfigureClusterBody(cluster, [{ kind: 'override', operation: 'edit', vm: ehrApp, restartPriority: ESTATE_PRIORITY.continuous!, isolationResponse: 'powerOff' }]));
    await expect.poll(() => reports.some((report) => report.cleared.some((difference) => difference.area === 'override' && difference.target === 'ehr-app-1')), { timeout: 2000, interval: 50 }).toBe(true);
    await other.logout();
    } finally {
      controller.abort();
      await watching;
    }
  }, 20_000);
});
