/**
 * Starts govmomi's vSphere simulator with the reference hospital's estate (14 hosts, 74 VMs, HA
 * restart priorities), prints its URL and a credentials file, and runs until SIGINT or SIGTERM.
 * For trying `tomaranai import vsphere`, `vsphere plan|apply|drift` by hand (docs/vsphere.md):
 *   node --import tsx scripts/vcsim-hospital.ts      (the simulator from scripts/ci-vsphere.sh)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadBlueprint } from '../src/model/index.ts';
import { VsphereClient } from '../src/substrate/vsphere/client.ts';
import { populateHospital, SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary } from '../test/substrate/vsphere/vcsim.ts';

const binary = vcsimBinary();
if (binary === null) {
  console.error('no vcsim: run scripts/ci-vsphere.sh (Debian: golang-go, golang-github-vmware-govmomi-dev) or set TOMARANAI_VCSIM');
  process.exit(1);
}
const text = readFileSync(new URL('../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
const loaded = loadBlueprint(text);
if (!loaded.ok) throw new Error('the reference blueprint does not load');
const sim = await startVcsim(binary);
const client = new VsphereClient({ url: sim.url, allowInsecure: true });
await client.connect(SIMULATOR_CREDENTIALS);
const estate = await populateHospital(client, loaded.blueprint);
await client.logout();
// The reference blueprint with its hosts named as vCenter names them, for plan, apply and drift.
let renamed = text;
for (const [name, vsphereName] of estate.hostNames) renamed = renamed.replace(new RegExp(`name: ${name},`, 'g'), `name: ${vsphereName.toLowerCase().replace(/_/g, '-')},`);
writeFileSync('.state/vcsim-hospital.yaml', renamed);
writeFileSync('.state/vcsim-credentials.yaml', `username: ${SIMULATOR_CREDENTIALS.username}\npassword: ${SIMULATOR_CREDENTIALS.password}\n`, { mode: 0o600 });
console.log(`${sim.url.href} (pid ${sim.process.pid}): credentials .state/vcsim-credentials.yaml, blueprint .state/vcsim-hospital.yaml`);
const stop = () => void sim.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
