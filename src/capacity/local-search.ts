/**
 * The placement heuristic's local searches (placement.ts), one per objective, each bounded:
 * - fewest hosts: sweep the open hosts from the least loaded and move every copy of one to the
 *   other open hosts (with one ejection of a smaller copy where that makes room); keep the moves
 *   only if the host empties; stop after a sweep that empties none, or after `sweepLimit` sweeps;
 * - balanced: move a copy off the most loaded host while that lowers the maximum, at most
 *   `moveLimit` moves.
 * Every move keeps every hard rule (the STRICT level).
 */
import { type Packing, STRICT } from './packing.ts';

/** Copies tried for eviction per host when a copy fits nowhere directly. */
const EJECTION_CANDIDATES = 6;

/** The moves of one attempt to empty a host, in order, so they can be undone. */
type MoveLog = Array<[copy: number, from: number, to: number]>;

/**
 * The fewest-hosts local search: sweep the open hosts from the least loaded and try to move all
 * copies of each to the other open hosts; keep the moves if the host empties, undo them if not.
 */
export function consolidate(packing: Packing, sweepLimit: number): { moves: number; emptied: number } {
  let moves = 0;
  let emptied = 0;
  const closed = new Uint8Array(packing.hostCount);
  for (let sweep = 0; sweep < sweepLimit; sweep++) {
    let emptiedThisSweep = 0;
    const open: number[] = [];
    for (let host = 0; host < packing.hostCount; host++) if (packing.hostCopies[host]!.length > 0) open.push(host);
    open.sort((a, b) => packing.load(a) - packing.load(b) || a - b);
    for (const host of open) {
      if (packing.hostCopies[host]!.length === 0) continue;
      const copies = [...packing.hostCopies[host]!].sort((a, b) => packing.copySize[b]! - packing.copySize[a]! || a - b);
      closed[host] = 1;
      const log: MoveLog = [];
      let emptiedHost = true;
      for (const copy of copies) {
        const target = packing.bestFit(copy, STRICT, host, false, closed);
        if (target >= 0) move(packing, copy, host, target, log);
        else if (!packing.options.ejection || !ejectInto(packing, copy, host, closed, log)) {
          emptiedHost = false;
          break;
        }
      }
      if (emptiedHost) {
        moves += log.length;
        emptiedThisSweep++;
      } else {
        for (const [copy, from, to] of log.reverse()) {
          packing.remove(copy, to);
          packing.add(copy, from);
        }
        closed[host] = 0;
      }
    }
    emptied += emptiedThisSweep;
    if (emptiedThisSweep === 0) break;
  }
  return { moves, emptied };
}

function move(packing: Packing, copy: number, from: number, to: number, log: MoveLog): void {
  packing.remove(copy, from);
  packing.add(copy, to);
  log.push([copy, from, to]);
}

/**
 * Moves `copy` off `from` onto an open host where it breaks no rule but lacks room, after moving
 * one smaller copy from there to a third open host. Bounded: a few candidates per host.
 */
function ejectInto(packing: Packing, copy: number, from: number, closed: Uint8Array, log: MoveLog): boolean {
  const size = packing.copySize[copy]!;
  for (let host = 0; host < packing.hostCount; host++) {
    if (host === from || closed[host] === 1 || packing.hostCopies[host]!.length === 0) continue;
    packing.prepare(copy);
    if (!packing.fitsRules(copy, host, STRICT)) continue;
    const candidates = packing.hostCopies[host]!
      .filter((other) => packing.copySize[other]! <= size)
      .sort((a, b) => packing.copySize[b]! - packing.copySize[a]! || a - b)
      .slice(0, EJECTION_CANDIDATES);
    for (const other of candidates) {
      const target = packing.bestFit(other, STRICT, host, false, closed);
      if (target < 0) continue;
      move(packing, other, host, target, log);
      packing.prepare(copy);
      if (packing.fits(copy, host, STRICT)) {
        move(packing, copy, from, host, log);
        return true;
      }
      log.pop();
      packing.remove(other, target);
      packing.add(other, host);
    }
  }
  return false;
}

/** The balanced local search: move a copy off the most loaded host while that lowers the maximum. */
export function balance(packing: Packing, moveLimit: number): number {
  let moves = 0;
  for (; moves < moveLimit; moves++) {
    let worst = -1;
    for (let host = 0; host < packing.hostCount; host++) if (worst < 0 || packing.load(host) > packing.load(worst)) worst = host;
    if (worst < 0) break;
    const ceiling = packing.load(worst) - 1e-9;
    let bestCopy = -1;
    let bestHost = -1;
    let bestPeak = ceiling;
    for (const copy of [...packing.hostCopies[worst]!]) {
      packing.remove(copy, worst);
      const after = packing.load(worst);
      packing.prepare(copy);
      const vm = packing.rules.vms[copy >> 1]!;
      for (let host = 0; host < packing.hostCount; host++) {
        if (host === worst || !packing.fits(copy, host, STRICT) || packing.siblingOn(host)) continue;
        const peak = Math.max(after, packing.loadWith(host, vm.cores, vm.memoryGiB));
        if (peak < bestPeak - 1e-12) {
          bestPeak = peak;
          bestCopy = copy;
          bestHost = host;
        }
      }
      packing.add(copy, worst);
    }
    if (bestCopy < 0) break;
    packing.remove(bestCopy, worst);
    packing.add(bestCopy, bestHost);
  }
  return moves;
}
