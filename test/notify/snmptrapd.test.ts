/**
 * The NMS side: Debian's snmptrapd (Net-SNMP) receives and acknowledges Tomaranai's INFORM, with
 * the MIB's notification OID and objects. Skipped with a printed reason where snmptrapd is not
 * installed (bash scripts/ci-monitoring.sh installs it; CI does).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createReceiver, deliverOnce, parseNotifyConfig, type Alert } from '../../src/notify/index.ts';
import { notificationOidOf, OBJECTS } from '../../src/notify/receivers/snmp.ts';

const installed = spawnSync('sh', ['-c', 'command -v snmptrapd'], { encoding: 'utf8' }).status === 0;
if (!installed) console.warn('test/notify/snmptrapd.test.ts: skipped: snmptrapd is not installed (bash scripts/ci-monitoring.sh installs it; CI does)');

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

describe.skipIf(!installed)('snmptrapd', () => {
  it('receives and acknowledges an incident INFORM with the key, the systems and their RTOs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tomaranai-trapd-'));
    const port = await freeUdpPort();
    writeFileSync(join(dir, 'snmptrapd.conf'), 'authCommunity log public\n');
    // -f foreground, -Lo log to stdout, -n no DNS, -On numeric OIDs, no MIBs loaded (Debian ships none of the standard ones).
    const trapd = spawn('snmptrapd', ['-f', '-Lo', '-n', '-On', '-C', '-c', join(dir, 'snmptrapd.conf'), '-M', '/dev/null', '-m', '', `udp:127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    trapd.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    trapd.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      for (let waited = 0; !output.includes('NET-SNMP version') && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      const alert: Alert = {
        key: 'incident.closed:incident-48',
        kind: 'incident.closed',
        severity: 'critical',
        resolved: true,
        groupKey: 'incident.opened:incident-48',
        subject: 'r1-h2',
        sourceSeq: 60,
        atMs: 0,
        services: [{ name: 'lis', title: 'LIS', vendor: 'vendor-b', tier: 'critical', rtoTargetS: 300, rtoS: 62.6 }],
        facts: { incident: 'incident-48', host: 'r1-h2', outageS: 62.6 },
      };
      const config = parseNotifyConfig(`receivers:\n  - { name: nms, type: snmp, host: 127.0.0.1, port: ${port}, community: public }\n`);
      expect((await deliverOnce(createReceiver(config.receivers[0]!), alert)).detail).toBe('inform acknowledged');
      for (let waited = 0; !output.includes(alert.key) && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(output).toContain(`OID: .${notificationOidOf('incident.closed')}`);
      expect(output).toContain(`.${OBJECTS.key} = STRING: "incident.closed:incident-48"`);
      expect(output).toContain(`.${OBJECTS.services} = STRING: "lis:critical:rto=62.6/300"`);
      expect(output).toContain(`.${OBJECTS.resolved} = INTEGER: 1`);
    } finally {
      trapd.kill('SIGTERM');
      await new Promise((resolve) => trapd.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
