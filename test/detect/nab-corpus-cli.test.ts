import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NAB_DETECTOR_NAME, parseCorpusArguments, runOnCorpus } from '../../scripts/eval-nab-corpus.ts';
import { SHIPPED_NAB_THRESHOLDS } from '../../src/detect/anomaly-tuning.ts';
import { seededRandom } from '../../src/plan/generate.ts';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
const START_MS = Date.UTC(2024, 0, 1);
const STEP_MS = 300_000;

function nabTimestamp(row: number): string {
  return new Date(START_MS + row * STEP_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** A noisy metric of `rows` rows that jumps by `jump` from row `shiftAt` on. */
function writeSeries(path: string, seed: number, rows: number, shiftAt: number, jump: number): void {
  const random = seededRandom(seed);
  const lines = ['timestamp,value'];
  for (let row = 0; row < rows; row += 1) lines.push(`${nabTimestamp(row)},${(50 + 2 * random() + (row >= shiftAt ? jump : 0)).toFixed(3)}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
}

function makeCorpus(directory: string, withLabels: boolean): void {
  mkdirSync(join(directory, 'data', 'groupA'), { recursive: true });
  mkdirSync(join(directory, 'data', 'groupB'), { recursive: true });
  writeSeries(join(directory, 'data', 'groupA', 'metric_one.csv'), 1, 1200, 900, 30);
  writeSeries(join(directory, 'data', 'groupB', 'metric_two.csv'), 2, 1000, 2000, 0);
  if (!withLabels) return;
  mkdirSync(join(directory, 'labels'), { recursive: true });
  const windows = {
    'groupA/metric_one.csv': [[`${nabTimestamp(850)}.000000`, `${nabTimestamp(950)}.000000`]],
    'groupB/metric_two.csv': [],
  };
  writeFileSync(join(directory, 'labels', 'combined_windows.json'), JSON.stringify(windows));
}

function runCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/eval-nab.ts', ...args], { cwd: repositoryRoot, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let scratch = '';
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'nab-corpus-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('eval:nab --corpus DIR --results OUT', () => {
  it('writes NAB results files with the NAB header and labels, prints θ and scores a labelled corpus', () => {
    const corpus = join(scratch, 'labelled');
    const out = join(scratch, 'out-labelled');
    makeCorpus(corpus, true);
    const lines: string[] = [];
    const run = runOnCorpus(corpus, out, (line) => lines.push(line));
    const path = join(out, NAB_DETECTOR_NAME, 'groupA', `${NAB_DETECTOR_NAME}_metric_one.csv`);
    expect(run.resultsFiles).toContain(path);
    expect(existsSync(join(out, NAB_DETECTOR_NAME, 'groupB', `${NAB_DETECTOR_NAME}_metric_two.csv`))).toBe(true);
    const rows = readFileSync(path, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('timestamp,value,anomaly_score,label');
    expect(rows.length).toBe(1201);
    const cells = rows.slice(1).map((row) => row.split(','));
    expect(cells[849]![3]).toBe('0');
    expect(cells[850]![3]).toBe('1');
    expect(cells[950]![3]).toBe('1');
    expect(cells[951]![3]).toBe('0');
    expect(cells[0]![0]).toBe(nabTimestamp(0));
    for (const row of cells) expect(Number(row[2])).toBeGreaterThanOrEqual(0);
    // The jump at row 900 is an alert at the shipped threshold, inside the window.
    expect(Math.max(...cells.slice(900, 910).map((row) => Number(row[2])))).toBeGreaterThanOrEqual(SHIPPED_NAB_THRESHOLDS.standard);
    expect(lines.join('\n')).toContain(`standard ${SHIPPED_NAB_THRESHOLDS.standard}`);
    expect(run.thresholds).toEqual(SHIPPED_NAB_THRESHOLDS);
    expect(run.scores).not.toBeNull();
    expect(run.scores!.standard).toBeGreaterThan(0);
  });

  it('writes results without a score when the corpus has no labels', () => {
    const corpus = join(scratch, 'unlabelled');
    makeCorpus(corpus, false);
    const run = runOnCorpus(corpus, join(scratch, 'out-unlabelled'), () => undefined);
    expect(run.scores).toBeNull();
    expect(run.resultsFiles.length).toBe(2);
  });

  it('runs from the command line and prints the threshold it used', () => {
    const corpus = join(scratch, 'cli');
    const out = join(scratch, 'out-cli');
    makeCorpus(corpus, true);
    const result = runCli('--corpus', corpus, '--results', out);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`thresholds used: standard ${SHIPPED_NAB_THRESHOLDS.standard}`);
    expect(result.stdout).toMatch(/NAB score at the shipped thresholds \(1 windows\)/);
    expect(existsSync(join(out, NAB_DETECTOR_NAME, 'groupA', `${NAB_DETECTOR_NAME}_metric_one.csv`))).toBe(true);
  });

  it('refuses a bad corpus with an error naming the path and what is missing, and writes nothing', () => {
    const missing = join(scratch, 'does-not-exist');
    const out = join(scratch, 'out-bad');
    const result = runCli('--corpus', missing, '--results', out);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`corpus directory ${missing} does not exist`);
    expect(existsSync(out)).toBe(false);

    const noData = join(scratch, 'no-data');
    mkdirSync(noData);
    expect(() => runOnCorpus(noData, out, () => undefined)).toThrow(`corpus ${noData} has no data/ directory`);

    const unlabelledFile = join(scratch, 'label-missing');
    makeCorpus(unlabelledFile, true);
    writeSeries(join(unlabelledFile, 'data', 'groupB', 'metric_three.csv'), 3, 500, 1000, 0);
    expect(() => runOnCorpus(unlabelledFile, out, () => undefined)).toThrow(/combined_windows\.json has no entry for groupB\/metric_three\.csv/);

    const badValue = join(scratch, 'bad-value');
    makeCorpus(badValue, false);
    writeFileSync(join(badValue, 'data', 'groupA', 'metric_one.csv'), `timestamp,value\n${nabTimestamp(0)},1\n${nabTimestamp(1)},oops\n`);
    expect(() => runOnCorpus(badValue, out, () => undefined)).toThrow(/metric_one\.csv line 3: value "oops" is not a number/);
    expect(existsSync(out)).toBe(false);
  });

  it('parses its arguments and refuses half of them', () => {
    expect(parseCorpusArguments([])).toBeNull();
    expect(parseCorpusArguments(['--corpus', 'a', '--results', 'b'])).toEqual({ corpus: 'a', results: 'b' });
    expect(() => parseCorpusArguments(['--corpus', 'a'])).toThrow(/usage: npm run eval:nab -- --corpus DIR --results OUT/);
  });
});
