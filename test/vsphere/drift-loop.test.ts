/**
 * The drift loop of `serve --vsphere-drift`: it survives a failed connection (connects again after a
 * pause) and records each report, a manual change within 2 s.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBlueprint, type Blueprint } from '../../src/model/index.ts';
import { VsphereClient } from '../../src/substrate/vsphere/client.ts';
import { reconfigureClusterBody } from '../../src/substrate/vsphere/cluster-spec.ts';
import type { DriftReport } from '../../src/vsphere/drift.ts';
import { startDriftLoop } from '../../src/vsphere/drift-loop.ts';
import { populateHospital, SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary, type Estate, type RunningVcsim } from '../substrate/vsphere/vcsim.ts';

const binary = vcsimBinary();

describe.skipIf(binary === null)('the drift loop of serve', () => {
  let sim: RunningVcsim;
  let estate: Estate;
  let blueprint: Blueprint;

  beforeAll(async () => {
    sim = await startVcsim(binary!);
    const client = new VsphereClient({ url: sim.url, allowInsecure: true });
    await client.connect(SIMULATOR_CREDENTIALS);
    const text = readFileSync(new URL('../../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
    const reference = loadBlueprint(text);
    if (!reference.ok) throw new Error('reference');
    estate = await populateHospital(client, reference.blueprint);
    await client.logout();
    let renamed = text;
    for (const [name, vsphereName] of estate.hostNames) renamed = renamed.replace(new RegExp(`name: ${name},`, 'g'), `name: ${vsphereName.toLowerCase().replace(/_/g, '-')},`);
    const loaded = loadBlueprint(renamed);
    if (!loaded.ok) throw new Error('renamed');
    blueprint = loaded.blueprint;
  }, 60_000);
  afterAll(async () => {
    await sim?.stop();
  });

  it('connects again after a failure and records a manual change within 2 s', async () => {
    const recorded: DriftReport[] = [];
    const logged: string[] = [];
    let attempts = 0;
    const loop = startDriftLoop({
      blueprint,
      nowMs: () => Date.now(),
      log: (line) => logged.push(line),
      record: async (report) => void recorded.push(report),
      connect: async () => {
        attempts++;
        if (attempts === 1) throw new Error('vCenter did not answer');
        const client = new VsphereClient({ url: sim.url, allowInsecure: true });
        await client.connect(SIMULATOR_CREDENTIALS);
        return client;
      },
    });
    try {
      await expect.poll(() => recorded.length, { timeout: 5_000 }).toBeGreaterThan(0);
      expect(logged[0]).toContain('vCenter did not answer; again in 1 s');
      const actor = new VsphereClient({ url: sim.url, allowInsecure: true });
      await actor.connect(SIMULATOR_CREDENTIALS);
      const changedAtMs = Date.now();
      await actor.runTask('ReconfigureComputeResource_Task', reconfigureClusterBody(estate.cluster, [{ kind: 'override', operation: 'edit', vm: estate.vmRefs.get('lis-1')!, restartPriority: 'disabled', isolationResponse: 'none' }]));
      await expect.poll(() => recorded.find((report) => report.appeared.some((difference) => difference.area === 'override' && difference.target === 'lis-1')), { timeout: 2_000, interval: 50 }).toBeDefined();
      const report = recorded.find((candidate) => candidate.appeared.some((difference) => difference.area === 'override' && difference.target === 'lis-1'))!;
      expect(report.atMs - changedAtMs).toBeLessThan(2_000);
      await actor.logout();
    } finally {
      await loop.stop();
    }
  }, 20_000);
});
