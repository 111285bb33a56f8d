/**
 * Security telemetry a host agent reads from its own QEMUs and its own virtual switch, for the
 * control plane's ransomware detector (security-telemetry.ts turns it into the port's samples):
 *
 * - **bytes written**: QMP `query-blockstats` (`wr_bytes` of the guest's disk, cumulative);
 * - **changed blocks**: a dirty bitmap per window (QMP `block-dirty-bitmap-add`, 4 KiB
 *   granularity). At each read the window's bitmap is frozen and a fresh one takes over in one QMP
 *   `transaction` (no write falls between two windows), the frozen bitmap is exported over NBD with
 *   the disk (`nbd-server-start` on a unix socket in the host's run directory, `block-export-add`),
 *   `qemu-img map` reads its dirty extents (`x-dirty-bitmap`: a dirty block maps as `data: false`),
 *   and `qemu-io` reads a sample of those blocks through the same export for their byte entropy;
 * - **denied flows**: the segmentation's nftables table adds every frame it drops to a set of
 *   (source, destination) pairs with a counter per pair (network-policy.ts); read as JSON.
 *
 * Everything the guest can reach stays out of this path: the bitmaps, the export and the counters
 * live in QEMU and the host's namespace, not in the guest.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { AgentHost, AgentInstance } from './agent-host.ts';
import { run, tryRun } from './command.ts';
import { POLICY_TABLE } from './network-policy.ts';
import { tapName } from './netns.ts';

/** Dirty-bitmap granularity: one 4 KiB block, the unit the change rate and the entropy sample count. */
export const BLOCK_BYTES = 4096;
/** At most this many changed blocks are read per window for the entropy (spread over the changed range). */
const SAMPLE_BLOCKS_MAX = 16;
export const DENIED_SET = 'denied';

export interface VmBlockTelemetry {
  readonly vm: string;
  readonly instanceId: string;
  /** Wall-clock ms of this reading, on the host. */
  readonly atMs: number;
  /** `wr_bytes` of the disk since QEMU started. */
  readonly writtenBytes: number;
  /** Blocks changed since the previous reading (4 KiB each, counted once however often rewritten), and since when. */
  readonly changedBlocks: number;
  readonly sinceMs: number | null;
  /** Shannon entropy of the sampled changed blocks, bits per byte / 8; null when nothing changed. */
  readonly entropy: number | null;
  readonly sampledBytes: number;
  /** Bytes through the VM's tap since it was made (from the VM: `fromVmBytes`); null when unreadable. */
  readonly fromVmBytes: number | null;
  readonly toVmBytes: number | null;
}

export interface DeniedPair {
  readonly from: string;
  readonly to: string;
  readonly packets: number;
}

export interface HostTelemetry {
  readonly host: string;
  readonly atMs: number;
  readonly vms: readonly VmBlockTelemetry[];
  /** Cumulative drops by the segmentation, per (source, destination): null when no policy is in force. */
  readonly denied: readonly DeniedPair[] | null;
}

interface BitmapState {
  readonly qemuPid: number;
  readonly node: string;
  generation: number;
  sinceMs: number;
  /** Bitmaps whose removal failed (their export was still closing): removed at the next reading. */
  stale: string[];
}

const BlockStats = z.array(z.looseObject({ device: z.string().optional(), qdev: z.string().optional(), stats: z.looseObject({ wr_bytes: z.number() }) }));
const BlockInfo = z.array(z.looseObject({ device: z.string().optional(), qdev: z.string().optional(), inserted: z.looseObject({ 'node-name': z.string() }).optional() }));
const MapExtents = z.array(z.looseObject({ start: z.number(), length: z.number(), data: z.boolean() }));

/** The guest's disk among QEMU's block devices: `disk0` when booted with it, qdev `vda` when hot-plugged. */
function isGuestDisk(entry: { device?: string | undefined; qdev?: string | undefined }): boolean {
  return entry.device === 'disk0' || entry.qdev === 'vda' || (entry.qdev ?? '').includes('/vda/');
}

/** Shannon entropy of `bytes`, in bits per byte divided by 8 (0 for a constant, 1 for uniform noise). */
export function byteEntropy(bytes: Uint8Array): number {
  if (bytes.length === 0) return 0;
  const counts = new Array<number>(256).fill(0);
  for (const byte of bytes) counts[byte]! += 1;
  let bits = 0;
  for (const count of counts) {
    if (count === 0) continue;
    const p = count / bytes.length;
    bits -= p * Math.log2(p);
  }
  return bits / 8;
}

/** The bytes of `qemu-io -c 'read -v OFFSET LENGTH'` output (several reads may follow one another). */
export function parseHexDump(stdout: string): Buffer {
  const chunks: number[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^[0-9a-f]{8}:\s+((?:[0-9a-f]{2} ){0,15}[0-9a-f]{2})/.exec(line);
    if (match === null) continue;
    for (const pair of match[1]!.split(' ')) chunks.push(Number.parseInt(pair, 16));
  }
  return Buffer.from(chunks);
}

/** Up to `max` block offsets spread evenly over the changed extents (the whole window, not its first writes). */
export function sampleBlocks(extents: readonly { start: number; length: number }[], max: number): number[] {
  const blocks: number[] = [];
  for (const extent of extents) for (let at = extent.start; at < extent.start + extent.length; at += BLOCK_BYTES) blocks.push(at);
  if (blocks.length <= max) return blocks;
  const step = blocks.length / max;
  return Array.from({ length: max }, (_, index) => blocks[Math.floor(index * step)]!);
}

/** Reads each running copy's telemetry on one host; keeps each copy's bitmap between readings. */
export class BlockTelemetryReader {
  private readonly bitmaps = new Map<string, BitmapState>();
  private nbdStarted = new Set<number>();

  constructor(private readonly host: AgentHost) {}

  async read(): Promise<HostTelemetry> {
    const vms: VmBlockTelemetry[] = [];
    for (const instance of this.host.instances.values()) {
      if (!instance.diskAttached || instance.paused || instance.incoming || instance.qemu.qmp.closed) continue;
      const reading = await this.readInstance(instance).catch((error: unknown) => {
        this.host.log('telemetry.failed', { vm: instance.vm, error: error instanceof Error ? error.message : String(error) });
        this.bitmaps.delete(instance.vm);
        return null;
      });
      if (reading !== null) vms.push({ ...reading, ...(await tapBytes(instance.vm)) });
    }
    return { host: this.host.name, atMs: Date.now(), vms, denied: await readDenied() };
  }

  private async readInstance(instance: AgentInstance): Promise<Omit<VmBlockTelemetry, 'fromVmBytes' | 'toVmBytes'>> {
    const qmp = instance.qemu.qmp;
    const stats = BlockStats.parse(await qmp.execute('query-blockstats'));
    const writtenBytes = stats.find(isGuestDisk)?.stats.wr_bytes ?? 0;
    let state = this.bitmaps.get(instance.vm);
    const nowMs = Date.now();
    if (state === undefined || state.qemuPid !== instance.qemu.pid) {
      const node = BlockInfo.parse(await qmp.execute('query-block')).find(isGuestDisk)?.inserted?.['node-name'];
      if (node === undefined) throw new Error(`no guest disk in ${instance.vm}'s QEMU`);
      state = { qemuPid: instance.qemu.pid, node, generation: 0, sinceMs: nowMs, stale: [] };
      await qmp.execute('block-dirty-bitmap-add', { node, name: bitmapName(0), granularity: BLOCK_BYTES });
      this.bitmaps.set(instance.vm, state);
      return { vm: instance.vm, instanceId: instance.instanceId, atMs: nowMs, writtenBytes, changedBlocks: 0, sinceMs: null, entropy: null, sampledBytes: 0 };
    }
    for (const name of state.stale.splice(0)) await qmp.execute('block-dirty-bitmap-remove', { node: state.node, name }).catch(() => state!.stale.push(name));
    // The window's bitmap is frozen and the next one starts in one transaction: no write is missed.
    const frozen = bitmapName(state.generation);
    state.generation += 1;
    await qmp.execute('transaction', {
      actions: [
        { type: 'block-dirty-bitmap-add', data: { node: state.node, name: bitmapName(state.generation), granularity: BLOCK_BYTES } },
        { type: 'block-dirty-bitmap-disable', data: { node: state.node, name: frozen } },
      ],
    });
    const sinceMs = state.sinceMs;
    state.sinceMs = nowMs;
    const { changedBlocks, entropy, sampledBytes } = await this.readFrozen(instance, state, frozen);
    return { vm: instance.vm, instanceId: instance.instanceId, atMs: nowMs, writtenBytes, changedBlocks, sinceMs, entropy, sampledBytes };
  }

  /** Exports the frozen bitmap with the disk over NBD, maps its dirty extents, samples them, and drops it. */
  private async readFrozen(instance: AgentInstance, state: BitmapState, frozen: string): Promise<{ changedBlocks: number; entropy: number | null; sampledBytes: number }> {
    const qmp = instance.qemu.qmp;
    const socket = join(this.host.runDirectory, `${instance.vm}.nbd`);
    if (!this.nbdStarted.has(instance.qemu.pid)) {
      await qmp.execute('nbd-server-start', { addr: { type: 'unix', data: { path: socket } } }).catch((error: unknown) => {
        if (!String(error).includes('already running')) throw error;
      });
      this.nbdStarted.add(instance.qemu.pid);
    }
    const exportName = `tmr-x${state.generation - 1}`;
    await qmp.execute('block-export-add', { type: 'nbd', id: exportName, 'node-name': state.node, name: exportName, bitmaps: [frozen] });
    const image = `driver=nbd,server.type=unix,server.path=${socket},export=${exportName}`;
    try {
      const mapped = await run(['qemu-img', 'map', '--output=json', '--image-opts', `${image},x-dirty-bitmap=qemu:dirty-bitmap:${frozen}`], { timeoutMs: 10_000 });
      const dirty = MapExtents.parse(JSON.parse(mapped.stdout)).filter((extent) => !extent.data);
      const changedBlocks = dirty.reduce((sum, extent) => sum + Math.ceil(extent.length / BLOCK_BYTES), 0);
      const blocks = sampleBlocks(dirty, SAMPLE_BLOCKS_MAX);
      if (blocks.length === 0) return { changedBlocks, entropy: null, sampledBytes: 0 };
      const read = await run(['qemu-io', '-r', '--image-opts', image, ...blocks.flatMap((offset) => ['-c', `read -v ${offset} ${BLOCK_BYTES}`])], { timeoutMs: 10_000 });
      const bytes = parseHexDump(read.stdout);
      return { changedBlocks, entropy: byteEntropy(bytes), sampledBytes: bytes.length };
    } finally {
      await qmp.execute('block-export-del', { id: exportName, mode: 'hard' }).catch(() => undefined);
      await qmp.execute('block-dirty-bitmap-remove', { node: state.node, name: frozen }).catch(() => state.stale.push(frozen));
    }
  }
}

/** The tap's counters in this namespace's sysfs: what the tap receives comes from the VM. */
async function tapBytes(vm: string): Promise<{ fromVmBytes: number | null; toVmBytes: number | null }> {
  const read = async (counter: string) => {
    const text = await readFile(`/sys/class/net/${tapName(vm)}/statistics/${counter}`, 'utf8').catch(() => null);
    return text === null ? null : Number(text.trim());
  };
  return { fromVmBytes: await read('rx_bytes'), toVmBytes: await read('tx_bytes') };
}

function bitmapName(generation: number): string {
  return `tmr-w${generation}`;
}

const DeniedSet = z.looseObject({
  nftables: z.array(z.looseObject({ set: z.looseObject({ elem: z.array(z.unknown()).optional() }).optional() })),
});
const DeniedElement = z.looseObject({ elem: z.looseObject({ val: z.looseObject({ concat: z.tuple([z.string(), z.string()]) }), counter: z.looseObject({ packets: z.number() }).optional() }) });

/** The segmentation's dropped (source, destination) pairs with their packet counts, from this namespace's nftables. */
export async function readDenied(): Promise<DeniedPair[] | null> {
  const listed = await tryRun(['nft', '-j', 'list', 'set', 'bridge', POLICY_TABLE, DENIED_SET]);
  if (listed === null) return null;
  const parsed = DeniedSet.safeParse(JSON.parse(listed.stdout));
  if (!parsed.success) return null;
  const pairs: DeniedPair[] = [];
  for (const entry of parsed.data.nftables) {
    for (const element of entry.set?.elem ?? []) {
      const item = DeniedElement.safeParse(element);
      if (!item.success) continue;
      const [from, to] = item.data.elem.val.concat;
      pairs.push({ from, to, packets: item.data.elem.counter?.packets ?? 1 });
    }
  }
  return pairs;
}
