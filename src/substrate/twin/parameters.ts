/**
 * The twin's timings: how long its hosts, VMs, fences and storage take. The defaults are a
 * hospital's; a calibration against real VMs (src/drill/lab/calibrate.ts) fits them to the lab.
 */
export interface TwinParameters {
  readonly heartbeatIntervalMs: number;
  readonly stopLatencyMs: number;
  readonly promoteLatencyMs: number;
  readonly storageFenceLatencyMs: number;
  readonly powerFenceLatencyMs: number;
  readonly hostBootMs: number;
  /** Each further VM booting on the same host at once slows a boot by this fraction. */
  readonly bootContention: number;
  /** Multiplies every VM's blueprint bootTimeS (1: as declared; a calibration against real VMs sets it). */
  readonly bootTimeFactor: number;
  /**
   * What slows a boot down: the other boots on the same host (hosts with their own cores), or
   * every other guest of the substrate, booting or running (the real-VM lab, whose hosts share one
   * machine's two cores under software emulation: each running guest takes CPU from a boot).
   */
  readonly bootContentionScope: 'host' | 'substrate';
  readonly secondarySyncMsPerGiB: number;
  readonly secondarySyncMinMs: number;
  /** I/O pause of a VM on a synchronously replicated volume when one copy is lost. */
  readonly storageFailoverMs: number;
  /** Live migration: a fixed part plus the memory copied at this rate. */
  readonly migrationBaseMs: number;
  readonly migrationMsPerGiB: number;
}

/** Default CPU shares per tier priority (continuous, critical, standard, deferred). */
export const DEFAULT_SHARES = [4000, 2000, 1000, 500] as const;

export const DEFAULT_TWIN_PARAMETERS: TwinParameters = Object.freeze({
  heartbeatIntervalMs: 500,
  stopLatencyMs: 200,
  promoteLatencyMs: 300,
  storageFenceLatencyMs: 100,
  powerFenceLatencyMs: 1000,
  hostBootMs: 120_000,
  bootContention: 0.04,
  bootTimeFactor: 1,
  bootContentionScope: 'host',
  secondarySyncMsPerGiB: 150,
  secondarySyncMinMs: 5_000,
  storageFailoverMs: 1_500,
  migrationBaseMs: 400,
  migrationMsPerGiB: 25,
});
