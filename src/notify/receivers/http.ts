/**
 * HTTP receivers: a generic JSON webhook (optionally signed with HMAC-SHA256) and Alertmanager's
 * v2 API, so a hospital already running Alertmanager routes Tomaranai's alerts with its own.
 * Both carry the alert's key: the webhook as the Idempotency-Key header, Alertmanager as the
 * label set it deduplicates on.
 */
import { createHmac } from 'node:crypto';
import { TomaranaiError } from '../../errors/index.ts';
import type { Alert } from '../alert.ts';
import type { ReceiverConfig } from '../config.ts';
import { renderMessage } from '../message.ts';
import type { Delivery, ReceiverPort } from './port.ts';

type WebhookConfig = Extract<ReceiverConfig, { type: 'webhook' }>;
type AlertmanagerConfig = Extract<ReceiverConfig, { type: 'alertmanager' }>;

/** The JSON a webhook receives (docs/alerts.md shows one). */
export function webhookBody(alert: Alert, language: 'ja' | 'en') {
  const message = renderMessage(alert, language);
  return {
    version: 1,
    key: alert.key,
    kind: alert.kind,
    severity: alert.severity,
    resolved: alert.resolved,
    groupKey: alert.groupKey,
    subject: alert.subject,
    at: new Date(alert.atMs).toISOString(),
    language,
    title: message.title,
    text: message.text,
    services: alert.services,
    facts: alert.facts,
  };
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`: the receiver recomputes it and checks t is recent. */
export function signature(secret: string, body: string, unixS: number): string {
  return `t=${unixS},v1=${createHmac('sha256', secret).update(`${unixS}.${body}`).digest('hex')}`;
}

async function post(url: string, body: string, headers: Record<string, string>, signal: AbortSignal): Promise<Delivery> {
  let response: Response;
  try {
    response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal });
  } catch (error) {
    if (signal.aborted) throw new TomaranaiError('TMR_NOTIFY_TIMEOUT', `${url} did not answer in time`);
    throw new TomaranaiError('TMR_NOTIFY_DELIVERY', `${url}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`);
  }
  await response.body?.cancel().catch(() => undefined);
  if (response.status >= 300) throw new TomaranaiError('TMR_NOTIFY_DELIVERY', `${url} answered HTTP ${response.status}`);
  return { detail: `HTTP ${response.status}` };
}

export class WebhookReceiver implements ReceiverPort {
  constructor(readonly config: WebhookConfig) {}

  send(alert: Alert, signal: AbortSignal): Promise<Delivery> {
    const body = JSON.stringify(webhookBody(alert, this.config.language));
    const headers: Record<string, string> = { ...this.config.headers, 'idempotency-key': alert.key, 'user-agent': 'tomaranai-notify/1' };
    if (this.config.hmacSecret !== undefined) headers['x-tomaranai-signature'] = signature(this.config.hmacSecret, body, Math.floor(Date.now() / 1000));
    return post(this.config.url, body, headers, signal);
  }

  close(): void {}
}

export class AlertmanagerReceiver implements ReceiverPort {
  constructor(readonly config: AlertmanagerConfig) {}

  send(alert: Alert, signal: AbortSignal): Promise<Delivery> {
    const message = renderMessage(alert, this.config.language);
    const at = new Date(alert.atMs).toISOString();
    // One Alertmanager alert per group: the opening and the resolution share their labels, so
    // Alertmanager threads them itself and deduplicates a repeated post.
    const labels: Record<string, string> = { alertname: `Tomaranai_${alert.kind.split('.')[0]}`, severity: alert.severity, group: alert.groupKey, subject: alert.subject, source: 'tomaranai' };
    if (alert.services.length > 0) labels.services = alert.services.map((service) => service.name).join(',');
    const body = JSON.stringify([{ labels, annotations: { summary: message.title, description: message.text, key: alert.key }, ...(alert.resolved ? { endsAt: at } : { startsAt: at }) }]);
    return post(`${this.config.url.replace(/\/$/, '')}/api/v2/alerts`, body, { 'idempotency-key': alert.key }, signal);
  }

  close(): void {}
}
