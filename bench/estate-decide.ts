/**
 * decide() alone on the 10,000-VM estate (src/drill/sim/estate.ts), in CPU time per call: the
 * controller's own input taken at its last pass, in the steady state and 40 s into a host's
 * failure, and decide() called on it again N times (it is pure: the same input, the same work).
 * CPU time rather than wall time, so that other work on the machine inflates it less than the
 * wall-clock figures of bench/estate.ts. Prints numbers; asserts nothing.
 *   node --import tsx bench/estate-decide.ts        (N=30 calls each; N=100 for more)
 */
import { Controller } from '../src/control/controller.ts';
import { decide, type DecideInput } from '../src/control/decide.ts';
import { generateEstate } from '../src/drill/sim/estate.ts';
import { MemoryJournal } from '../src/journal/memory.ts';
import { createRandom } from '../src/ports/random.ts';
import { Scheduler } from '../src/substrate/twin/scheduler.ts';
import { Twin } from '../src/substrate/twin/twin.ts';

function cpuMsPerCall(input: DecideInput, calls: number): number[] {
  const times: number[] = [];
  for (let call = 0; call < calls; call++) {
    const before = process.cpuUsage();
    decide(input);
    const spent = process.cpuUsage(before);
    times.push((spent.user + spent.system) / 1000);
  }
  return times.sort((a, b) => a - b);
}

function report(label: string, sorted: readonly number[]): void {
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
  console.log(`${label}: decide() p50 ${at(0.5)} ms CPU, p90 ${at(0.9)} ms, max ${sorted.at(-1)!.toFixed(1)} ms over ${sorted.length} calls`);
}

const calls = Number(process.env.N ?? '30');
if (!Number.isInteger(calls) || calls < 1) throw new Error(`bench/estate-decide.ts: N=${process.env.N} is not a whole number of calls; set N=30, for example`);
const blueprint = generateEstate();
const scheduler = new Scheduler();
let last: DecideInput | null = null;
const twin = new Twin(blueprint, scheduler, createRandom(1, 'estate-bench'));
const controller = new Controller({
  blueprint,
  substrate: twin,
  clock: scheduler,
  journal: new MemoryJournal(),
  // The controller's passes carry `target`; the recovery planner's simulated passes do not.
  decide: (input) => {
    if ('target' in input) last = input;
    return decide(input);
  },
});
twin.adopt(controller.plan);
controller.start();
scheduler.runUntil(60_000);
report('steady state (10,000 VMs running)', cpuMsPerCall(last!, calls));
twin.inject({ kind: 'host-crash', host: blueprint.hosts[0]!.name });
scheduler.runUntil(scheduler.nowMs() + 40_000);
report('40 s into a host failure (following its recovery)', cpuMsPerCall(last!, calls));
controller.stop();
