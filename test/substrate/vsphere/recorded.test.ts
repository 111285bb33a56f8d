/**
 * The client, import, plan and apply on SOAP answers in vCenter 6.5's shape (test/fixtures/vsphere)
 * for what the simulator cannot answer: FT (detection, a secondary left out, enablement through
 * CreateSecondaryVMEx_Task and its failure), paged retrieval, admission control read back, faults,
 * and the refusal of an insecure endpoint.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadBlueprint } from '../../../src/model/index.ts';
import { VsphereClient } from '../../../src/substrate/vsphere/client.ts';
import { readInventory, VM_PATHS } from '../../../src/substrate/vsphere/inventory.ts';
import { applySettings } from '../../../src/vsphere/apply.ts';
import { diffSettings } from '../../../src/vsphere/diff.ts';
import { draftFromInventory } from '../../../src/vsphere/import.ts';
import { compileSettings } from '../../../src/vsphere/settings.ts';

const FIXTURES = new URL('../../fixtures/vsphere/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(`${name}.xml`, FIXTURES), 'utf8');
const EMPTY_RETRIEVE =
  '<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>';

interface Recorded {
  readonly method: string;
  readonly body: string;
  readonly cookie: string | undefined;
}

/** Answers each method from its fixture; RetrievePropertiesEx by the type asked for (or the task's id). */
function answer(method: string, body: string, faults: ReadonlySet<string>): string {
  if (faults.has(method)) return fixture(method === 'Login' ? 'Fault.InvalidLogin' : 'Fault.NoPermission');
  if (method === 'RetrievePropertiesEx') {
    if (body.includes('task-9002')) return fixture('RetrievePropertiesEx.Task.error');
    const type = /<propSet><type>(\w+)<\/type>/.exec(body)?.[1] ?? '';
    try {
      return fixture(`RetrievePropertiesEx.${type}`);
    } catch {
      return EMPTY_RETRIEVE;
    }
  }
  // A reconfigure answers with a task like any other; the recorded FT task stands in for it.
  if (method === 'ReconfigureComputeResource_Task') return fixture('CreateSecondaryVMEx_Task').replace(/CreateSecondaryVMEx_TaskResponse/g, 'ReconfigureComputeResource_TaskResponse');
  return fixture(method);
}

const BLUEPRINT = `
apiVersion: tomaranai/v1
kind: Hospital
name: ft-estate
powerFeeds: [{name: feed-a, room: room-a}, {name: feed-b, room: room-b}]
hosts:
  - {name: host-a, cores: 40, ghz: 2.8, memoryGiB: 768, watts: 750, room: room-a, rack: a1, powerFeed: feed-a}
  - {name: host-b, cores: 40, ghz: 2.8, memoryGiB: 768, watts: 750, room: room-b, rack: b1, powerFeed: feed-b}
datastores: [{name: ds-a, room: room-a}, {name: ds-b, room: room-b}]
services:
  - {name: ehr-db, tier: continuous, vendor: vendor-a, datastore: ds-b, vms: [{count: 1, vcpu: 16, memoryGiB: 256, diskGiB: 200}]}
  - {name: ehr-app, tier: continuous, vendor: vendor-a, datastore: ds-b, dependsOn: [ehr-db], vms: [{count: 2, vcpu: 8, memoryGiB: 64, diskGiB: 200}]}
`;

describe('vSphere answers the simulator cannot give (recorded shapes)', () => {
  let server: Server;
  let url: URL;
  const requests: Recorded[] = [];
  const faults = new Set<string>();

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const method = /<soapenv:Body><(\w+)/.exec(body)?.[1] ?? '';
        requests.push({ method, body, cookie: request.headers.cookie });
        const headers: Record<string, string> = { 'Content-Type': 'text/xml; charset=utf-8' };
        if (method === 'Login') headers['Set-Cookie'] = 'vmware_soap_session="52c3f3a8"; Path=/; HttpOnly; Secure;';
        let text: string;
        try {
          text = answer(method, body, faults);
        } catch {
          response.writeHead(500, headers).end(fixture('Fault.NoPermission'));
          return;
        }
        response.writeHead(text.includes('soapenv:Fault') ? 500 : 200, headers).end(text);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/sdk`);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    requests.length = 0;
    faults.clear();
  });

  const connected = async () => {
    const client = new VsphereClient({ url, allowInsecure: true });
    await client.connect({ username: 'tomaranai', password: 'secret' });
    return client;
  };

  it('logs in once and sends the session cookie on every later call', async () => {
    const client = await connected();
    await client.retrieveAll('VirtualMachine', ['name']);
    await client.logout();
    expect(requests.map((request) => request.method)).toEqual(['RetrieveServiceContent', 'Login', 'CreateContainerView', 'RetrievePropertiesEx', 'ContinueRetrievePropertiesEx', 'DestroyView', 'Logout']);
    expect(requests.slice(2).every((request) => request.cookie === 'vmware_soap_session="52c3f3a8"')).toBe(true);
    expect(requests[1]!.body).toContain('<userName>tomaranai</userName>');
  });

  it('keeps the session alive with CurrentTime, on the session cookie', async () => {
    const client = await connected();
    expect(await client.keepAlive()).toBe('2026-12-01T09:00:00.123456Z');
    expect(requests.at(-1)).toMatchObject({ method: 'CurrentTime', cookie: 'vmware_soap_session="52c3f3a8"' });
  });

  it('turns a refused login into TMR_VSPHERE_LOGIN and sends nothing after it', async () => {
    faults.add('Login');
    await expect(connected()).rejects.toMatchObject({ code: 'TMR_VSPHERE_LOGIN', message: expect.stringContaining('incorrect user name or password') });
    expect(requests.map((request) => request.method)).toEqual(['RetrieveServiceContent', 'Login']);
  });

  it('reads every page of a paged retrieval, continuing with the token vCenter gave', async () => {
    const client = await connected();
    const vms = await client.retrieveAll('VirtualMachine', VM_PATHS);
    expect(vms.map((vm) => vm.obj.value)).toEqual(['vm-101', 'vm-102', 'vm-103', 'vm-104']);
    expect(requests.find((request) => request.method === 'ContinueRetrievePropertiesEx')!.body).toContain('<token>1</token>');
    expect(requests.find((request) => request.method === 'RetrievePropertiesEx')!.body).toContain('<maxObjects>500</maxObjects>');
  });

  it('imports an FT-protected VM as continuous and leaves its FT secondary out', async () => {
    const inventory = await readInventory(await connected());
    expect(inventory.vms.map((vm) => [vm.name, vm.faultTolerance, vm.ftRole])).toEqual([
      ['ehr-app-1', 'running', 1],
      ['ehr-app-1', 'running', 2],
      ['ehr-app-2', 'notConfigured', 1],
      ['ehr-db-1', 'notConfigured', 1],
    ]);
    const draft = draftFromInventory(inventory, { name: 'ft-estate' });
    expect(draft.summary.ftSecondariesSkipped).toBe(1);
    const services = draft.document.services as { name: string; tier: string; vms: { count: number }[] }[];
    expect(services.map((service) => [service.name, service.tier, service.vms[0]!.count])).toEqual([
      ['ehr-app', 'continuous', 2],
      ['ehr-db', 'critical', 1],
    ]);
    expect(draft.review.find((item) => item.subject === 'service ehr-app' && item.field === 'tier')!.because).toBe('vSphere FT protects it (running) (its VMs differ: the highest taken)');
    expect(draft.review.find((item) => item.subject === 'service ehr-db' && item.field === 'tier')!.because).toContain('no FT: if it must not stop at all, make it continuous');
  });

  it('reads HA admission control, overrides, and rules of every kind back from the cluster', async () => {
    const [cluster] = (await readInventory(await connected())).clusters;
    expect(cluster!.configuration.admission).toEqual({ enabled: true, cpuPercent: 33, memoryPercent: 33 });
    expect(cluster!.configuration.overrides.get('vm-104')).toEqual({ restartPriority: 'highest', isolationResponse: 'powerOff' });
    expect(cluster!.configuration.rules.map((rule) => [rule.kind, rule.name])).toEqual([
      ['antiAffinity', 'tmr-apart-ehr-app'],
      ['vmHost', 'backup-window'],
    ]);
    expect(cluster!.configuration.groups).toEqual([
      { kind: 'vm', name: 'backup-vms', members: ['vm-104'] },
      { kind: 'host', name: 'room-b-hosts', members: ['host-31'] },
    ]);
  });

  it('plans FT for continuous VMs within its limits, says why not for the rest, and enables it through CreateSecondaryVMEx_Task', async () => {
    const loaded = loadBlueprint(BLUEPRINT);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const desired = compileSettings(loaded.blueprint);
    const client = await connected();
    const diff = diffSettings(loaded.blueprint, desired, await readInventory(client));
    const ft = diff.differences.filter((difference) => difference.area === 'ft');
    expect(ft.map((difference) => [difference.target, difference.action])).toEqual([
      ['ehr-db-1', 'report'],
      ['ehr-app-2', 'enable'],
    ]);
    expect(ft[0]!.because).toContain("16 vCPU, over FT's 8; 256 GiB of memory, over FT's 128 GiB");
    // The admission control of 33 % differs from what one room's loss takes (50 %).
    expect(diff.differences.find((difference) => difference.area === 'admission')).toMatchObject({ before: '33 % CPU, 33 % memory', after: '50 % CPU, 50 % memory reserved' });

    requests.length = 0;
    const result = await applySettings(client, loaded.blueprint, desired, { dryRun: false });
    const secondary = requests.filter((request) => request.method === 'CreateSecondaryVMEx_Task');
    expect(secondary.map((request) => /<_this type="VirtualMachine">([^<]+)</.exec(request.body)?.[1])).toEqual(['vm-103']);
    expect(result.steps.find((step) => step.task === 'CreateSecondaryVMEx_Task')).toMatchObject({ ok: true, what: 'FT for ehr-app-2' });
    const reconfigure = requests.filter((request) => request.method === 'ReconfigureComputeResource_Task').map((request) => request.body).join('');
    expect(reconfigure).toContain('<admissionControlPolicy xsi:type="ClusterFailoverResourcesAdmissionControlPolicy"><cpuFailoverResourcesPercent>50</cpuFailoverResourcesPercent><memoryFailoverResourcesPercent>50</memoryFailoverResourcesPercent></admissionControlPolicy>');
    expect(reconfigure).toContain('<modify>true</modify>');
    // The hospital's own rule and groups are never touched: only tmr- ones are Tomaranai's.
    expect(reconfigure).not.toContain('backup-window');
    expect(reconfigure).not.toMatch(/<removeKey xsi:type="xsd:int">4<\/removeKey>/);
  });

  it('turns a failed FT task into an error that carries vCenter\'s message', async () => {
    const client = await connected();
    await expect(client.waitForTask({ type: 'Task', value: 'task-9002' }, 'CreateSecondaryVMEx_Task')).rejects.toMatchObject({
      code: 'TMR_VSPHERE_TASK_FAILED',
      message: expect.stringContaining('more than 8 virtual CPUs are not supported for Fault Tolerance'),
    });
  });

  it('turns a SOAP fault into a coded error naming the method and the fault', async () => {
    const client = await connected();
    faults.add('CreateContainerView');
    await expect(client.retrieveAll('HostSystem', ['name'])).rejects.toMatchObject({ code: 'TMR_VSPHERE_FAULT', message: expect.stringMatching(/^CreateContainerView: NoPermission: Permission to perform this operation was denied/) });
  });

  it('refuses plain http and credentials in the URL unless told, before any request', () => {
    expect(() => new VsphereClient({ url, allowInsecure: false })).toThrow(expect.objectContaining({ code: 'TMR_VSPHERE_INSECURE' }));
    expect(() => new VsphereClient({ url: new URL('https://user:pw@vcenter.example/sdk'), allowInsecure: false })).toThrow(expect.objectContaining({ code: 'TMR_VSPHERE_CREDENTIALS' }));
    expect(requests).toEqual([]);
  });
});
