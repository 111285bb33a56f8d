/**
 * The attacker's variants (issue 15): how the data is destroyed, drawn per run. Each variant fixes
 * what defines it (intermittent bursts, a few per cent of each file, encoded ciphertext, entropy
 * matched to the VM's own writes, hours-long pace, a wiper, exfiltration first) and draws the rest
 * — pace, share of each file, whether files are renamed, whether the header is kept — over wide
 * ranges, so a drill tests the class of attack and not one example of it.
 */
import type { Random } from '../../ports/random.ts';
import { ATTACK_VARIANTS, type AttackProfile, type AttackVariant } from '../../substrate/twin/security-model.ts';

export { ATTACK_VARIANTS, type AttackVariant };

/** The variants a drill can be asked for (`full` is the original whole-file encryption). */
export function isAttackVariant(value: string): value is AttackVariant {
  return (ATTACK_VARIANTS as readonly string[]).includes(value);
}

/** Exfiltration before the encryption: how fast and for how long the files are sent out. */
export interface ExfiltrationPlan {
  readonly kibps: number;
  readonly durationMs: number;
}

export interface VariantPlan {
  readonly profile: AttackProfile;
  /** Full encryption at a rate in bytes (the original attacker's draw), else the profile's files per second. */
  readonly byteRate: boolean;
  readonly exfiltration: ExfiltrationPlan | null;
}

const logUniform = (random: Random, low: number, high: number) => low * Math.exp(random.next() * Math.log(high / low));
const chance = (random: Random, p: number) => random.next() < p;

/** Draws one run's attack of the given variant. */
export function drawVariant(variant: AttackVariant, random: Random): VariantPlan {
  const ciphertext = () => random.pick([0.998, 0.75, 0.625, null]);
  const base: AttackProfile = {
    variant,
    filesPerS: logUniform(random, 1, 20),
    fileFraction: 1,
    outputEntropy: 0.998,
    onMs: null,
    offMinMs: 0,
    offMaxMs: 0,
    renames: chance(random, 0.5),
    keepsHeader: chance(random, 0.3),
    readsFirst: true,
    deletes: false,
    cycleSeed: random.int(2 ** 31),
  };
  switch (variant) {
    case 'full':
      return { profile: { ...base, keepsHeader: false }, byteRate: true, exfiltration: null };
    case 'exfiltrate':
      return {
        profile: { ...base, keepsHeader: false },
        byteRate: true,
        exfiltration: { kibps: logUniform(random, 1024, 20 * 1024), durationMs: (10 + random.next() * 50) * 60_000 },
      };
    case 'intermittent': {
      const offMinMs = (60 + random.next() * 120) * 1000;
      return {
        profile: { ...base, onMs: (10 + random.next() * 50) * 1000, offMinMs, offMaxMs: offMinMs + (60 + random.next() * 180) * 1000, fileFraction: logUniform(random, 0.02, 1), outputEntropy: ciphertext() },
        byteRate: false,
        exfiltration: null,
      };
    }
    case 'partial':
      return { profile: { ...base, filesPerS: logUniform(random, 2, 40), fileFraction: logUniform(random, 0.01, 0.1), keepsHeader: chance(random, 0.5) }, byteRate: false, exfiltration: null };
    case 'low-entropy':
      // Ciphertext written as hex (0.5), base32 (0.625) or base64 (0.75), or anything in between.
      return { profile: { ...base, outputEntropy: 0.5 + random.next() * 0.3, fileFraction: chance(random, 0.5) ? 1 : logUniform(random, 0.02, 0.5) }, byteRate: false, exfiltration: null };
    case 'entropy-matched':
      return { profile: { ...base, outputEntropy: null }, byteRate: false, exfiltration: null };
    case 'slow':
      // One file every 3 to 50 s: a tree of tens of thousands of files takes hours to days.
      return { profile: { ...base, filesPerS: logUniform(random, 0.02, 0.3), fileFraction: logUniform(random, 0.02, 1), outputEntropy: ciphertext() }, byteRate: false, exfiltration: null };
    case 'wiper':
      // Overwrites without reading (zeros, or random bytes), header included; most also delete.
      return {
        profile: { ...base, filesPerS: logUniform(random, 5, 50), fileFraction: chance(random, 0.5) ? 1 : 0.01, outputEntropy: random.pick([0, 0.998]), readsFirst: false, keepsHeader: false, renames: false, deletes: chance(random, 0.7) },
        byteRate: false,
        exfiltration: null,
      };
  }
}
