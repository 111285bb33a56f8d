/**
 * How soon `vsphere drift` reports a manual change, on govmomi's simulator with the reference
 * hospital's estate: five HA override changes made by another session, each timed from the end of
 * its task to the report that names it. The simulator's numbers, not vSphere's (vcsim batches
 * updates every 250 ms and answers in milliseconds).
 *   node --import tsx bench/vsphere-drift.ts      (needs scripts/ci-vsphere.sh or TOMARANAI_VCSIM)
 */
import { readFileSync } from 'node:fs';
import { loadBlueprint } from '../src/model/index.ts';
import { VsphereClient } from '../src/substrate/vsphere/client.ts';
import { reconfigureClusterBody } from '../src/substrate/vsphere/cluster-spec.ts';
import { watchDrift, type DriftReport } from '../src/vsphere/drift.ts';
import { compileSettings } from '../src/vsphere/settings.ts';
import { populateHospital, SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary } from '../test/substrate/vsphere/vcsim.ts';

const binary = vcsimBinary();
if (binary === null) throw new Error('no vcsim: run scripts/ci-vsphere.sh or set TOMARANAI_VCSIM');
const text = readFileSync(new URL('../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
const reference = loadBlueprint(text);
if (!reference.ok) throw new Error('the reference blueprint does not load');
const sim = await startVcsim(binary);
try {
  const actor = new VsphereClient({ url: sim.url, allowInsecure: true });
  await actor.connect(SIMULATOR_CREDENTIALS);
  const estate = await populateHospital(actor, reference.blueprint);
  let renamed = text;
  for (const [name, vsphereName] of estate.hostNames) renamed = renamed.replace(new RegExp(`name: ${name},`, 'g'), `name: ${vsphereName.toLowerCase().replace(/_/g, '-')},`);
  const loaded = loadBlueprint(renamed);
  if (!loaded.ok) throw new Error('renamed blueprint');
  const watcher = new VsphereClient({ url: sim.url, allowInsecure: true });
  await watcher.connect(SIMULATOR_CREDENTIALS);
  const reports: DriftReport[] = [];
  const stop = new AbortController();
  const watching = watchDrift({ client: watcher, blueprint: loaded.blueprint, desired: compileSettings(loaded.blueprint), nowMs: () => Date.now(), onReport: (report) => reports.push(report), signal: stop.signal });
  while (reports.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  const latenciesMs: number[] = [];
  for (const vm of ['ehr-app-2', 'pacs-2', 'lis-1', 'directory-1', 'pharmacy-1']) {
    const before = reports.length;
    await actor.runTask('ReconfigureComputeResource_Task', reconfigureClusterBody(estate.cluster, [{ kind: 'override', operation: 'edit', vm: estate.vmRefs.get(vm)!, restartPriority: 'disabled', isolationResponse: 'none' }]));
    const changedAtMs = Date.now();
    for (let waited = 0; waited < 10_000 && !reports.slice(before).some((report) => report.appeared.some((difference) => difference.target === vm)); waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    latenciesMs.push(Date.now() - changedAtMs);
  }
  console.log(`vsphere drift on the simulator: a manual HA override change reported after ${latenciesMs.join(', ')} ms (max ${Math.max(...latenciesMs)} ms)`);
  stop.abort();
  await watching;
  await watcher.logout();
  await actor.logout();
} finally {
  await sim.stop();
}
