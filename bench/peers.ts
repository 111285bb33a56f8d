/**
 * The race, in one run (`npm run bench:peers`; needs root; not in CI): the same guest killed the
 * same way on a real Pacemaker cluster and on Tomaranai's lab, one after the other on this machine.
 *
 * - Pacemaker: `../shared/peers/pacemaker/` (3 Corosync 3 + Pacemaker 2.1 nodes in network
 *   namespaces, the guest as an OCF resource, a fence agent), copied to a scratch folder so the
 *   shared tree stays read-only, run twice: Corosync's default timing and token 1000 ms. Each run
 *   kills the guest's node (SIGKILL of everything in its namespace) and times kill → `/health`.
 * - Tomaranai: `blueprints/lab.yaml` on real QEMU guests, the `host-failure` drill (the power
 *   controller SIGKILLs everything in the host's namespace), timing kill → answering with its data,
 *   for the continuous service (hot standby promoted) and the critical ones (cold restart).
 *
 * Both use Tomaranai's guest image (`.lab/image`, built by `npm run vm:image`). Prints per system:
 * median and max over RUNS kills, and the ratios against Pacemaker tuned. Usage:
 *   sudo npm run bench:peers [-- --runs 5]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runRealDrill } from '../src/drill/lab/real.ts';
import { loadBlueprint } from '../src/model/index.ts';
import { LabLayout } from '../src/substrate/qemu/lab.ts';
import { labDown, labUp } from '../src/substrate/qemu/power.ts';

const ROOT = resolve(new URL('..', import.meta.url).pathname);
const PEERS = resolve(ROOT, '../shared/peers');
const IMAGE = join(ROOT, '.lab/image');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

interface Series {
  readonly label: string;
  readonly seconds: number[];
  readonly note: string;
}

function fail(message: string): never {
  process.stderr.write(`bench:peers: ${message}\n`);
  process.exit(1);
}

/** The Pacemaker lab at one timing: set up, RUNS kills, torn down; kill → /health seconds per run. */
function pacemaker(scratch: string, timing: 'default' | 'tuned'): Series {
  const lab = join(scratch, 'pacemaker');
  const env = { ...process.env, PL_TIMING: timing, PL_STATE: join(scratch, `state-${timing}`), GUEST_IMAGE_DIR: IMAGE };
  const step = (script: string, args: string[] = []) => {
    process.stderr.write(`== bench:peers: pacemaker (${timing}) ${script} ${args.join(' ')}\n`);
    const result = spawnSync('bash', [join(lab, script), ...args], { env, stdio: ['ignore', 'inherit', 'inherit'], timeout: 20 * 60_000 });
    if (result.status !== 0) fail(`${script} (${timing}) exited ${result.status ?? result.signal}`);
  };
  try {
    step('setup.sh');
    step('kill-and-measure.sh', [String(RUNS)]);
    const results = readFileSync(join(env.PL_STATE, 'results.txt'), 'utf8');
    const seconds = [...results.matchAll(/: (\d+\.\d+) s from kill to \/health/g)].map((match) => Number(match[1]));
    const token = /token=(\d+)ms consensus=(\d+)ms/.exec(results);
    return { label: `Pacemaker, Corosync ${timing === 'default' ? 'default' : 'tuned'} timing`, seconds, note: token ? `token ${token[1]} ms, consensus ${token[2]} ms` : '' };
  } finally {
    spawnSync('bash', [join(lab, 'teardown.sh')], { env, stdio: 'inherit' });
  }
}

/** Tomaranai's lab: RUNS host-failure drills; kill → back with its data, continuous and critical. */
async function tomaranai(): Promise<Series[]> {
  const file = join(ROOT, 'blueprints/lab.yaml');
  const loaded = loadBlueprint(readFileSync(file, 'utf8'));
  if (!loaded.ok) fail('blueprints/lab.yaml does not load');
  const blueprint = loaded.blueprint;
  const layout = new LabLayout();
  const continuous: number[] = [];
  const critical: number[] = [];
  await labDown({ layout });
  await labUp({ layout, blueprint, blueprintFile: file });
  try {
    for (let run = 1; run <= RUNS; run++) {
      const drill = await runRealDrill({ blueprint, blueprintFile: file, scenario: 'host-failure', layout });
      const hit = drill.report.services.filter((service) => service.affected && service.rtoMeasuredS !== null);
      const ehr = hit.find((service) => service.tier === 'continuous');
      const crit = hit.filter((service) => service.tier === 'critical').map((service) => service.rtoMeasuredS!);
      if (ehr !== undefined) continuous.push(ehr.rtoMeasuredS!);
      if (crit.length > 0) critical.push(Math.max(...crit));
      process.stderr.write(`== bench:peers: tomaranai run ${run}: continuous ${ehr?.rtoMeasuredS ?? '-'} s, critical ${crit.length > 0 ? Math.max(...crit) : '-'} s (load ${loadavg()[0]!.toFixed(1)})\n`);
    }
  } finally {
    await labDown({ layout });
  }
  return [
    { label: 'Tomaranai, continuous tier (hot standby)', seconds: continuous, note: 'back with its data' },
    { label: 'Tomaranai, critical tier (cold restart)', seconds: critical, note: 'the slowest critical VM on the cut host' },
  ];
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) fail('needs root (network namespaces, bridges, QEMU taps)');
  if (!existsSync(join(PEERS, 'pacemaker/setup.sh'))) fail(`no Pacemaker peer lab at ${PEERS}/pacemaker`);
  if (!existsSync(join(IMAGE, 'image.json'))) fail('no guest image: run `npm run vm:image` first');
  const scratch = mkdtempSync(join(tmpdir(), 'tomaranai-peers-'));
  // A copy, so the shared tree stays read-only; its guest builder is replaced by ours (the same guest).
  cpSync(PEERS, scratch, { recursive: true, filter: (source) => !source.includes('/.state') && !source.includes('/.image') });
  writeFileSync(join(scratch, 'guest/vm-image.sh'), '#!/usr/bin/env bash\n# bench:peers: Tomaranai\'s own image (GUEST_IMAGE_DIR), built by scripts/vm-image.sh.\ntest -f "$GUEST_IMAGE_DIR/image.json"\n');
  const started = Date.now();
  const series: Series[] = [];
  try {
    series.push(pacemaker(scratch, 'default'));
    series.push(pacemaker(scratch, 'tuned'));
    series.push(...(await tomaranai()));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const cpu = execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: 'utf8' }).trim();
  console.log(`\nkill → service answering, ${RUNS} kills each, same guest, same kill (SIGKILL of the host's namespace); ${cpu}, ${Math.round((Date.now() - started) / 60_000)} min`);
  console.log(`${'system'.padEnd(46)} ${'median'.padStart(8)} ${'max'.padStart(8)}  runs  note`);
  for (const entry of series) console.log(`${entry.label.padEnd(46)} ${`${median(entry.seconds).toFixed(2)} s`.padStart(8)} ${`${Math.max(...entry.seconds).toFixed(2)} s`.padStart(8)}  ${String(entry.seconds.length).padStart(4)}  ${entry.note}`);
  const tuned = median(series[1]!.seconds);
  const [continuous, critical] = [median(series[2]!.seconds), median(series[3]!.seconds)];
  console.log(`ratio continuous / Pacemaker tuned: ${(continuous / tuned).toFixed(2)} (goal ≤ 0.25); critical / Pacemaker tuned: ${(critical / tuned).toFixed(2)} (goal ≤ 0.50)`);
}

await main();
