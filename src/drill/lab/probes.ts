/**
 * The real drill's probes, independent of the controller: every 100 ms each VM's address is asked
 * for `/health` and `/seq` (the newest durable write), and every 250 ms the QEMU processes of each
 * VM are counted on the machine. From the fault on, outages (down after three missed probes in a
 * row, up at the first answer with the VM's data) are journaled as `probe.*` entries.
 */
import type { Controller } from '../../control/controller.ts';
import type { Clock, JournalEvents, JournalEventType } from '../../ports/index.ts';
import type { LabLayout, LabManifest } from '../../substrate/qemu/lab.ts';
import { QemuSubstrate } from '../../substrate/qemu/substrate.ts';

const PROBE_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 300;
const PROBE_FAILURES = 3;
const COPY_COUNT_INTERVAL_MS = 250;

export type DrillRecorder = <T extends JournalEventType>(kind: 'drill' | 'fault', type: T, subject: string, data: JournalEvents[T]) => void;

export interface VmProbe {
  up: boolean;
  lastAckedSeq: number;
  /** Sequence acknowledged just before the current outage began. */
  ackedAtOutage: number;
  downAtMs: number | null;
  outages: { downAtMs: number; upAtMs: number | null; ackedBefore: number }[];
  failures: number;
  firstFailAtMs: number | null;
  /** The most QEMU processes holding the VM's disk at once, and the most standbys. */
  maxWritable: number;
  maxStandby: number;
}

export interface LabProbesOptions {
  readonly layout: LabLayout;
  readonly manifest: LabManifest;
  readonly controller: Controller;
  readonly clock: Clock;
  readonly record: DrillRecorder;
}

export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class LabProbes {
  readonly vms: ReadonlyMap<string, VmProbe>;
  /** Set when the fault strikes: outages before it are not the drill's. */
  faultAtMs: number | null = null;
  private probing = false;
  private prober: NodeJS.Timeout | null = null;
  private copyCounter: NodeJS.Timeout | null = null;

  constructor(private readonly options: LabProbesOptions) {
    this.vms = new Map(options.manifest.vms.map((vm) => [vm.name, { up: false, lastAckedSeq: 0, ackedAtOutage: 0, downAtMs: null, outages: [], failures: 0, firstFailAtMs: null, maxWritable: 0, maxStandby: 0 }]));
  }

  /** A few rounds first (so every VM is seen up), then probing and copy counting on their intervals. */
  async start(): Promise<void> {
    for (let round = 0; round < 5; round++) await this.probeOnce();
    this.prober = setInterval(() => void this.probeOnce(), PROBE_INTERVAL_MS);
    this.copyCounter = setInterval(() => void this.countCopies(), COPY_COUNT_INTERVAL_MS);
    this.options.record('drill', 'probe.started', 'probes', { intervalMs: PROBE_INTERVAL_MS, writeIntervalMs: this.options.manifest.timings.writeIntervalMs });
  }

  /** Stops probing and waits for the round in flight. */
  async stop(): Promise<void> {
    this.halt();
    while (this.probing) await delay(10);
  }

  /** Stops the intervals at once (the drill's clean-up, whatever happened). */
  halt(): void {
    if (this.prober !== null) clearInterval(this.prober);
    if (this.copyCounter !== null) clearInterval(this.copyCounter);
  }

  allUp(): boolean {
    for (const state of this.vms.values()) if (!state.up) return false;
    return true;
  }

  private async probeOnce(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all(this.options.manifest.vms.map((vm) => this.probeVm(vm.name, vm.address)));
    } finally {
      this.probing = false;
    }
  }

  private async probeVm(name: string, address: string): Promise<void> {
    const { clock, record } = this.options;
    const state = this.vms.get(name)!;
    const seq = await fetchText(`http://${address}/seq`);
    // Back means answering with its data: a copy that answers /health but has not resumed
    // its writes from the disk yet (/seq still 0) is not the service back.
    const ok = seq !== null && (state.lastAckedSeq === 0 || Number(seq) > 0) && (await fetchText(`http://${address}/health`)) === 'ok';
    const now = clock.nowMs();
    if (ok) {
      const value = Number(seq);
      if (Number.isFinite(value)) state.lastAckedSeq = Math.max(state.lastAckedSeq, value);
    }
    if (ok) {
      state.failures = 0;
      state.firstFailAtMs = null;
    } else {
      state.failures++;
      state.firstFailAtMs ??= now;
    }
    if (ok && !state.up) {
      state.up = true;
      const open = state.outages[state.outages.length - 1];
      if (open !== undefined && open.upAtMs === null) {
        open.upAtMs = now;
        record('drill', 'probe.up', name, { downForMs: now - open.downAtMs, seq: Number(seq) });
      }
    } else if (!ok && state.up && state.failures >= PROBE_FAILURES) {
      // Down since the first of PROBE_FAILURES missed probes in a row: one slow answer on a
      // busy machine is not an outage.
      state.up = false;
      if (this.faultAtMs !== null) {
        state.outages.push({ downAtMs: state.firstFailAtMs!, upAtMs: null, ackedBefore: state.lastAckedSeq });
        record('drill', 'probe.down', name, { lastAckedSeq: state.lastAckedSeq, sinceMs: state.firstFailAtMs });
      }
    }
  }

  private async countCopies(): Promise<void> {
    const { layout, manifest, controller, record } = this.options;
    for (const vm of manifest.vms) {
      const copies = await QemuSubstrate.copiesOf(vm.name, layout.disk(vm.datastore, vm.name), { migrating: controller.state.inFlight.has(`migrate:${vm.name}`) });
      const state = this.vms.get(vm.name)!;
      if (copies.writable > state.maxWritable && copies.writable > 1) record('drill', 'probe.copies', vm.name, { writable: copies.writable, standby: copies.standby, pids: copies.pids });
      state.maxWritable = Math.max(state.maxWritable, copies.writable);
      state.maxStandby = Math.max(state.maxStandby, copies.standby);
    }
  }
}

export async function fetchText(url: string): Promise<string | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    if (!response.ok) return null;
    return (await response.text()).trim();
  } catch {
    return null;
  }
}
