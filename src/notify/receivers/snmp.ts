/**
 * SNMP v2c/v3 notifications (net-snmp) for the NMS a hospital already runs (Zabbix, …). By default
 * they are INFORMs, which the receiver acknowledges, so one that was down gets the alert on a
 * retry; `mode: trap` sends fire-and-forget traps. monitoring/TOMARANAI-MIB.txt names every OID.
 */
import snmp from 'net-snmp';
import { TomaranaiError } from '../../errors/index.ts';
import { ALERT_KINDS, SEVERITIES, type Alert } from '../alert.ts';
import type { ReceiverConfig } from '../config.ts';
import { renderMessage } from '../message.ts';
import type { Delivery, ReceiverPort } from './port.ts';

type SnmpConfig = Extract<ReceiverConfig, { type: 'snmp' }>;

/** enterprises.32473: the Private Enterprise Number RFC 5612 reserves for documentation (see the MIB). */
export const TOMARANAI_OID = '1.3.6.1.4.1.32473';
export const NOTIFICATION_OID = `${TOMARANAI_OID}.0`;
export const OBJECT_OID = `${TOMARANAI_OID}.1`;

/** tmrIncidentOpened(1) … tmrTest(12): one notification per alert kind, in ALERT_KINDS order. */
export function notificationOidOf(kind: Alert['kind']): string {
  return `${NOTIFICATION_OID}.${ALERT_KINDS.indexOf(kind) + 1}`;
}

export const OBJECTS = {
  key: `${OBJECT_OID}.1`,
  kind: `${OBJECT_OID}.2`,
  severity: `${OBJECT_OID}.3`,
  subject: `${OBJECT_OID}.4`,
  services: `${OBJECT_OID}.5`,
  message: `${OBJECT_OID}.6`,
  group: `${OBJECT_OID}.7`,
  resolved: `${OBJECT_OID}.8`,
} as const;

function servicesText(alert: Alert): string {
  return alert.services.map((service) => `${service.name}:${service.tier}:rto=${service.rtoS ?? '-'}/${service.rtoTargetS}`).join(' ');
}

export function varbindsOf(alert: Alert, language: 'ja' | 'en'): snmp.Varbind[] {
  const text = (value: string) => ({ type: snmp.ObjectType.OctetString, value: Buffer.from(value, 'utf8') });
  return [
    { oid: OBJECTS.key, ...text(alert.key) },
    { oid: OBJECTS.kind, ...text(alert.kind) },
    { oid: OBJECTS.severity, type: snmp.ObjectType.Integer, value: SEVERITIES.indexOf(alert.severity) + 1 },
    { oid: OBJECTS.subject, ...text(alert.subject) },
    { oid: OBJECTS.services, ...text(servicesText(alert)) },
    { oid: OBJECTS.message, ...text(renderMessage(alert, language).text.slice(0, 4000)) },
    { oid: OBJECTS.group, ...text(alert.groupKey) },
    { oid: OBJECTS.resolved, type: snmp.ObjectType.Integer, value: alert.resolved ? 1 : 2 },
  ] as snmp.Varbind[];
}

function sessionOf(config: SnmpConfig): snmp.Session {
  const common = { port: config.port, trapPort: config.port, timeout: config.delivery.timeoutMs, retries: 0 };
  if (config.version === '2c') return snmp.createSession(config.host, config.community, { ...common, version: snmp.Version2c });
  const user = config.user!;
  const level = user.privKey !== undefined ? snmp.SecurityLevel.authPriv : user.authKey !== undefined ? snmp.SecurityLevel.authNoPriv : snmp.SecurityLevel.noAuthNoPriv;
  const authProtocols = { md5: snmp.AuthProtocols.md5, sha: snmp.AuthProtocols.sha, sha256: snmp.AuthProtocols.sha256, sha512: snmp.AuthProtocols.sha512 };
  const privProtocols = { des: snmp.PrivProtocols.des, aes: snmp.PrivProtocols.aes, aes256b: snmp.PrivProtocols.aes256b, aes256r: snmp.PrivProtocols.aes256r };
  return snmp.createV3Session(
    config.host,
    {
      name: user.name,
      level,
      ...(user.authKey !== undefined ? { authProtocol: authProtocols[user.authProtocol ?? 'sha'], authKey: user.authKey } : {}),
      ...(user.privKey !== undefined ? { privProtocol: privProtocols[user.privProtocol ?? 'aes'], privKey: user.privKey } : {}),
    } as snmp.User,
    common,
  );
}

export class SnmpReceiver implements ReceiverPort {
  constructor(readonly config: SnmpConfig) {}

  send(alert: Alert, signal: AbortSignal): Promise<Delivery> {
    // A session per message: UDP holds no connection worth keeping, and a closed session leaves no
    // socket behind when a receiver is down for hours.
    const session = sessionOf(this.config);
    const target = `${this.config.host}:${this.config.port}`;
    return new Promise<Delivery>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | null, detail: string) => {
        if (settled) return;
        settled = true;
        session.close();
        if (error === null) resolve({ detail });
        else reject(error instanceof TomaranaiError ? error : new TomaranaiError('TMR_NOTIFY_DELIVERY', `SNMP ${target}: ${error.message}`));
      };
      signal.addEventListener('abort', () => finish(new TomaranaiError('TMR_NOTIFY_TIMEOUT', `SNMP ${target} did not acknowledge in time`), ''), { once: true });
      session.on('error', (error: Error) => finish(error, ''));
      const varbinds = varbindsOf(alert, this.config.language);
      if (this.config.mode === 'inform') {
        session.inform(notificationOidOf(alert.kind), varbinds, (error: Error | null) => finish(error, 'inform acknowledged'));
      } else {
        session.trap(notificationOidOf(alert.kind), varbinds, (error: Error | null) => finish(error, 'trap sent'));
      }
    });
  }

  close(): void {}
}
