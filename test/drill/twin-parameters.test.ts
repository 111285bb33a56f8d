/**
 * The twin fitted to real VMs: `tomaranai calibrate --write FILE` writes the parameters, `drill
 * --twin-parameters FILE` runs the twin with them. A bad file is refused, naming the place.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { ROOT } from '../support/blueprints.ts';

async function run(argv: readonly string[]): Promise<{ exitCode: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const exitCode = await main(argv, { out: (text) => (out += text), err: (text) => (err += text) });
  return { exitCode, out, err };
}

describe('drill --twin-parameters', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tmr-twin-parameters-'));
  afterAll(() => rm(directory, { recursive: true, force: true }));
  const lab = `${ROOT}blueprints/lab.yaml`;

  it('runs the lab on the twin with the parameters calibrated against real VMs, and they change what it measures', async () => {
    const shipped = await run(['drill', lab, '--scenario', 'host-failure', '--json', '--quiet', '--journal', ':memory:']);
    const fitted = await run(['drill', lab, '--scenario', 'host-failure', '--json', '--quiet', '--journal', ':memory:', '--twin-parameters', `${ROOT}blueprints/lab.twin.json`]);
    expect(shipped.exitCode).toBe(0);
    expect(fitted.exitCode).toBe(0);
    const rto = (text: string) => Object.fromEntries((JSON.parse(text) as { services: { name: string; rtoMeasuredS: number }[] }).services.map((service) => [service.name, service.rtoMeasuredS]));
    // The lab's 250 ms heartbeats and 1.5 s detection make the fitted twin detect sooner; its
    // measured boots (several guests sharing two cores) make cold restarts slower.
    expect(rto(fitted.out)).not.toEqual(rto(shipped.out));
  });

  it('refuses a file that is not a calibration, naming the place, and runs nothing', async () => {
    const bad = join(directory, 'bad.json');
    await writeFile(bad, JSON.stringify({ blueprint: 'lab', parameters: { bootTimeFactor: -1 } }));
    const refused = await run(['drill', lab, '--scenario', 'host-failure', '--quiet', '--journal', ':memory:', '--twin-parameters', bad]);
    expect(refused.exitCode).toBe(1);
    expect(refused.err).toMatch(/^TMR_DRILL_TWIN_PARAMETERS: .*bad\.json: at parameters\.bootTimeFactor: /);
    expect(refused.out).toBe('');
    const unknownKey = join(directory, 'unknown.json');
    await writeFile(unknownKey, JSON.stringify({ blueprint: 'lab', parameters: { warpSpeed: 9 } }));
    expect((await run(['drill', lab, '--scenario', 'host-failure', '--quiet', '--journal', ':memory:', '--twin-parameters', unknownKey])).err).toMatch(/at parameters/);
    const notJson = join(directory, 'not.json');
    await writeFile(notJson, 'heartbeatIntervalMs: 250');
    expect((await run(['drill', lab, '--scenario', 'host-failure', '--quiet', '--journal', ':memory:', '--twin-parameters', notJson])).err).toMatch(/^TMR_DRILL_TWIN_PARAMETERS: .*not\.json: /);
  });
});
