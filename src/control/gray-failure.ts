/**
 * Gray failure: a host whose heartbeats are fine while the copies it runs keep failing their health
 * checks, or answer late (a slow disk, a throttled CPU). No single copy proves it — a guest can be
 * sick on its own — so the verdict takes evidence across the host's copies over a window, and
 * checks that the rest of the estate is well (a shared cause, a datastore or the network, is not
 * the host's). With hysteresis: once degraded, a host takes nothing new for a probation that
 * doubles each time it is degraded again, and it is trusted again only after that probation, when
 * whatever still runs on it is well. Pure: the controller applies the verdicts.
 */
import type { CopyHealth, HealthHistory } from './health-history.ts';
import type { HostStatus } from './state.ts';
import type { ControllerTimings } from './timings.ts';

/** What a verdict rests on: journaled with it, shown in the drill report. */
export interface GrayEvidence {
  readonly windowS: number;
  /** Copies running on the host, watched long enough to judge. */
  readonly copies: number;
  readonly failing: readonly { readonly vm: string; readonly role: string; readonly unhealthyShare: number; readonly latencyMs: number | null }[];
  readonly failingShare: number;
  /** The same share on every other host that is up: low, or the cause is not this host. */
  readonly estateFailingShare: number;
}

export interface GrayVerdict {
  readonly sinceMs: number;
  /** It takes nothing new before then. */
  readonly untilMs: number;
  /** How many times it has been degraded (the probation doubles with each). */
  readonly episodes: number;
  readonly evidence: GrayEvidence;
}

export interface GrayJudgement {
  readonly degrade: readonly { readonly host: string; readonly verdict: GrayVerdict }[];
  readonly recover: readonly { readonly host: string; readonly evidence: GrayEvidence; readonly degradedForMs: number; readonly early: boolean }[];
}

/** The least a copy must have run in the window before its health counts as evidence. */
const MIN_WATCHED_MS = 5_000;

export class GrayFailureJudge {
  readonly degraded = new Map<string, GrayVerdict>();
  /** The shared cause found by the last judge(), if any (see sharedFailure). */
  shared: string | null = null;
  private readonly episodes = new Map<string, number>();

  constructor(private readonly timings: ControllerTimings) {}

  /** Evidence per host now; `statusOf` and `datastoreUp` are the controller's view. */
  evidence(history: HealthHistory, statusOf: (host: string) => HostStatus | undefined, datastoreUp: (name: string) => boolean, nowMs: number, suspects = this.suspects(history, nowMs)): Map<string, GrayEvidence> {
    const { grayWindowMs } = this.timings;
    const perHost = new Map<string, { copies: number; failing: GrayEvidence['failing'][number][] }>();
    for (const [id, copy] of history.copies) {
      if (!copy.running || copy.runningSinceMs === null || statusOf(copy.host) !== 'up' || !datastoreUp(copy.datastore)) continue;
      const fromMs = Math.max(nowMs - grayWindowMs, copy.runningSinceMs);
      if (nowMs - fromMs < MIN_WATCHED_MS) continue;
      let entry = perHost.get(copy.host);
      if (entry === undefined) perHost.set(copy.host, (entry = { copies: 0, failing: [] }));
      entry.copies++;
      if (suspects !== null && !suspects.has(id)) continue;
      const failing = this.failing(history, id, copy, fromMs, nowMs);
      if (failing !== null) entry.failing.push(failing);
    }
    let totalCopies = 0;
    let totalFailing = 0;
    for (const entry of perHost.values()) {
      totalCopies += entry.copies;
      totalFailing += entry.failing.length;
    }
    const result = new Map<string, GrayEvidence>();
    for (const [host, entry] of perHost) {
      const otherCopies = totalCopies - entry.copies;
      result.set(host, {
        windowS: grayWindowMs / 1000,
        copies: entry.copies,
        failing: entry.failing.sort((a, b) => a.vm.localeCompare(b.vm)),
        failingShare: entry.copies === 0 ? 0 : Math.round((entry.failing.length / entry.copies) * 1000) / 1000,
        estateFailingShare: otherCopies === 0 ? 0 : Math.round(((totalFailing - entry.failing.length) / otherCopies) * 1000) / 1000,
      });
    }
    return result;
  }

  /**
   * Only a copy sick at some time in the window can be failing; any other is counted, not weighed (a
   * large estate has thousands). Null: every copy is weighed (with a failing share of zero, all fail).
   */
  private suspects(history: HealthHistory, nowMs: number): ReadonlySet<string> | null {
    return this.timings.grayFailingShare > 0 ? history.sickSince(nowMs - this.timings.grayWindowMs) : null;
  }

  /** What a watched copy (since `fromMs`) shows against its host, or null when it is well. */
  private failing(history: HealthHistory, id: string, copy: CopyHealth, fromMs: number, nowMs: number): GrayEvidence['failing'][number] | null {
    const { grayWindowMs, grayFailingShare, grayLatencyMs } = this.timings;
    const unhealthyShare = history.unhealthyMs(id, fromMs, nowMs) / (nowMs - fromMs);
    // Slow answers count once they have lasted as long as failures must (one slow probe is not a trend).
    const slow = copy.slowSinceMs !== null && nowMs - copy.slowSinceMs >= grayFailingShare * grayWindowMs && (copy.latencyMs ?? 0) >= grayLatencyMs;
    if (unhealthyShare < grayFailingShare && !slow) return null;
    return { vm: copy.vm, role: copy.role, unhealthyShare: Math.round(unhealthyShare * 1000) / 1000, latencyMs: copy.latencyMs ?? null };
  }

  /**
   * Whether judge() would find nothing, known from the suspects alone: no host degraded, and the
   * copies failing are on one host at most, fewer than grayMinCopies (no shared cause, no verdict).
   */
  private quiet(history: HealthHistory, suspects: ReadonlySet<string> | null, statusOf: (host: string) => HostStatus | undefined, datastoreUp: (name: string) => boolean, nowMs: number): boolean {
    if (suspects === null || this.degraded.size > 0) return false;
    const failingOn = new Map<string, number>();
    for (const id of suspects) {
      const copy = history.copies.get(id);
      if (copy === undefined || !copy.running || copy.runningSinceMs === null || statusOf(copy.host) !== 'up' || !datastoreUp(copy.datastore)) continue;
      const fromMs = Math.max(nowMs - this.timings.grayWindowMs, copy.runningSinceMs);
      if (nowMs - fromMs < MIN_WATCHED_MS || this.failing(history, id, copy, fromMs, nowMs) === null) continue;
      failingOn.set(copy.host, (failingOn.get(copy.host) ?? 0) + 1);
      if (failingOn.size > 1 || failingOn.get(copy.host)! >= this.timings.grayMinCopies) return false;
    }
    return true;
  }

  /**
   * Copies failing across the estate at once: on two hosts or more, and beyond grayEstateShareMax
   * even without the worst host. A shared cause, not a host's, nor a guest's.
   */
  sharedFailure(evidence: ReadonlyMap<string, GrayEvidence>): string | null {
    let worst: GrayEvidence | null = null;
    let hostsFailing = 0;
    let failing = 0;
    for (const found of evidence.values()) {
      failing += found.failing.length;
      if (found.failing.length > 0) hostsFailing++;
      if (worst === null || found.failing.length > worst.failing.length) worst = found;
    }
    if (worst === null || hostsFailing < 2 || worst.estateFailingShare <= this.timings.grayEstateShareMax) return null;
    return `${failing} copies on ${hostsFailing} hosts fail their health checks at once (${Math.round(worst.estateFailingShare * 100)} % beyond the worst host): a shared cause`;
  }

  /** Which hosts become degraded now, and which are trusted again; the caller applies both (apply()). */
  judge(history: HealthHistory, statusOf: (host: string) => HostStatus | undefined, datastoreUp: (name: string) => boolean, nowMs: number, capacityLost = false): GrayJudgement {
    const { grayMinCopies, grayFailingShare, grayEstateShareMax, grayProbationMs, grayProbationMaxMs } = this.timings;
    const suspects = this.suspects(history, nowMs);
    if (this.quiet(history, suspects, statusOf, datastoreUp, nowMs)) {
      this.shared = null;
      return { degrade: [], recover: [] };
    }
    const all = this.evidence(history, statusOf, datastoreUp, nowMs, suspects);
    this.shared = this.sharedFailure(all);
    // While the estate has lost a host, slowness alone takes no host out (nor keeps one out): only
    // copies that fail. A slow datastore behind the few hosts left once looked like a slow host and
    // kept every critical VM down for 13 minutes (storm seed 370138022).
    const evidence = capacityLost ? failingOnly(all, grayFailingShare) : all;
    const degrade: { host: string; verdict: GrayVerdict }[] = [];
    const recover: { host: string; evidence: GrayEvidence; degradedForMs: number; early: boolean }[] = [];
    for (const [host, found] of [...evidence].sort((a, b) => a[0].localeCompare(b[0]))) {
      if (this.degraded.has(host)) continue;
      if (found.failing.length < grayMinCopies || found.failingShare < grayFailingShare || found.estateFailingShare > grayEstateShareMax) continue;
      const episodes = (this.episodes.get(host) ?? 0) + 1;
      const probationMs = Math.min(grayProbationMaxMs, grayProbationMs * 2 ** (episodes - 1));
      degrade.push({ host, verdict: { sinceMs: nowMs, untilMs: nowMs + probationMs, episodes, evidence: found } });
    }
    for (const [host, verdict] of [...this.degraded].sort((a, b) => a[0].localeCompare(b[0]))) {
      // While the estate has lost a host, a probation does not keep a host that fails nothing out:
      // keeping critical services down to honour it is the wrong trade (a storm found a rack lost
      // beside a host whose slowdown had healed: no critical VM ran, seed 177872246).
      if (nowMs < verdict.untilMs && !capacityLost) continue;
      const found = evidence.get(host) ?? { windowS: this.timings.grayWindowMs / 1000, copies: 0, failing: [], failingShare: 0, estateFailingShare: 0 };
      // Whatever still runs there must be well before it takes anything again.
      if (found.failing.length > 0) continue;
      recover.push({ host, evidence: found, degradedForMs: nowMs - verdict.sinceMs, early: nowMs < verdict.untilMs });
    }
    return { degrade, recover };
  }

  apply(judgement: GrayJudgement): void {
    for (const { host, verdict } of judgement.degrade) {
      this.degraded.set(host, verdict);
      this.episodes.set(host, verdict.episodes);
    }
    for (const { host } of judgement.recover) this.degraded.delete(host);
  }

  /**
   * The next moment a verdict may change with nothing reported: a probation's end, or, once it is
   * over while copies there still fail, a look every half window (failures age out of it).
   */
  nextDeadlineMs(nowMs: number): number | null {
    let next: number | null = null;
    for (const verdict of this.degraded.values()) {
      const atMs = verdict.untilMs > nowMs ? verdict.untilMs : nowMs + this.timings.grayWindowMs / 2;
      if (next === null || atMs < next) next = atMs;
    }
    return next;
  }
}

/** The evidence with only the copies that fail their health checks (slow answers left out). */
function failingOnly(evidence: ReadonlyMap<string, GrayEvidence>, failingShare: number): Map<string, GrayEvidence> {
  const result = new Map<string, GrayEvidence>();
  for (const [host, found] of evidence) {
    const failing = found.failing.filter((copy) => copy.unhealthyShare >= failingShare);
    result.set(host, { ...found, failing, failingShare: found.copies === 0 ? 0 : Math.round((failing.length / found.copies) * 1000) / 1000 });
  }
  return result;
}
