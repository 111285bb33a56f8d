/**
 * Alerts end to end: `tomaranai serve --notify` on the twin (its own process), a host crash, and
 * real receivers on 127.0.0.1 — an SMTP server, an SNMP receiver, a webhook and an Alertmanager
 * sink. Each gets exactly the incident's opening and closing, with the right systems, RTOs and
 * language; a receiver that is down during the incident gets both once it is back, once each.
 * Then the same host failure with and without a receiver that never answers: the recovery time
 * is the same (measured and printed).
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { notificationOidOf, OBJECTS } from '../../src/notify/receivers/snmp.ts';
import { freeTcpPort, startHttpSink, startHungSink, startSmtpSink, startSnmpSink } from '../notify/sinks.ts';
import { runCli } from './run-cli.ts';
import { SMALL_BLUEPRINT, spawnCli, startTwin, waitFor, type Child } from './processes.ts';

const SPEED = 20;
const SECRET = 'a-webhook-secret-for-tests';

interface Incident {
  id: string;
  host: string;
  startedAtMs: number;
  recoveredAtMs: number | null;
  vmsAffected: string[];
}
interface Services {
  services: { name: string; tier: string; lastRtoS: number | null; vms: { name: string; host: string | null }[] }[];
}

const dirs: string[] = [];
const children: Child[] = [];
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const child of children) await child.kill('SIGKILL');
  for (const stop of stops) await stop().catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A twin, a `serve` on it with `notifyYaml` (if any), an operator token; the hospital up. */
async function startHospital(notifyYaml: string | null) {
  const dir = mkdtempSync(join(tmpdir(), 'tomaranai-notify-'));
  dirs.push(dir);
  const db = `sqlite:${join(dir, 'state.db')}`;
  expect((await runCli(['user', 'add', 'ops', '--role', 'operator', '--db', db])).code).toBe(0);
  const token = (await runCli(['token', 'create', 'ops', '--db', db])).out.trim();
  const auth = { authorization: `Bearer ${token}` };
  const twin = await startTwin(SPEED);
  children.push(twin);
  const args = ['serve', '--db', db, '--substrate', twin.url, '--blueprint', SMALL_BLUEPRINT, '--port', '0', '--speed', String(SPEED), '--instance-id', 'a'];
  if (notifyYaml !== null) {
    writeFileSync(join(dir, 'notify.yaml'), notifyYaml);
    args.push('--notify', join(dir, 'notify.yaml'));
  }
  const serve = await spawnCli(args, /tomaranai serving on (http:\/\/[^\s]+)/);
  children.push(serve);
  const get = async <T>(path: string) => (await (await fetch(`${serve.url}${path}`, { headers: auth })).json()) as T;
  await waitFor('the hospital is up', async () => ((await (await fetch(`${twin.url}/truth`)).json()) as { healthyPrimaries: string[] }).healthyPrimaries.length === 5, 60_000);
  // …and the controller has seen it so (the incident names the VMs it knew on the host).
  await waitFor('the control plane sees every service up', async () => (await get<{ summary: { up: number } }>('/api/v1/services')).summary.up === 4, 30_000);
  return { twin, serve, get, auth };
}

/** Crashes the host that runs lis-1 and waits until the incident is recovered; returns it and the wall time it took. */
async function crashLisHost(hospital: Awaited<ReturnType<typeof startHospital>>) {
  const services = await hospital.get<Services>('/api/v1/services');
  const host = services.services.find((service) => service.name === 'lis')!.vms[0]!.host!;
  const injectedMs = performance.now();
  await fetch(`${hospital.twin.url}/faults/inject`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'host-crash', host }) });
  const incident = await waitFor('the incident recovered', async () => (await hospital.get<{ incidents: Incident[] }>('/api/v1/incidents')).incidents.find((candidate) => candidate.host === host && candidate.recoveredAtMs !== null && candidate.vmsAffected.includes('lis-1')), 60_000);
  return { host, incident, wallMs: performance.now() - injectedMs };
}

describe('alerts through serve: a host failure on the twin reaches every receiver', () => {
  it('each receiver gets exactly the incident opened and closed, with its systems, RTOs and language; a receiver down meanwhile gets both after it returns, once', async () => {
    const smtp = await startSmtpSink();
    const nms = await startSnmpSink();
    const hook = await startHttpSink();
    const alertmanager = await startHttpSink();
    stops.push(smtp.stop, nms.stop, hook.stop, alertmanager.stop);
    const downPort = await freeTcpPort();
    const quick = 'delivery: { timeoutMs: 2000, initialRetryMs: 200, maxRetryMs: 1000 }';
    const hospital = await startHospital(`
receivers:
  - { name: oncall-mail, type: email, language: ja, host: 127.0.0.1, port: ${smtp.port}, verifyCertificate: false, from: tomaranai@hospital.example, to: [oncall@hospital.example], ${quick} }
  - { name: nms, type: snmp, language: en, host: 127.0.0.1, port: ${nms.port}, community: public, ${quick} }
  - { name: chat, type: webhook, language: en, url: "${hook.url}/hook", hmacSecret: ${SECRET}, ${quick} }
  - { name: alertmanager, type: alertmanager, url: "${alertmanager.url}", ${quick} }
  - { name: backup-desk, type: webhook, language: ja, url: "http://127.0.0.1:${downPort}/hook", ${quick} }
routes:
  - { events: [incident.opened, incident.closed], receivers: [oncall-mail, nms, chat, alertmanager, backup-desk] }
`);
    const { host, incident } = await crashLisHost(hospital);
    const services = await hospital.get<Services>('/api/v1/services');
    const serviceOfVm = new Map(services.services.flatMap((service) => service.vms.map((vm) => [vm.name, service.name] as const)));
    const affected = [...new Set(incident.vmsAffected.map((vm) => serviceOfVm.get(vm)!))].sort();
    const rtoOf = new Map(services.services.map((service) => [service.name, service.lastRtoS === null ? null : Math.round(service.lastRtoS * 10) / 10]));
    expect(affected).toContain('lis');
    const keys = [`incident.opened:${incident.id}`, `incident.closed:${incident.id}`];

    await waitFor('every live receiver has both messages', async () => smtp.mails.length >= 2 && nms.traps.length >= 2 && hook.accepted.length >= 2 && alertmanager.accepted.length >= 2, 30_000);
    // Let anything extra arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    // E-mail, in Japanese, over STARTTLS, the closing threaded under the opening.
    expect(smtp.mails.map((mail) => mail.key)).toEqual(keys);
    expect(smtp.mails.every((mail) => mail.overTls)).toBe(true);
    // A crash is usually declared failed at once; on a loaded machine one heartbeat channel can lag
    // behind and the host is first isolated or storage-lost. The opening is sent once the incident
    // names its systems, so it names them whichever way the host was first seen.
    const status = /\((failed|storage-lost|isolated)\)$/.exec(smtp.mails[0]!.subject)?.[1];
    expect(smtp.mails[0]!.subject).toBe(`[Tomaranai] 障害発生: ホスト ${host} (${status})`);
    expect(smtp.mails[1]!.subject).toBe(`[Tomaranai] 復旧: ホスト ${host}`);
    expect(smtp.mails[1]!.inReplyTo).toBe(smtp.mails[0]!.messageId);
    for (const service of affected) {
      expect(smtp.mails[0]!.text).toContain(`- ${service} (`);
      expect(smtp.mails[1]!.text).toContain(`- ${service} (`);
    }
    expect(smtp.mails[1]!.text).toContain(`lis (`);
    expect(smtp.mails[1]!.text).toMatch(new RegExp(`lis \\([^)]*\\): RTO ${rtoOf.get('lis')} 秒 / 目標 300 秒 ✓ 達成`));

    // The webhook, in English, signed.
    expect(hook.raw.map((request) => request.key)).toEqual(keys);
    for (const request of hook.raw) {
      const [t, v1] = request.signature!.split(',').map((part) => part.split('=')[1]!);
      expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${JSON.stringify(request.body)}`).digest('hex'));
    }
    const [opened, closed] = hook.raw.map((request) => request.body as { title: string; language: string; resolved: boolean; services: { name: string; rtoS: number | null; rtoTargetS: number }[] });
    expect(opened!.title).toBe(`[Tomaranai] INCIDENT: host ${host} ${status}`);
    expect(closed!.title).toBe(`[Tomaranai] RECOVERED: host ${host}`);
    expect(closed!.resolved).toBe(true);
    expect(opened!.services.map((service) => service.name).sort()).toEqual(affected);
    expect(Object.fromEntries(closed!.services.map((service) => [service.name, service.rtoS]))).toEqual(Object.fromEntries(affected.map((service) => [service, rtoOf.get(service)])));

    // SNMP INFORMs: the MIB's notification OIDs, the key, the systems with their RTOs.
    expect(nms.traps.map((trap) => trap.oid)).toEqual([notificationOidOf('incident.opened'), notificationOidOf('incident.closed')]);
    expect(nms.traps.map((trap) => trap.values[OBJECTS.key])).toEqual(keys);
    expect(String(nms.traps[1]!.values[OBJECTS.services])).toContain(`lis:critical:rto=${rtoOf.get('lis')}/300`);
    expect(String(nms.traps[1]!.values[OBJECTS.message])).toContain('RECOVERED');

    // Alertmanager: one alert per incident, resolved by the second post.
    expect(alertmanager.raw.map((request) => request.path)).toEqual(['/api/v2/alerts', '/api/v2/alerts']);
    const posts = alertmanager.raw.map((request) => (request.body as unknown as { labels: Record<string, string>; endsAt?: string; startsAt?: string }[])[0]!);
    expect(posts[0]!.labels).toEqual(posts[1]!.labels);
    expect(posts[0]!.startsAt).toBeDefined();
    expect(posts[1]!.endsAt).toBeDefined();

    // The receiver that was down: every attempt journaled as failed, then both messages once it is back.
    const failedBefore = (await hospital.get<{ deliveries: { receiver: string; outcome: string }[] }>('/api/v1/notifications?receiver=backup-desk')).deliveries.filter((delivery) => delivery.outcome === 'failed').length;
    expect(failedBefore).toBeGreaterThan(0);
    const back = await startHttpSink(downPort);
    stops.push(back.stop);
    await waitFor('the returned receiver has both messages', async () => back.accepted.length >= 2, 15_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(back.raw.map((request) => request.key)).toEqual(keys);
    expect((back.raw[0]!.body as { title: string }).title).toBe(`[Tomaranai] 障害発生: ホスト ${host} (${status})`);

    console.log(`alerts: incident ${incident.id} on ${host} (${status}; ${affected.join(', ')}): e-mail ${smtp.mails.length}, SNMP ${nms.traps.length}, webhook ${hook.raw.length}, Alertmanager ${alertmanager.raw.length}; the receiver down during the incident: ${failedBefore} failed attempts, then ${back.raw.length} messages after it returned (${back.accepted.length} distinct)`);
    console.log(`example e-mail (ja):\nSubject: ${smtp.mails[0]!.subject}\n${smtp.mails[0]!.text}\nSubject: ${smtp.mails[1]!.subject}\n${smtp.mails[1]!.text}`);
    console.log(`example webhook (en): ${JSON.stringify(hook.raw[1]!.body, null, 2)}`);
    console.log(`example SNMP inform: ${nms.traps[1]!.oid} ${JSON.stringify(nms.traps[1]!.values)}`);
    await hospital.serve.kill();
    await hospital.twin.kill();
  }, 180_000);

  it('a receiver that never answers leaves the recovery time unchanged (measured, runs alternated)', async () => {
    const hung = await startHungSink();
    stops.push(hung.stop);
    const outage = (incident: Incident) => (incident.recoveredAtMs! - incident.startedAtMs) / 1000;
    const runs: { hungReceiver: boolean; outageS: number; lisRtoS: number; queued: number }[] = [];
    // Alternated, so a drift of the machine's load hits both alike.
    for (const hungReceiver of [false, true, false, true, false, true]) {
      const hospital = await startHospital(
        hungReceiver ? `receivers:\n  - { name: hung, type: webhook, url: "${hung.url}/hook", delivery: { timeoutMs: 5000, initialRetryMs: 100, maxRetryMs: 500 } }\nroutes:\n  - { receivers: [hung] }\n` : null,
      );
      const { incident } = await crashLisHost(hospital);
      const lisRtoS = (await hospital.get<Services>('/api/v1/services')).services.find((service) => service.name === 'lis')!.lastRtoS!;
      const metrics = await (await fetch(`${hospital.serve.url}/metrics`, { headers: hospital.auth })).text();
      const queued = Number(/tomaranai_notify_queue_depth\{receiver="hung"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      runs.push({ hungReceiver, outageS: outage(incident), lisRtoS, queued });
      await hospital.serve.kill();
      await hospital.twin.kill();
    }
    const of = (hungReceiver: boolean) => runs.filter((run) => run.hungReceiver === hungReceiver);
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const show = (values: number[]) => values.map((value) => value.toFixed(1)).join(', ');
    const without = of(false).map((run) => run.outageS);
    const withHung = of(true).map((run) => run.outageS);
    console.log(
      `hung receiver: incident recovered in ${show(without)} s (mean ${mean(without).toFixed(1)}) without a receiver, ${show(withHung)} s (mean ${mean(withHung).toFixed(1)}) with one that never answers; ` +
        `lis RTO ${show(of(false).map((run) => run.lisRtoS))} s vs ${show(of(true).map((run) => run.lisRtoS))} s (twin seconds at ${SPEED}x); ` +
        `the hung receiver held ${hung.requests()} request(s) open, ${show(of(true).map((run) => run.queued))} alert(s) still queued at recovery`,
    );
    expect(hung.requests()).toBeGreaterThan(0);
    for (const run of of(true)) expect(run.queued).toBeGreaterThan(0);
    // What is asserted is lis's RTO, the critical system's measured recovery: it is stable to a
    // tenth of a second from run to run. The incident's span is printed but not asserted: it takes
    // one of two values (62.6 or 66.0 s here) with or without a receiver, depending on which
    // heartbeat the twin reports late first. A notifier on the controller's path would add its 5 s
    // timeout per attempt; the bound is half of that. (It was 1 s, and failed at 64.1 against 62.6 s
    // on a machine running three other test suites: 1.5 twin-seconds is 75 ms of real time at 20x,
    // event-loop delay under load, not a receiver on the path.)
    const rtoWithout = of(false).map((run) => run.lisRtoS);
    const rtoWith = of(true).map((run) => run.lisRtoS);
    expect(Math.abs(mean(rtoWith) - mean(rtoWithout))).toBeLessThan(2.5);
    for (const rto of rtoWith) expect(rto).toBeLessThan(Math.max(...rtoWithout) + 2.5);
  }, 300_000);
});
