/**
 * Cyber drills: an attacker model driven by the scenario, acting on the twin only through what a
 * real attacker has — connection attempts through the enforced network policy, the encryption of
 * disks it holds, and stolen administrator credentials against the snapshots. The controller is
 * told nothing: it sees the twin's security telemetry and must detect, quarantine and restore.
 *
 * The attacker's timing is seeded (one stream per scenario): intrusion at Ti through a vendor's
 * remote-maintenance VPN, reconnaissance that begins a few minutes later (exponential, mean 5 min)
 * and continues low and slow (one probe every 4 min on average) for a dwell time of 1–4 h, then
 * encryption from Te, with an attempt to delete the snapshots of every VM it holds.
 */
import type { Random } from '../../ports/random.ts';
import type { Clock, JournalEvents, JournalEventType } from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import { compileSegmentation, type SegmentationPolicy } from '../../model/segmentation.ts';
import type { Twin } from '../../substrate/twin/twin.ts';
import type { AttackProfile } from '../../substrate/twin/security-model.ts';
import { drawVariant, type AttackVariant, type VariantPlan } from './variants.ts';

export const MINUTE_S = 60;
const COMMON_PORTS = [22, 53, 104, 389, 443, 445, 514, 1433, 1521, 2575, 3389, 5432, 8080, 8443];
const MAX_PROBES = 2000;
const MAX_DELETE_ATTEMPTS_PER_VM = 50;

/** What an attack step may use while it runs. */
export interface AttackRuntime {
  readonly twin: Twin;
  readonly clock: Clock;
  readonly blueprint: Blueprint;
  record<T extends JournalEventType>(kind: 'fault' | 'drill', type: T, subject: string, data: JournalEvents[T]): void;
}

interface AttackSpec {
  readonly entryNetwork: string;
  /** The VM the intrusion lands on. */
  readonly firstVm: string;
  /** Spread along allowed flows (ransomware-lateral). */
  readonly lateral: boolean;
  readonly maxFootholds: number;
  readonly exploitProbability: number;
  /** Scan every VM from the entry network first (vendor-vpn-compromise). */
  readonly scanFromEntry: boolean;
  /** How the data is destroyed (issue 15); `full` is whole-file encryption. */
  readonly variant: AttackVariant;
}

/** The attacker: footholds, probes, encryption and deletion attempts, all on seeded timing. */
export class Attacker {
  readonly footholds = new Map<string, number>();
  private probes = 0;
  private encrypting = false;
  private policy: SegmentationPolicy | null = null;

  constructor(
    private readonly spec: AttackSpec,
    private readonly random: Random,
  ) {}

  /** Ti: the vendor's VPN session opens on the first VM (a handful of connections in its first minute). */
  intrude(runtime: AttackRuntime): void {
    this.policy = compileSegmentation(runtime.blueprint);
    const { entryNetwork, firstVm } = this.spec;
    const now = runtime.clock.nowMs();
    runtime.record('fault', 'attack.intrusion', firstVm, { entry: entryNetwork, via: 'remote-maintenance VPN with stolen vendor credentials' });
    if (this.spec.scanFromEntry) this.scanFromEntry(runtime);
    const session = this.random.fork('session');
    const connections = 3 + session.int(6);
    // The maintenance ports the vendor's VPN is allowed to use on this VM (SSH or RDP).
    const ports = (this.policy.rules.filter((rule) => rule.from === entryNetwork && rule.to === firstVm).map((rule) => rule.port));
    for (let index = 0; index < connections; index++) {
      runtime.clock.at(now + session.int(60_000), () => {
        const result = runtime.twin.attemptFlow({ from: entryNetwork, to: firstVm, port: ports.length > 0 ? session.pick(ports) : 22 });
        if (index === 0) runtime.record('fault', 'attack.session', firstVm, { from: entryNetwork, allowed: result.allowed });
      });
    }
    this.footholds.set(firstVm, now);
    this.scheduleProbe(runtime, firstVm, this.random.fork(`probe/${firstVm}`), now + this.random.fork('recon-delay').exponential(5 * MINUTE_S * 1000));
  }

  private scanFromEntry(runtime: AttackRuntime): void {
    const scan = this.random.fork('scan');
    const targets = runtime.blueprint.vms.map((vm) => vm.name);
    let atMs = runtime.clock.nowMs();
    const reached = new Set<string>();
    let denied = 0;
    targets.forEach((target, index) => {
      atMs += 2_000 + scan.int(18_000);
      runtime.clock.at(atMs, () => {
        for (const port of [22, 443, 3389]) {
          const result = runtime.twin.attemptFlow({ from: this.spec.entryNetwork, to: target, port });
          if (result.allowed) reached.add(target);
          else denied += 1;
        }
        if (index === targets.length - 1) {
          runtime.record('fault', 'attack.scan', this.spec.entryNetwork, { attempted: targets.length, reached: [...reached].sort(), denied });
        }
      });
    });
  }

  private listeningPorts(vm: string): number[] {
    const ports = new Set<number>();
    for (const rule of this.policy?.rules ?? []) if (rule.to === vm && rule.port !== 0) ports.add(rule.port);
    return [...ports];
  }

  private scheduleProbe(runtime: AttackRuntime, from: string, random: Random, atMs: number): void {
    runtime.clock.at(atMs, () => {
      if (this.probes >= MAX_PROBES || !runtime.twin.hasRunningCopy(from)) return;
      // Once the ransom note is out the attacker stops being quiet; the probing ends with encryption + 1 h.
      if (this.encrypting && runtime.clock.nowMs() > (this.encryptStartMs ?? 0) + 3600_000) return;
      this.probes += 1;
      const targets = runtime.blueprint.vms.filter((vm) => vm.name !== from);
      const target = random.pick(targets).name;
      const listening = this.listeningPorts(target);
      const port = listening.length > 0 && random.next() < 0.5 ? random.pick(listening) : random.pick(COMMON_PORTS);
      const result = runtime.twin.attemptFlow({ from, to: target, port });
      if (result.allowed && this.spec.lateral && !this.footholds.has(target) && this.footholds.size < this.spec.maxFootholds && random.next() < this.spec.exploitProbability) {
        const now = runtime.clock.nowMs();
        this.footholds.set(target, now);
        runtime.record('fault', 'attack.foothold', target, { from, port, via: 'an allowed flow' });
        this.scheduleProbe(runtime, target, this.random.fork(`probe/${target}`), now + random.exponential(5 * MINUTE_S * 1000));
      }
      this.scheduleProbe(runtime, from, random, runtime.clock.nowMs() + Math.max(1000, random.exponential(4 * MINUTE_S * 1000)));
    });
  }

  private encryptStartMs: number | null = null;

  /** The attack this run plays (`full`: the original whole-file encryption), drawn once. */
  get plan(): VariantPlan {
    this.variantPlan ??= drawVariant(this.spec.variant, this.random.fork(`variant/${this.spec.variant}`));
    return this.variantPlan;
  }

  private variantPlan: VariantPlan | null = null;

  /** Before Te (exfiltrate): every VM it holds is read and sent out; nothing is written yet. */
  exfiltrate(runtime: AttackRuntime): void {
    const exfiltration = this.plan.exfiltration;
    if (exfiltration === null) return;
    for (const vm of [...this.footholds.keys()].sort()) {
      const started = runtime.twin.startExfiltration(vm, exfiltration.kibps, exfiltration.durationMs);
      runtime.record('fault', 'attack.exfiltration', vm, { kibps: Math.round(exfiltration.kibps), durationS: Math.round(exfiltration.durationMs / 1000), started });
    }
  }

  /** Te: every VM it holds is encrypted (or wiped), and it tries to delete their snapshots with stolen admin credentials. */
  encrypt(runtime: AttackRuntime): void {
    this.encrypting = true;
    this.encryptStartMs = runtime.clock.nowMs();
    const rates = this.random.fork('encryption-rate');
    const { profile, byteRate } = this.plan;
    for (const vm of [...this.footholds.keys()].sort()) {
      // Median 20 MiB/s, spread over an order of magnitude either way (throttled or intermittent encryption is slower).
      const drawnKiBps = Math.min(200 * 1024, Math.max(2 * 1024, 20 * 1024 * Math.exp(0.8 * gaussian(rates))));
      const encryption = runtime.twin.startEncryption(vm, profile, byteRate ? drawnKiBps : undefined);
      const rateKiBps = encryption?.rateKiBps ?? drawnKiBps;
      runtime.record('fault', 'fault.injected', vm, { kind: 'ransomware-encryption', target: vm, rateKiBps: Math.round(rateKiBps), started: encryption !== null });
      if (encryption !== null) runtime.record('fault', 'attack.variant', vm, groundTruth(encryption.profile, encryption.fromMs));
      const deletion = this.random.fork(`delete/${vm}`);
      runtime.clock.at(runtime.clock.nowMs() + deletion.int(60_000), () => {
        const snapshots = runtime.twin.listSnapshots(vm).slice(-MAX_DELETE_ATTEMPTS_PER_VM);
        let refused = 0;
        for (const snapshot of snapshots) {
          const outcome = runtime.twin.deleteSnapshot({ token: runtime.twin.adminToken(), snapshotId: snapshot.id, actor: 'attacker (stolen admin credentials)' });
          if (!outcome.ok) refused += 1;
        }
        runtime.record('fault', 'attack.snapshot-delete', vm, { attempted: snapshots.length, refused, deleted: snapshots.length - refused });
      });
    }
  }
}

/** The variant's ground truth as the journal keeps it (the controller never reads it). */
function groundTruth(profile: AttackProfile, firstMaliciousWriteMs: number): JournalEvents['attack.variant'] {
  return {
    variant: profile.variant,
    firstMaliciousWriteMs,
    filesPerS: Math.round(profile.filesPerS * 1000) / 1000,
    fileFraction: Math.round(profile.fileFraction * 1000) / 1000,
    outputEntropy: profile.outputEntropy === null ? 'matched' : profile.outputEntropy,
    onS: profile.onMs === null ? null : Math.round(profile.onMs / 1000),
    offS: profile.onMs === null ? null : [Math.round(profile.offMinMs / 1000), Math.round(profile.offMaxMs / 1000)],
    renames: profile.renames,
    keepsHeader: profile.keepsHeader,
    readsFirst: profile.readsFirst,
    deletes: profile.deletes,
  };
}

function gaussian(random: Random): number {
  const u = Math.max(1e-12, random.next());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}
