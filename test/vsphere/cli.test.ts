/**
 * The vSphere commands end to end on the simulator: import writes a validating draft and a review,
 * an http URL is refused without --allow-insecure, apply refuses a token without blueprint.apply and
 * changes nothing, applies with an operator's and queues the journal entry, drift exits 3 while
 * something differs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { loadBlueprint } from '../../src/model/index.ts';
import { openStorage } from '../../src/service/storage.ts';
import { VsphereClient } from '../../src/substrate/vsphere/client.ts';
import { readInventory } from '../../src/substrate/vsphere/inventory.ts';
import { populateHospital, SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary, type RunningVcsim } from '../substrate/vsphere/vcsim.ts';

const binary = vcsimBinary();
const COST = { N: 2 ** 10, r: 8, p: 1 };

async function run(argv: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (text) => (out += text), err: (text) => (err += text), color: false });
  return { code, out, err };
}

describe.skipIf(binary === null)('tomaranai import vsphere, vsphere apply and drift on the simulator', () => {
  const directory = mkdtempSync(join(tmpdir(), 'tmr-vsphere-cli-'));
  const credentials = join(directory, 'vcenter.yaml');
  const db = `sqlite:${join(directory, 'tomaranai.db')}`;
  let sim: RunningVcsim;
  let client: VsphereClient;
  let blueprintFile: string;
  const tokens = { operator: '', viewer: '' };

  beforeAll(async () => {
    writeFileSync(credentials, `username: ${SIMULATOR_CREDENTIALS.username}\npassword: ${SIMULATOR_CREDENTIALS.password}\n`, { mode: 0o600 });
    sim = await startVcsim(binary!);
    client = new VsphereClient({ url: sim.url, allowInsecure: true });
    await client.connect(SIMULATOR_CREDENTIALS);
    const reference = readFileSync(new URL('../../blueprints/university-hospital.yaml', import.meta.url), 'utf8');
    const loaded = loadBlueprint(reference);
    if (!loaded.ok) throw new Error('reference');
    const estate = await populateHospital(client, loaded.blueprint);
    let renamed = reference;
    for (const [name, vsphereName] of estate.hostNames) renamed = renamed.replace(new RegExp(`name: ${name},`, 'g'), `name: ${vsphereName.toLowerCase().replace(/_/g, '-')},`);
    blueprintFile = join(directory, 'hospital.yaml');
    writeFileSync(blueprintFile, renamed);
    const storage = await openStorage(db, { instanceId: 'vsphere-cli-test', scryptCost: COST });
    await storage.accounts.addUser('operator', 'an operator passphrase of length', 'operator');
    await storage.accounts.addUser('viewer', 'a viewer passphrase of some length', 'viewer');
    tokens.operator = (await storage.accounts.createToken('operator', 'vsphere', null)).token;
    tokens.viewer = (await storage.accounts.createToken('viewer', 'vsphere', null)).token;
    await storage.close();
  }, 60_000);

  afterAll(async () => {
    delete process.env.TOMARANAI_TOKEN;
    await client?.logout();
    await sim?.stop();
  });

  it('writes a draft that validates and a review report, and refuses http:// without --allow-insecure', async () => {
    const out = join(directory, 'draft.yaml');
    const refused = await run(['import', 'vsphere', '--url', sim.url.href, '--credentials', credentials, '--out', out]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('TMR_VSPHERE_INSECURE');
    const imported = await run(['import', 'vsphere', '--url', sim.url.href, '--credentials', credentials, '--allow-insecure', '--out', out, '--report', 'json', '--name', 'university-hospital']);
    expect(imported.code).toBe(0);
    expect(imported.err).toMatch(/14 hosts, 74 VMs, 52 services/);
    expect(JSON.parse(imported.out).summary).toEqual({ hosts: 14, vms: 74, services: 52, ftSecondariesSkipped: 0 });
    expect(await run(['validate', out])).toMatchObject({ code: 0 });
  });

  it('refuses apply to a viewer token and changes nothing; an operator applies and the journal gets the entry', async () => {
    process.env.TOMARANAI_TOKEN = tokens.viewer;
    const refused = await run(['vsphere', 'apply', blueprintFile, '--url', sim.url.href, '--credentials', credentials, '--allow-insecure', '--db', db]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('TMR_VSPHERE_FORBIDDEN');
    expect((await readInventory(client)).clusters[0]!.configuration.rules).toEqual([]);

    process.env.TOMARANAI_TOKEN = tokens.operator;
    const applied = await run(['vsphere', 'apply', blueprintFile, '--url', sim.url.href, '--credentials', credentials, '--allow-insecure', '--db', db]);
    // 3: applied, but FT and admission control stay different (the simulator has neither).
    expect(applied.code).toBe(3);
    expect(applied.out).toMatch(/^applied \d+ setting/);
    expect(applied.out).toMatch(/still different/);
    expect((await readInventory(client)).clusters[0]!.configuration.rules.length).toBeGreaterThan(50);
    const storage = await openStorage(db, { instanceId: 'vsphere-cli-check', scryptCost: COST });
    const queued = await storage.accounts.pendingAuditCount();
    await storage.close();
    expect(queued).toBeGreaterThanOrEqual(1);
  });

  it('drift reports what still differs and exits 3', async () => {
    const drift = await run(['vsphere', 'drift', blueprintFile, '--url', sim.url.href, '--credentials', credentials, '--allow-insecure']);
    expect(drift.code).toBe(3);
    expect(drift.out).toMatch(/admission/);
  });

  it('drills a host failure on the simulator through the controller, fencing nothing it cannot', async () => {
    const drill = await run(['vsphere', 'drill', blueprintFile, '--url', sim.url.href, '--credentials', credentials, '--allow-insecure', '--simulator', '--watch', '3']);
    expect(drill.code).toBe(0);
    expect(drill.out).toMatch(/fence confirmed: no; restarted: 0; started before a confirmed fence: 0/);
    expect(drill.out).toContain("not vSphere's");
  }, 30_000);
});
