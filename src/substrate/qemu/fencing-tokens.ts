/**
 * The qemu substrate's fencing tokens, checked as on the twin: a token older than the newest epoch
 * seen is refused, and a VM action that names a generation must find the VM at exactly that
 * generation (a compare-and-set). The newest epoch and every VM's generation live in the lab's
 * control directory, so a restarted control plane refuses what it refused before. The agents check
 * the epoch again on their side.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActionOutcome, FencingToken } from '../../ports/index.ts';
import { readJson, writeAtomic } from './lab.ts';

export class FencingTokens {
  private generations = new Map<string, number>();
  private newestEpoch = 0;
  private readonly vmBusy = new Set<string>();

  constructor(private readonly controlDirectory: string) {}

  /** Loads the persisted epoch and generations. */
  async load(): Promise<void> {
    this.newestEpoch = Number((await readFile(join(this.controlDirectory, 'epoch'), 'utf8').catch(() => '0')).trim()) || 0;
    const generations = await readJson<Record<string, number>>(join(this.controlDirectory, 'generations.json'));
    this.generations = new Map(Object.entries(generations ?? {}));
  }

  /** A copy of every VM's current generation, for a snapshot. */
  vmGenerations(): Map<string, number> {
    return new Map(this.generations);
  }

  /** Null when the token may act (on `vm`, when given); a newer epoch becomes the newest. */
  check(token: FencingToken, vm: string | null): ActionOutcome | null {
    if (token.epoch < this.newestEpoch) return { ok: false, reason: `fencing token epoch ${token.epoch} is older than ${this.newestEpoch}` };
    if (token.epoch > this.newestEpoch) {
      this.newestEpoch = token.epoch;
      void writeAtomic(join(this.controlDirectory, 'epoch'), String(token.epoch));
    }
    if (vm !== null && token.vmGeneration !== undefined) {
      const current = this.generations.get(vm) ?? 0;
      if (token.vmGeneration !== current) return { ok: false, reason: `${vm} is at generation ${current}, the action expected ${token.vmGeneration}` };
    }
    return null;
  }

  /**
   * Runs one action on a VM: its token checked, no other action on the VM under way (so the
   * compare-and-set holds across the agent call), the generation moved on only if it succeeded.
   */
  async vmAction(token: FencingToken, vm: string, work: (generation: number) => Promise<ActionOutcome>): Promise<ActionOutcome> {
    const refused = this.check(token, vm);
    if (refused !== null) return refused;
    if (this.vmBusy.has(vm)) return { ok: false, reason: `another action on ${vm} is under way` };
    this.vmBusy.add(vm);
    try {
      const generation = this.nextGeneration(vm);
      const outcome = await work(generation);
      if (outcome.ok) this.commit(vm, generation);
      return outcome;
    } finally {
      this.vmBusy.delete(vm);
    }
  }

  /** The generation an accepted action moves the VM to (committed only when the agent accepts). */
  private nextGeneration(vm: string): number {
    return (this.generations.get(vm) ?? 0) + 1;
  }

  private commit(vm: string, generation: number): void {
    this.generations.set(vm, generation);
    void writeAtomic(join(this.controlDirectory, 'generations.json'), JSON.stringify(Object.fromEntries(this.generations)));
  }
}
