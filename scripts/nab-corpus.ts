// Reading a corpus in NAB's layout (data/<group>/<file>.csv, optional labels/combined_windows.json)
// and writing NAB results files. Shared by `npm run eval:nab` (the shared 20 files) and
// `npm run eval:nab -- --corpus DIR --results OUT` (any corpus, e.g. series nobody tuned on).

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AnomalyDetector, type AnomalyDetectorOptions } from '../src/detect/anomaly.ts';
import { normaliseNabTimestamp, windowsFromTimestampBounds, type NabFile } from '../src/detect/nab-scorer.ts';

export interface NabSeries {
  readonly file: NabFile;
  readonly group: string;
  readonly timestamps: readonly string[];
  readonly timestampsMs: Float64Array;
  readonly values: Float64Array;
}

export interface LoadedCorpus {
  readonly directory: string;
  readonly series: readonly NabSeries[];
  /** False when the corpus has no labels/combined_windows.json: results can be written, not scored. */
  readonly labelled: boolean;
}

/** NAB timestamps are UTC-less wall-clock strings; reading them as UTC keeps arithmetic stable. */
export function timestampToMs(timestamp: string): number {
  return Date.parse(`${normaliseNabTimestamp(timestamp).replace(' ', 'T')}Z`);
}

export function readCsv(path: string): { header: string[]; rows: string[][] } {
  const lines = readFileSync(path, 'utf8').split(/\r?\n/).filter((line) => line.length > 0);
  const [headerLine, ...rowLines] = lines;
  if (headerLine === undefined) throw new Error(`${path} is empty; a NAB data file starts with the header timestamp,value`);
  return { header: headerLine.split(',').map((cell) => cell.trim()), rows: rowLines.map((line) => line.split(',')) };
}

export function column(header: readonly string[], name: string, path: string): number {
  const index = header.indexOf(name);
  if (index === -1) throw new Error(`${path} has no column ${name} (header: ${header.join(',')})`);
  return index;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** "group/file.csv" for every data/<group>/<file>.csv, sorted. */
function listDataFiles(directory: string): string[] {
  const dataDirectory = join(directory, 'data');
  if (!isDirectory(directory)) throw new Error(`corpus directory ${directory} does not exist`);
  if (!isDirectory(dataDirectory)) {
    throw new Error(`corpus ${directory} has no data/ directory: NAB's layout is ${directory}/data/<group>/<file>.csv`);
  }
  const names = readdirSync(dataDirectory)
    .filter((group) => isDirectory(join(dataDirectory, group)))
    .flatMap((group) =>
      readdirSync(join(dataDirectory, group))
        .filter((file) => file.endsWith('.csv'))
        .map((file) => `${group}/${file}`),
    )
    .sort();
  if (names.length === 0) throw new Error(`corpus ${directory} has no ${dataDirectory}/<group>/<file>.csv files`);
  return names;
}

function readWindowBounds(path: string): Record<string, [string, string][]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path} is not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`${path} must be an object {"group/file.csv": [[start, end], ...]}`);
  }
  for (const [name, bounds] of Object.entries(parsed)) {
    const valid = Array.isArray(bounds) && bounds.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((b) => typeof b === 'string'));
    if (!valid) throw new Error(`${path}: the entry for ${name} must be a list of [start, end] timestamp pairs`);
  }
  return parsed as Record<string, [string, string][]>;
}

function loadSeries(directory: string, name: string, bounds: readonly [string, string][]): NabSeries {
  const path = join(directory, 'data', name);
  const { header, rows } = readCsv(path);
  const timestampColumn = column(header, 'timestamp', path);
  const valueColumn = column(header, 'value', path);
  const timestamps = rows.map((row) => (row[timestampColumn] ?? '').trim());
  const timestampsMs = Float64Array.from(timestamps, timestampToMs);
  const values = Float64Array.from(rows, (row) => Number(row[valueColumn]));
  for (let row = 0; row < rows.length; row += 1) {
    if (Number.isNaN(timestampsMs[row])) {
      throw new Error(`${path} line ${row + 2}: timestamp "${timestamps[row]}" is not YYYY-MM-DD HH:MM:SS`);
    }
    if (!Number.isFinite(values[row])) {
      throw new Error(`${path} line ${row + 2}: value "${rows[row]?.[valueColumn] ?? ''}" is not a number`);
    }
  }
  let windows;
  try {
    windows = windowsFromTimestampBounds(timestamps, bounds);
  } catch (error) {
    throw new Error(`labels/combined_windows.json, ${name}: ${(error as Error).message}`);
  }
  return {
    file: { name, rowCount: rows.length, windows },
    group: name.split('/')[0] ?? '',
    timestamps,
    timestampsMs,
    values,
  };
}

/**
 * Loads a corpus in NAB's layout. With labels/combined_windows.json, it and the data files must
 * name the same files; without it the series load unlabelled (no windows).
 */
export function loadCorpusDirectory(directory: string): LoadedCorpus {
  const names = listDataFiles(directory);
  const labelsPath = join(directory, 'labels', 'combined_windows.json');
  if (!existsSync(labelsPath)) {
    return { directory, labelled: false, series: names.map((name) => loadSeries(directory, name, [])) };
  }
  const windowBounds = readWindowBounds(labelsPath);
  const unlabelled = names.filter((name) => !(name in windowBounds));
  if (unlabelled.length > 0) {
    throw new Error(`${labelsPath} has no entry for ${unlabelled.join(', ')}; add "name": [] for a file without anomalies`);
  }
  const missing = Object.keys(windowBounds).filter((name) => !names.includes(name));
  if (missing.length > 0) throw new Error(`${labelsPath} names files that are not under ${join(directory, 'data')}: ${missing.join(', ')}`);
  return { directory, labelled: true, series: names.map((name) => loadSeries(directory, name, windowBounds[name] ?? [])) };
}

/** The row labels NAB writes in results files: 1 inside an anomaly window, else 0. */
export function rowLabels(file: NabFile): Uint8Array {
  const labels = new Uint8Array(file.rowCount);
  for (const window of file.windows) labels.fill(1, window.startIndex, window.endIndex + 1);
  return labels;
}

/** Writes OUT/<detector>/<group>/<detector>_<file>.csv with timestamp,value,anomaly_score,label; returns the path. */
export function writeResultsFile(outDirectory: string, detector: string, series: NabSeries, anomalyScores: ArrayLike<number>): string {
  const [group, base] = series.file.name.split('/');
  const directory = join(outDirectory, detector, group ?? '');
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `${detector}_${base ?? ''}`);
  const labels = rowLabels(series.file);
  const lines = ['timestamp,value,anomaly_score,label'];
  for (let row = 0; row < series.file.rowCount; row += 1) {
    lines.push(`${series.timestamps[row]},${series.values[row]},${anomalyScores[row]},${labels[row]}`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** The detector's scores on one series, streamed row by row (defaults: the shipped options). */
export function runDetector(series: NabSeries, options: Partial<AnomalyDetectorOptions> = {}): Float64Array {
  const detector = new AnomalyDetector(options);
  const scores = new Float64Array(series.values.length);
  for (let row = 0; row < series.values.length; row += 1) {
    scores[row] = detector.update(series.values[row]!, series.timestampsMs[row]!);
  }
  return scores;
}
