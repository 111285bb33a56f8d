/**
 * The attacker's variants (issue 15) on the reference hospital, a few seeds each: detected, soon
 * after the first malicious write, the restore point chosen from the alert before that write, no
 * alert on a VM the attacker never touched, and the ground truth in the journal. The 50-seed table
 * is `tomaranai drill blueprints/university-hospital.yaml --scenario ransomware --variant all
 * --seeds 1-50 --benign-days 7` (docs/detection.md).
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { runDrill } from '../../src/drill/sim/run.ts';
import { scoreRansomwareRun } from '../../src/drill/sim/ransomware-sweep.ts';
import { ATTACK_VARIANTS } from '../../src/drill/sim/variants.ts';
import { ROOT, shipped } from '../support/blueprints.ts';

const blueprint = shipped('university-hospital');
const SEEDS = [61, 62];

describe('ransomware variants on the reference hospital', () => {
  for (const variant of ATTACK_VARIANTS) {
    it(`${variant}: detected within 10 min of the first malicious write, restored from before it, no false alert`, () => {
      for (const seed of SEEDS) {
        const run = runDrill({ blueprint, scenario: 'ransomware', seed, variant });
        const entries = run.journal.entries();
        const score = scoreRansomwareRun(entries, seed, variant);
        const context = `replay: npx tomaranai drill blueprints/university-hospital.yaml --scenario ransomware --variant ${variant} --seed ${seed}; ${JSON.stringify(score)}`;
        const truth = entries.find((entry) => entry.type === 'attack.variant');
        expect(truth?.data.variant, context).toBe(variant);
        expect(score.detected, context).toBe(true);
        expect(score.delayS!, context).toBeLessThanOrEqual(600);
        expect(score.restoreBeforeFirstWrite, context).toBe(true);
        expect(score.falseAlerts, context).toBe(0);
        expect(run.report.invariants, context).toEqual({ splitBrain: 0, lostVms: 0, immutableViolations: 0 });
        const recorded = entries.find((entry) => entry.type === 'security.truth' && entry.subject === score.vm);
        expect(Number(recorded?.data.filesTouched), context).toBeGreaterThan(0);
      }
    }, 120_000);
  }

  it('refuses a variant for a drill with no attacker, naming the fix, and runs nothing', async () => {
    let out = '';
    let err = '';
    const exitCode = await main(['drill', `${ROOT}/blueprints/university-hospital.yaml`, '--scenario', 'host-failure', '--variant', 'wiper', '--quiet'], {
      out: (text) => (out += text),
      err: (text) => (err += text),
    });
    expect(exitCode).toBe(1);
    expect(err).toMatch(/TMR_DRILL_VARIANT: --variant is for the cyber scenarios/);
    expect(out).toBe('');
  });

  it('refuses a variant the twin\'s attacker does not know, listing those it does, and runs nothing', async () => {
    let out = '';
    let err = '';
    const exitCode = await main(['drill', `${ROOT}/blueprints/university-hospital.yaml`, '--scenario', 'ransomware', '--variant', 'whole', '--quiet'], {
      out: (text) => (out += text),
      err: (text) => (err += text),
    });
    expect(exitCode).toBe(1);
    expect(err).toMatch(/TMR_DRILL_VARIANT: the twin's attacker has no variant "whole": use one of full, .*wiper.*, all/);
    expect(out).toBe('');
  });
});
