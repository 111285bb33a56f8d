/**
 * notify/ owns telling people: alerts derived from the journal, routed by the service's
 * notification configuration to webhooks, Alertmanager, e-mail, SNMP and syslog, delivered durably and
 * never on the controller's path. It imports ports, model and errors only; the service wires it
 * (src/service/alert-feed.ts, src/api/server.ts) and the CLI tests a receiver with it.
 */
export { ALERT_KINDS, SEVERITIES, alertsOfEvent, servicesOf, testAlert, severityRank, type Alert, type AlertKind, type AlertService, type Severity } from './alert.ts';
export { parseNotifyConfig, NotifyConfigSchema, type NotifyConfig, type ReceiverConfig, type RouteConfig } from './config.ts';
export { renderMessage, type Language, type Message } from './message.ts';
export { Notifier, deliverOnce, type NotifierOptions } from './notifier.ts';
export { createReceiver, type Delivery, type ReceiverPort } from './receivers/index.ts';
