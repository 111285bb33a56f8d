/** What a receiver offers the notifier: send one alert (abandoned when `signal` aborts), close. */
import type { Alert } from '../alert.ts';
import type { ReceiverConfig } from '../config.ts';

export interface Delivery {
  /** What the receiver answered (HTTP status, SMTP response, "inform acknowledged"). */
  readonly detail: string;
}

export interface ReceiverPort {
  readonly config: ReceiverConfig;
  send(alert: Alert, signal: AbortSignal): Promise<Delivery>;
  close(): void;
}
