/**
 * The real drill's probes, independent of the controller: every 100 ms each VM's address is asked
 * for `/health` and `/seq` (the newest durable write and which run of the guest — its boot —
 * wrote it), and every 250 ms the QEMU processes of each VM are counted on the machine. From the
 * fault on, silences (three missed probes in a row) are journaled as `probe.down`, the first
 * answer with the VM's data after one as `probe.up`, saying whether the same run of the guest
 * answers again. Whether a silence was an outage (the guest stopped: another run answers, or no
 * QEMU held its disk) or only no answer from a guest that kept running (a slow machine, a cut
 * link) is decided when the drill concludes, from the runs and the copy counts kept here.
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

/** One silence of a VM after the fault, and what answered after it. */
export interface ProbeSilence {
  readonly downAtMs: number;
  upAtMs: number | null;
  /** The newest write a probe saw acknowledged before the silence, and by which run. */
  readonly ackedBefore: number;
  readonly runBefore: string | null;
  /** The run that answered after it (null while silent, or from a guest image without boots). */
  runAfter: string | null;
  /** Whether, at some count during the silence, no QEMU process held the VM's disk. */
  noCopy: boolean;
}

export interface VmProbe {
  up: boolean;
  lastAckedSeq: number;
  /** The run of the guest (its boot) that answered last. */
  run: string | null;
  /** Every run that answered, in order: the lowest and newest write each was seen acknowledging. */
  readonly runs: { readonly boot: string; readonly firstSeq: number; maxSeq: number }[];
  /** Sequence acknowledged just before the current outage began. */
  ackedAtOutage: number;
  downAtMs: number | null;
  outages: ProbeSilence[];
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
    this.vms = new Map(options.manifest.vms.map((vm) => [vm.name, { up: false, lastAckedSeq: 0, run: null, runs: [], ackedAtOutage: 0, downAtMs: null, outages: [], failures: 0, firstFailAtMs: null, maxWritable: 0, maxStandby: 0 }]));
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
    const answer = parseSeq(await fetchText(`http://${address}/seq`));
    // Back means answering with its data: a copy that answers /health but has not resumed
    // its writes from the disk yet (/seq still 0) is not the service back.
    const ok = answer !== null && (state.lastAckedSeq === 0 || answer.seq > 0) && (await fetchText(`http://${address}/health`)) === 'ok';
    const now = clock.nowMs();
    if (ok) {
      state.lastAckedSeq = Math.max(state.lastAckedSeq, answer.seq);
      if (answer.boot !== null) {
        const run = state.runs.find((candidate) => candidate.boot === answer.boot);
        if (run === undefined) state.runs.push({ boot: answer.boot, firstSeq: answer.seq, maxSeq: answer.seq });
        else run.maxSeq = Math.max(run.maxSeq, answer.seq);
      }
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
        open.runAfter = answer.boot;
        record('drill', 'probe.up', name, { downForMs: now - open.downAtMs, seq: answer.seq, sameRun: answer.boot !== null && answer.boot === open.runBefore });
      }
    } else if (!ok && state.up && state.failures >= PROBE_FAILURES) {
      // Silent since the first of PROBE_FAILURES missed probes in a row: one slow answer on a
      // busy machine is not even a silence.
      state.up = false;
      if (this.faultAtMs !== null) {
        state.outages.push({ downAtMs: state.firstFailAtMs!, upAtMs: null, ackedBefore: state.lastAckedSeq, runBefore: state.run, runAfter: null, noCopy: false });
        record('drill', 'probe.down', name, { lastAckedSeq: state.lastAckedSeq, sinceMs: state.firstFailAtMs });
      }
    }
    if (ok) state.run = answer.boot;
  }

  private async countCopies(): Promise<void> {
    const { layout, manifest, controller, record } = this.options;
    for (const vm of manifest.vms) {
      const copies = await QemuSubstrate.copiesOf(vm.name, layout.disk(vm.datastore, vm.name), { migrating: controller.state.inFlight.has(`migrate:${vm.name}`) });
      const state = this.vms.get(vm.name)!;
      if (copies.writable > state.maxWritable && copies.writable > 1) record('drill', 'probe.copies', vm.name, { writable: copies.writable, standby: copies.standby, pids: copies.pids });
      state.maxWritable = Math.max(state.maxWritable, copies.writable);
      const open = state.outages[state.outages.length - 1];
      if (open !== undefined && open.upAtMs === null && copies.writable === 0) open.noCopy = true;
      state.maxStandby = Math.max(state.maxStandby, copies.standby);
    }
  }
}

/**
 * Acknowledged writes the disk does not hold: for each run of the guest the probes saw, the
 * sequence numbers from its first record on the disk (or the first it was seen acknowledging, if
 * none survived) to the newest it acknowledged whose record on the disk is not that run's; and
 * where the newest run resumed (the sequence number before its first record).
 */
export function writesNotOnDisk(runs: readonly { readonly boot: string; readonly firstSeq: number; readonly maxSeq: number }[], records: ReadonlyMap<number, string>): { writes: number; resumedAfter: number } {
  const firstOnDisk = new Map<string, number>();
  for (const [seq, boot] of records) if (seq < (firstOnDisk.get(boot) ?? Number.POSITIVE_INFINITY)) firstOnDisk.set(boot, seq);
  let writes = 0;
  runs.forEach((run, index) => {
    const earlier = new Set(runs.slice(0, index).map((candidate) => candidate.boot));
    // A run's first answer may be the record it resumed after (an earlier run's), not its own write.
    const resumedAt = earlier.has(records.get(run.firstSeq) ?? '') ? run.firstSeq : null;
    const first = firstOnDisk.get(run.boot) ?? (resumedAt === null ? run.firstSeq : resumedAt + 1);
    for (let seq = Math.max(1, first); seq <= run.maxSeq; seq++) if (records.get(seq) !== run.boot) writes++;
  });
  const last = runs[runs.length - 1];
  const resumedAfter = last === undefined ? 0 : (firstOnDisk.get(last.boot) ?? last.firstSeq + 1) - 1;
  return { writes, resumedAfter };
}

/** `/seq`'s answer: "SEQ BOOT" (a guest image before boots answered "SEQ" alone). */
export function parseSeq(text: string | null): { seq: number; boot: string | null } | null {
  if (text === null) return null;
  const match = /^(\d+)(?:\s+([0-9a-f]{1,36}))?$/.exec(text.trim());
  return match === null ? null : { seq: Number(match[1]), boot: match[2] ?? null };
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
