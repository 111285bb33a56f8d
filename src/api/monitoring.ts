/** The registry of one app's metrics, with what the service feeds it: controller pass latency and the notifier's state. */
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export class Monitoring {
  readonly registry = new Registry();
  readonly controllerPassSeconds = new Histogram({
    name: 'tomaranai_controller_pass_seconds',
    help: 'Wall time of one controller pass (decide and issue actions)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  /** Set by the service while a notifier runs. */
  notifier: { queueDepths(): ReadonlyMap<string, number>; readonly outcomes: ReadonlyMap<string, { sent: number; failed: number; dropped: number }> } | null = null;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

