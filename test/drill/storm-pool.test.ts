/**
 * Storms over worker threads (`tomaranai storm FILE --seeds N --workers K`): the seeds of a run are
 * a pure function of its base seed, and a storm gives the same outcome in a worker as alone, so a
 * failing seed printed by a CI run replays with `--seed`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runStorm } from '../../src/drill/sim/storm.ts';
import { runStormBatch } from '../../src/drill/sim/storm-pool.ts';
import { stormSeed, stormSeeds } from '../../src/drill/sim/storm-seeds.ts';
import { main } from '../../src/cli/main.ts';
import { ROOT, shipped } from '../support/blueprints.ts';

describe('storm seeds', () => {
  it('are a pure function of the base seed, distinct in a run, and differ between bases', () => {
    expect(stormSeeds(20_260_413, 5)).toEqual(stormSeeds(20_260_413, 5));
    expect(stormSeeds(20_260_413, 3)).toEqual(stormSeeds(20_260_413, 10).slice(0, 3));
    expect(new Set(stormSeeds(20_260_413, 10_000)).size).toBe(10_000);
    expect(stormSeeds(1, 5)).not.toEqual(stormSeeds(2, 5));
    expect(stormSeed(1, 0)).toBeGreaterThanOrEqual(0);
    expect(stormSeed(1, 0)).toBeLessThanOrEqual(0xffffffff);
  });
});

describe('storms over worker threads', () => {
  it('give every seed the outcome it has alone, in seed order, whatever the number of workers', async () => {
    const seeds = stormSeeds(7, 12);
    const source = readFileSync(`${ROOT}blueprints/regional-hospital.yaml`, 'utf8');
    const batch = await runStormBatch({ source, seeds, workers: 2, batchSize: 5 });
    expect(batch.workers).toBe(2);
    expect(batch.outcomes.map((outcome) => outcome.seed)).toEqual(seeds);
    const blueprint = shipped('regional-hospital');
    for (const outcome of batch.outcomes) {
      const alone = runStorm({ blueprint, seed: outcome.seed });
      expect({ ok: outcome.ok, events: outcome.events, judged: outcome.judged }).toEqual({ ok: alone.ok, events: alone.events, judged: alone.oracle.judged });
    }
  });

  it('the CLI prints the seed count, and refuses --seed with --seeds', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (text: string) => out.push(text), err: (text: string) => err.push(text) };
    const file = `${ROOT}blueprints/lab.yaml`;
    expect(await main(['storm', file, '--seeds', '30', '--workers', '2', '--base-seed', '5'], io)).toBe(0);
    expect(out.join('')).toMatch(/^storms: 30 seeds on lab \(base seed 5\), 0 failed, 0 violations, 0 unconverged; \d+ settled points judged/m);
    expect(await main(['storm', file, '--seeds', '3', '--seed', '4'], io)).toBe(2);
    expect(err.join('')).toMatch(/either --seed N .* or --seeds N/);
  });
});
