/** `npm run bench`: every benchmark of the project, printed as numbers. Nothing here asserts. */
import { benchApi } from './api.ts';
import { benchDetector } from './detector.ts';
import { benchEstate } from './estate.ts';
import { benchHostile } from './hostile.ts';
import { benchPlan } from './plan.ts';
import { benchRansomware } from './ransomware.ts';
import { benchSegmentation } from './segmentation.ts';
import { benchTwin, type BenchResult } from './twin.ts';

function print(group: string, results: readonly BenchResult[]): void {
  console.log(`\n== ${group}`);
  for (const result of results) {
    const value = result.value >= 100 ? result.value.toFixed(0) : result.value.toFixed(2);
    console.log(`${result.name}: ${value} ${result.unit}${result.note ? `  (${result.note})` : ''}`);
  }
}

print('twin and controller (bench/twin.ts)', await benchTwin());
print('capacity planner (bench/plan.ts)', await benchPlan());
print('the 10,000-VM estate: 500 hosts, 5 rooms (bench/estate.ts)', await benchEstate());
print('segmentation and attack paths (bench/segmentation.ts)', await benchSegmentation());
print('anomaly detector (bench/detector.ts)', await benchDetector());
print('ransomware detection: benign week and attacker variants (bench/ransomware.ts)', await benchRansomware());
print('control-plane API (bench/api.ts)', await benchApi());
print('hostile input against the running service (bench/hostile.ts)', await benchHostile());
