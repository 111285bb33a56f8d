/**
 * E-mail over SMTP (nodemailer), STARTTLS required by default, in the receiver's language. The
 * messages of one incident form a thread: the first carries Message-ID <key@tomaranai>, the later
 * ones In-Reply-To and References to it, so a mail client shows opening and recovery together.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { TomaranaiError } from '../../errors/index.ts';
import type { Alert } from '../alert.ts';
import type { ReceiverConfig } from '../config.ts';
import { renderMessage } from '../message.ts';
import type { Delivery, ReceiverPort } from './port.ts';

type EmailConfig = Extract<ReceiverConfig, { type: 'email' }>;

export function messageIdOf(key: string): string {
  return `<${key.replace(/[^A-Za-z0-9.\-_]/g, '.')}@tomaranai>`;
}

export class EmailReceiver implements ReceiverPort {
  private readonly transport: Transporter;

  constructor(readonly config: EmailConfig) {
    const timeoutMs = config.delivery.timeoutMs;
    this.transport = nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: config.port === 465,
      requireTLS: config.requireTls,
      ignoreTLS: !config.requireTls,
      tls: { rejectUnauthorized: config.verifyCertificate },
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      ...(config.user !== undefined ? { auth: { user: config.user, pass: config.password ?? '' } } : {}),
    });
  }

  async send(alert: Alert, signal: AbortSignal): Promise<Delivery> {
    const message = renderMessage(alert, this.config.language);
    const thread = alert.key === alert.groupKey ? {} : { inReplyTo: messageIdOf(alert.groupKey), references: [messageIdOf(alert.groupKey)] };
    const sending = this.transport.sendMail({
      from: this.config.from,
      to: [...this.config.to],
      subject: message.title,
      text: `${message.lines.join('\n')}\n`,
      messageId: messageIdOf(alert.key),
      ...thread,
      headers: { 'X-Tomaranai-Key': alert.key, 'X-Tomaranai-Kind': alert.kind, 'X-Tomaranai-Severity': alert.severity },
    });
    // A late answer after the timeout is dropped (the retry carries the same Message-ID).
    sending.catch(() => undefined);
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new TomaranaiError('TMR_NOTIFY_TIMEOUT', `SMTP ${this.config.host}:${this.config.port} did not answer in time`)), { once: true }));
    try {
      const info = await Promise.race([sending, aborted]);
      return { detail: String(info.response ?? 'accepted').slice(0, 200) };
    } catch (error) {
      if (error instanceof TomaranaiError) throw error;
      throw new TomaranaiError('TMR_NOTIFY_DELIVERY', `SMTP ${this.config.host}:${this.config.port}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  close(): void {
    this.transport.close();
  }
}
