// Throughput of the streaming anomaly detector on one core, in metric points per second.
// The input is synthetic but shaped like a real metric (daily cycle, noise, rare spikes and a
// level shift) so that every code path runs; it comes from a seeded generator so runs compare.
//
// Run: node --import tsx bench/detector.ts

import { pathToFileURL } from 'node:url';
import { AnomalyDetector } from '../src/detect/anomaly.ts';
import { seededRandom } from '../src/plan/generate.ts';

export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

const BENCH_SEED = 0x5eed_2024;
const POINT_COUNT = 3_000_000;
const SERIES_LENGTH_POINTS = 20_000;
const STEP_MS = 300_000;
const START_MS = Date.UTC(2024, 0, 1);

function syntheticSeries(seed: number, length: number): { values: Float64Array; timestampsMs: Float64Array } {
  const random = seededRandom(seed);
  const values = new Float64Array(length);
  const timestampsMs = new Float64Array(length);
  const pointsPerDay = 86_400_000 / STEP_MS;
  for (let index = 0; index < length; index += 1) {
    const daily = 10 * Math.sin((2 * Math.PI * index) / pointsPerDay);
    const shift = index > length * 0.7 ? 15 : 0;
    const spike = random() < 0.001 ? 40 * random() : 0;
    values[index] = 50 + daily + shift + spike + 3 * (random() - 0.5);
    timestampsMs[index] = START_MS + index * STEP_MS;
  }
  return { values, timestampsMs };
}

function measure(withTimestamps: boolean): number {
  const { values, timestampsMs } = syntheticSeries(BENCH_SEED, SERIES_LENGTH_POINTS);
  let checksum = 0;
  let processed = 0;
  const startMs = performance.now();
  // Fresh detectors every series so that warm-up, learning and steady state all count.
  while (processed < POINT_COUNT) {
    const detector = new AnomalyDetector();
    for (let index = 0; index < SERIES_LENGTH_POINTS; index += 1) {
      checksum += withTimestamps ? detector.update(values[index]!, timestampsMs[index]!) : detector.update(values[index]!);
    }
    processed += SERIES_LENGTH_POINTS;
  }
  const elapsedS = (performance.now() - startMs) / 1000;
  if (!Number.isFinite(checksum)) throw new Error('detector produced a non-finite score');
  return processed / elapsedS;
}

export async function benchDetector(): Promise<BenchResult[]> {
  // A short warm-up lets the JIT settle before the measured runs.
  const { values } = syntheticSeries(BENCH_SEED + 1, 50_000);
  const warmup = new AnomalyDetector();
  for (const value of values) warmup.update(value);
  return [
    { name: 'anomaly detector, value + timestamp', value: measure(true), unit: 'points/s' },
    { name: 'anomaly detector, value only', value: measure(false), unit: 'points/s' },
  ];
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  for (const result of await benchDetector()) {
    console.log(`${result.name}: ${(result.value / 1e6).toFixed(2)} M ${result.unit}`);
  }
}
