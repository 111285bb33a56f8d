/**
 * Each receiver against a real server on 127.0.0.1: SNMPv3 (authPriv) INFORMs, a webhook that
 * never answers (the attempt times out with TMR_NOTIFY_TIMEOUT instead of hanging), a refused one,
 * and `tomaranai notify test` from the command line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { Command } from 'commander';
import snmp from 'net-snmp';
import { afterAll, describe, expect, it } from 'vitest';
import { registerNotifyCommands } from '../../src/cli/notify.ts';
import { createReceiver, deliverOnce, parseNotifyConfig, testAlert, type Alert } from '../../src/notify/index.ts';
import { notificationOidOf, OBJECTS } from '../../src/notify/receivers/snmp.ts';
import { freeTcpPort, startHttpSink, startHungSink } from './sinks.ts';

const dir = mkdtempSync(join(tmpdir(), 'tomaranai-receivers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ALERT: Alert = {
  key: 'incident.opened:incident-7',
  kind: 'incident.opened',
  severity: 'critical',
  resolved: false,
  groupKey: 'incident.opened:incident-7',
  subject: 'r2-h1',
  sourceSeq: 7,
  atMs: Date.parse('2026-12-01T03:00:00Z'),
  services: [{ name: 'pacs', title: 'PACS 画像', vendor: 'vendor-p', tier: 'critical', rtoTargetS: 300, rtoS: null }],
  facts: { incident: 'incident-7', host: 'r2-h1', status: 'failed' },
};

function receiverOf(yaml: string) {
  return createReceiver(parseNotifyConfig(`receivers:\n  - ${yaml}\n`).receivers[0]!);
}

async function runNotify(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command('tomaranai').exitOverride();
  registerNotifyCommands(program, { out: (text) => (out += text), err: (text) => (err += text) }, (value) => (code = value));
  await program.parseAsync(argv, { from: 'user' });
  return { code, out, err };
}

describe('receivers', () => {
  it('delivers an SNMPv3 authPriv INFORM that the receiver acknowledges', async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const port = socket.address().port;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    const got: { oid: string; key: string }[] = [];
    const receiver = snmp.createReceiver({ port, address: '127.0.0.1', transport: 'udp4' }, (error: Error | null, notification?: { pdu: { varbinds: { oid: string; value: unknown }[] } }) => {
      if (error || !notification) return;
      const values = new Map(notification.pdu.varbinds.map((varbind) => [varbind.oid, varbind.value]));
      got.push({ oid: String(values.get('1.3.6.1.6.3.1.1.4.1.0')), key: String(values.get(OBJECTS.key)) });
    });
    receiver.getAuthorizer().addUser({ name: 'tomaranai', level: snmp.SecurityLevel.authPriv, authProtocol: snmp.AuthProtocols.sha, authKey: 'auth-key-for-tests', privProtocol: snmp.PrivProtocols.aes, privKey: 'priv-key-for-tests' });
    try {
      const port3 = receiverOf(`{ name: nms, type: snmp, host: 127.0.0.1, port: ${port}, version: "3", user: { name: tomaranai, authProtocol: sha, authKey: auth-key-for-tests, privProtocol: aes, privKey: priv-key-for-tests }, delivery: { timeoutMs: 3000 } }`);
      const delivery = await deliverOnce(port3, ALERT);
      expect(delivery.detail).toBe('inform acknowledged');
      expect(got).toEqual([{ oid: notificationOidOf('incident.opened'), key: ALERT.key }]);
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('gives up on a webhook that never answers after timeoutMs, with TMR_NOTIFY_TIMEOUT', async () => {
    const hung = await startHungSink();
    try {
      const startedMs = performance.now();
      await expect(deliverOnce(receiverOf(`{ name: hook, type: webhook, url: "${hung.url}/x", delivery: { timeoutMs: 300 } }`), ALERT)).rejects.toMatchObject({ code: 'TMR_NOTIFY_TIMEOUT' });
      expect(performance.now() - startedMs).toBeLessThan(2_000);
    } finally {
      await hung.stop();
    }
  });

  it('reports a receiver that refuses the connection with TMR_NOTIFY_DELIVERY', async () => {
    const port = await freeTcpPort();
    await expect(deliverOnce(receiverOf(`{ name: hook, type: webhook, url: "http://127.0.0.1:${port}/x" }`), ALERT)).rejects.toMatchObject({ code: 'TMR_NOTIFY_DELIVERY' });
  });

  it('`tomaranai notify test RECEIVER` sends a test message and says so; an unknown receiver is refused', async () => {
    const sink = await startHttpSink();
    try {
      const file = join(dir, 'notify.yaml');
      writeFileSync(file, `receivers:\n  - { name: chat, type: webhook, language: ja, url: "${sink.url}/hook" }\nroutes:\n  - { receivers: [chat] }\n`);
      const sent = await runNotify(['notify', 'test', 'chat', '--config', file]);
      expect(sent.code, sent.err).toBe(0);
      expect(sent.out).toMatch(/^sent to chat \(webhook\) in \d+ ms: HTTP 200\n\[Tomaranai\] テスト送信: chat\n/);
      expect(sink.raw.length).toBe(1);
      expect((sink.raw[0]!.body as { kind: string; title: string }).kind).toBe('test');
      const unknown = await runNotify(['notify', 'test', 'pager', '--config', file]);
      expect(unknown.code).toBe(1);
      expect(unknown.err).toContain('TMR_NOTIFY_UNKNOWN_RECEIVER');
      expect((await runNotify(['notify', 'check', file])).out).toBe('ok: 1 receiver(s) (chat: webhook), 1 route(s)\n');
    } finally {
      await sink.stop();
    }
  });

  it('a test alert is keyed by its receiver and time, so two tests are two messages', () => {
    const alert = testAlert('chat', 0);
    expect(alert.kind).toBe('test');
    expect(alert.key).toBe('test:chat:0');
  });
});

describe('syslog', () => {
  it('sends an RFC 5424 line with the key as structured data, over TCP (octet counted) and UDP', async () => {
    const { createServer } = await import('node:net');
    let tcpText = '';
    const server = createServer((socket) => socket.on('data', (chunk: Buffer) => (tcpText += chunk.toString('utf8'))));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const tcpPort = (server.address() as { port: number }).port;
    const udp = createSocket('udp4');
    const datagrams: string[] = [];
    udp.on('message', (message) => datagrams.push(message.toString('utf8')));
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    try {
      await deliverOnce(receiverOf(`{ name: siem, type: syslog, language: ja, host: 127.0.0.1, port: ${tcpPort}, protocol: tcp }`), ALERT);
      await deliverOnce(receiverOf(`{ name: siem-udp, type: syslog, host: 127.0.0.1, port: ${udp.address().port}, protocol: udp, facility: local3 }`), ALERT);
      for (let waited = 0; (tcpText === '' || datagrams.length === 0) && waited < 2_000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      const frame = /^(\d+) (.*)$/s.exec(tcpText)!;
      expect(Buffer.byteLength(frame[2]!, 'utf8')).toBe(Number(frame[1]));
      // local0 (16) × 8 + critical (2) = 130; local3 (19) × 8 + 2 = 154.
      expect(frame[2]).toMatch(/^<130>1 2026-12-01T03:00:00\.000Z \S+ tomaranai - incident\.opened \[tomaranai@32473 key="incident\.opened:incident-7" kind="incident\.opened" severity="critical" group="incident\.opened:incident-7" subject="r2-h1"\] \[Tomaranai\] 障害発生: ホスト r2-h1 \(failed\) \| /);
      expect(datagrams[0]).toMatch(/^<154>1 .* \[Tomaranai\] INCIDENT: host r2-h1 failed \| /);
    } finally {
      udp.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports a TCP syslog server that is down, so the notifier retries', async () => {
    const port = await freeTcpPort();
    await expect(deliverOnce(receiverOf(`{ name: siem, type: syslog, host: 127.0.0.1, port: ${port} }`), ALERT)).rejects.toMatchObject({ code: 'TMR_NOTIFY_DELIVERY' });
  });
});
