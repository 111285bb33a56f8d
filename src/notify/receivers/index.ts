/** One receiver per configured `type`. */
import type { ReceiverConfig } from '../config.ts';
import { EmailReceiver } from './email.ts';
import { AlertmanagerReceiver, WebhookReceiver } from './http.ts';
import type { ReceiverPort } from './port.ts';
import { SnmpReceiver } from './snmp.ts';
import { SyslogReceiver } from './syslog.ts';

export type { Delivery, ReceiverPort } from './port.ts';

export function createReceiver(config: ReceiverConfig): ReceiverPort {
  switch (config.type) {
    case 'webhook':
      return new WebhookReceiver(config);
    case 'alertmanager':
      return new AlertmanagerReceiver(config);
    case 'email':
      return new EmailReceiver(config);
    case 'snmp':
      return new SnmpReceiver(config);
    case 'syslog':
      return new SyslogReceiver(config);
  }
}
