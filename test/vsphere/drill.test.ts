/**
 * The host-failure drill on the vSphere simulator: the unchanged controller over the vSphere
 * substrate, a host made notResponding through the simulator's test endpoint. Without a power
 * fence the controller fences nothing it cannot and restarts nothing of the host; with one (a
 * stand-in for a BMC agent that confirms the host off) it restarts every VM of the host elsewhere,
 * each only after the fence.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBlueprint, type Blueprint } from '../../src/model/index.ts';
import { VsphereClient } from '../../src/substrate/vsphere/client.ts';
import { readInventory } from '../../src/substrate/vsphere/inventory.ts';
import { runHostFailureDrill } from '../../src/vsphere/drill.ts';
import { populateHospital, SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary, type RunningVcsim } from '../substrate/vsphere/vcsim.ts';

const binary = vcsimBinary();

describe.skipIf(binary === null)('a host failure drill on the vSphere simulator', () => {
  let sim: RunningVcsim;
  let client: VsphereClient;
  let blueprint: Blueprint;
  let vsphereName: Map<string, string>;
  const setHost = async (host: string, state: string) => {
    const response = await fetch(`${sim.url.origin}/peer/host-state?host=${encodeURIComponent(vsphereName.get(host)!)}&state=${state}`, { method: 'POST' });
    if (!response.ok) throw new Error(await response.text());
  };

  beforeAll(async () => {
    sim = await startVcsim(binary!);
    client = new VsphereClient({ url: sim.url, allowInsecure: true });
    await client.connect(SIMULATOR_CREDENTIALS);
    const text = readFileSync(new URL('../../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
    const reference = loadBlueprint(text);
    if (!reference.ok) throw new Error('reference');
    const estate = await populateHospital(client, reference.blueprint);
    let renamed = text;
    vsphereName = new Map();
    for (const [name, original] of estate.hostNames) {
      const blueprintName = original.toLowerCase().replace(/_/g, '-');
      vsphereName.set(blueprintName, original);
      renamed = renamed.replace(new RegExp(`name: ${name},`, 'g'), `name: ${blueprintName},`);
    }
    const loaded = loadBlueprint(renamed);
    if (!loaded.ok) throw new Error('renamed');
    blueprint = loaded.blueprint;
  }, 60_000);

  afterAll(async () => {
    await client?.logout();
    await sim?.stop();
  });

  it('without a way to fence, fences nothing and restarts nothing of the host, and says why', async () => {
    const report = await runHostFailureDrill({ client, blueprint, strike: (host) => setHost(host, 'notResponding'), heal: (host) => setHost(host, 'connected'), watchMs: 4_000 });
    expect(report.vmsOnHost.length).toBeGreaterThan(0);
    expect(report.fenceConfirmed).toBe(false);
    expect(report.restarted).toEqual([]);
    expect(report.startedUnfenced).toEqual([]);
    const fence = report.decisions.find((decision) => decision.type === 'fence.completed');
    expect(fence?.detail).toContain('vCenter cannot switch off a host that does not answer');
    expect(report.notes.join(' ')).toContain("not vSphere's");
  }, 30_000);

  it('with a power fence, restarts every VM of the failed host on other hosts, each after the fence', async () => {
    const fenced: string[] = [];
    const report = await runHostFailureDrill({
      client,
      blueprint,
      strike: (host) => setHost(host, 'notResponding'),
      heal: (host) => setHost(host, 'connected'),
      powerFence: { off: async (host) => (fenced.push(host), { ok: true, detail: 'BMC reports chassis power off' }) },
      watchMs: 15_000,
    });
    expect(fenced).toEqual([report.host]);
    expect(report.fenceConfirmed).toBe(true);
    expect(report.startedUnfenced).toEqual([]);
    expect(report.restarted.map((restart) => restart.vm).sort()).toEqual(report.vmsOnHost);
    expect(report.restarted.every((restart) => restart.toHost !== report.host)).toBe(true);
    // vCenter holds one VM object per VM: after the drill each runs once, on the host the controller chose.
    const inventory = await readInventory(client);
    const hostName = new Map(inventory.hosts.map((host) => [host.ref.value, host.name.toLowerCase().replace(/_/g, '-')]));
    for (const restart of report.restarted) {
      const vm = inventory.vms.find((candidate) => candidate.name === restart.vm)!;
      expect([vm.name, vm.powerState, hostName.get(vm.host!)]).toEqual([restart.vm, 'poweredOn', restart.toHost]);
    }
  }, 40_000);
});
