/**
 * Syslog (RFC 5424) for a SIEM or log server: one line per alert, the alert's key, kind and
 * severity as structured data, over UDP (RFC 5426, fire and forget) or TCP with octet counting
 * (RFC 6587; the send counts as delivered once the server's kernel took it). Tomaranai has no audit
 * forwarder yet; when one comes it is meant to share this transport.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { hostname } from 'node:os';
import { TomaranaiError } from '../../errors/index.ts';
import type { Alert, Severity } from '../alert.ts';
import type { ReceiverConfig } from '../config.ts';
import { renderMessage } from '../message.ts';
import type { Delivery, ReceiverPort } from './port.ts';

type SyslogConfig = Extract<ReceiverConfig, { type: 'syslog' }>;

const FACILITIES = { local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23, daemon: 3, user: 1 } as const;
/** RFC 5424 severities: critical 2, warning 4, informational 6. */
const SEVERITY_CODES: Record<Severity, number> = { critical: 2, warning: 4, info: 6 };

function escapeParam(value: string): string {
  return value.replace(/["\\\]]/g, (character) => `\\${character}`);
}

/** One RFC 5424 message: `<PRI>1 TIMESTAMP HOST tomaranai - KIND [tomaranai@32473 …] TEXT`. */
export function syslogLine(alert: Alert, config: Pick<SyslogConfig, 'facility' | 'language'>, host = hostname()): string {
  const priority = FACILITIES[config.facility] * 8 + SEVERITY_CODES[alert.severity];
  const message = renderMessage(alert, config.language);
  const data = `[tomaranai@32473 key="${escapeParam(alert.key)}" kind="${alert.kind}" severity="${alert.severity}" group="${escapeParam(alert.groupKey)}" subject="${escapeParam(alert.subject)}"]`;
  const text = `${message.title} | ${message.lines.join(' | ')}`;
  return `<${priority}>1 ${new Date(alert.atMs).toISOString()} ${host.slice(0, 255) || '-'} tomaranai - ${alert.kind} ${data} ${text}`;
}

export class SyslogReceiver implements ReceiverPort {
  constructor(readonly config: SyslogConfig) {}

  send(alert: Alert, signal: AbortSignal): Promise<Delivery> {
    const payload = Buffer.from(syslogLine(alert, this.config), 'utf8');
    const target = `${this.config.host}:${this.config.port}`;
    return new Promise<Delivery>((resolve, reject) => {
      const fail = (error: Error) => reject(new TomaranaiError(signal.aborted ? 'TMR_NOTIFY_TIMEOUT' : 'TMR_NOTIFY_DELIVERY', `syslog ${target}: ${error.message}`));
      if (this.config.protocol === 'udp') {
        const socket = createSocket(this.config.host.includes(':') ? 'udp6' : 'udp4');
        socket.send(payload, this.config.port, this.config.host, (error) => {
          socket.close();
          if (error) fail(error);
          else resolve({ detail: `sent ${payload.length} bytes over UDP` });
        });
        return;
      }
      const socket = connect({ host: this.config.host, port: this.config.port });
      signal.addEventListener('abort', () => socket.destroy(new Error('no answer in time')), { once: true });
      socket.once('error', fail);
      socket.once('connect', () => {
        socket.end(Buffer.concat([Buffer.from(`${payload.length} `), payload]), () => resolve({ detail: `sent ${payload.length} bytes over TCP` }));
      });
    });
  }

  close(): void {}
}
