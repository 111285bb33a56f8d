/**
 * Drills for the failures nobody scripted (issue 13): a gray host, a flapping link, a clock step, a
 * failing snapshot store, a lost dependency, a crash-looping guest, a paused controller. Like the
 * other drills their targets come from the substrate's state at the fault (the busiest host, the
 * datastore most systems live on), never chosen to suit the outcome. They are kept out of SCENARIOS
 * (whose generic test holds every critical system to RPO 0 and every drill to a restart on the
 * struck host's loss): test/drill/unscripted.test.ts holds each to what it is about.
 */
import { hostLoad, type Fault } from '../../ports/index.ts';
import { tierOf, type Blueprint } from '../../model/index.ts';
import type { Random } from '../../ports/random.ts';
import { Attacker, MINUTE_S } from './attacker.ts';
import { attackTarget } from './cyber.ts';
import { busiestHosts, struckHost, type Scenario, type ScenarioContext, type ScenarioStep } from './scenario.ts';

/** A fault struck at `fromS` and repaired at `toS`. */
function window(fault: Fault, fromS: number, toS: number): ScenarioStep[] {
  return [
    { afterS: fromS, kind: 'inject', fault },
    { afterS: toS, kind: 'heal', fault },
  ];
}

/** The VM on the struck host a crash loop hits: its most important copy that is not continuous (that one would simply fail over). */
function loopingVm(context: ScenarioContext, host: string): string {
  const { blueprint } = context;
  const priority = (vm: string) => tierOf(blueprint, blueprint.services.find((service) => service.vms.some((candidate) => candidate.name === vm))!).priority;
  const candidates = context.faults
    .copies()
    .filter((copy) => copy.host === host && copy.role === 'primary')
    .map((copy) => copy.vm)
    .filter((vm) => priority(vm) > 0)
    .sort((a, b) => priority(a) - priority(b) || a.localeCompare(b));
  return candidates[0] ?? context.faults.copies().find((copy) => copy.role === 'primary')!.vm;
}

/** The datastore most VMs live on (ties: blueprint order). */
function busiestDatastore(blueprint: Blueprint): string {
  const counts = new Map(blueprint.datastores.map((store) => [store.name, 0]));
  for (const service of blueprint.services) counts.set(service.datastore, (counts.get(service.datastore) ?? 0) + service.vms.length);
  return [...counts].sort((a, b) => b[1] - a[1])[0]![0];
}

function seeded(context: ScenarioContext): Random {
  if (context.random === undefined) throw new Error("this drill needs the drill's seeded random stream");
  return context.random;
}

export const UNSCRIPTED_SCENARIOS: readonly Scenario[] = [
  {
    name: 'gray-host',
    summary: 'the busiest host runs at 5 % of its CPU and disk speed for 30 min: heartbeats fine, 95 % of its VMs\' probes fail; it is degraded and emptied',
    plan(context) {
      const host = struckHost(context);
      return {
        description: `host ${host} (the busiest) slows to 5 % of its speed for 30 minutes; its heartbeats stay fine`,
        steps: window({ kind: 'host-slowdown', host, speed: 0.05 }, 0, 1800),
      };
    },
  },
  {
    name: 'flapping-network',
    summary: "the busiest host's management link flaps (3 s down, 5 s up) for 10 min; its VMs keep serving",
    plan(context) {
      const host = struckHost(context);
      return {
        description: `host ${host} (the busiest) loses its management link for 3 s every 8 s, for 10 minutes`,
        steps: window({ kind: 'channel-flap', host, downS: 3, upS: 5 }, 0, 600),
      };
    },
  },
  {
    name: 'clock-step',
    summary: "the busiest host's clock steps 30 s ahead, then 60 s back (30 s behind), then is corrected after 15 min: no decision changes",
    plan(context) {
      const host = struckHost(context);
      const ahead: Fault = { kind: 'clock-step', host, stepMs: 30_000 };
      const back: Fault = { kind: 'clock-step', host, stepMs: -60_000 };
      return {
        description: `host ${host} (the busiest): its clock steps +30 s, 5 min later −60 s, and is corrected 15 min after the first step`,
        steps: [...window(ahead, 0, 900), ...window(back, 300, 900)],
      };
    },
  },
  {
    name: 'snapshot-failure',
    summary: 'the busiest datastore fills up: no snapshot of its VMs can be taken for 3 h (journaled and alerted at once); 1 h in, ransomware encrypts one of them and the restore must go back further',
    security: true,
    plan(context) {
      const datastore = busiestDatastore(context.blueprint);
      const { blueprint } = context;
      const random = seeded(context).fork('attack/snapshot-failure');
      const full = window({ kind: 'datastore-full', datastore }, 0, 3 * 3600);
      // The attacker comes in through a vendor's VPN into a system on the full datastore (not a continuous one: it fails over).
      const vendors = new Set(blueprint.networks.filter((network) => network.kind === 'vendor').map((network) => network.vendor));
      const attackable = blueprint.services.filter((service) => service.datastore === datastore && vendors.has(service.vendor) && tierOf(blueprint, service).mechanism !== 'failover');
      // A system snapshotted often (not the deferred tier's daily snapshot): the fall-back is the point.
      const frequent = attackable.filter((service) => tierOf(blueprint, service).snapshot.intervalS <= 3600);
      const candidates = frequent.length > 0 ? frequent : attackable;
      if (candidates.length === 0 && context.target === undefined) {
        return { description: `datastore ${datastore} (the busiest) is full for 3 h (no system on it to attack)`, steps: full };
      }
      const victim = attackTarget({ ...context, target: context.target ?? random.fork('system').pick(candidates).name }, random.fork('target'));
      const entryNetwork = blueprint.networks.find((network) => network.kind === 'vendor' && network.vendor === victim.vendor)!.name;
      const attacker = new Attacker({ entryNetwork, firstVm: victim.vm, lateral: false, maxFootholds: 1, exploitProbability: 0.35, scanFromEntry: false, variant: 'full' }, random.fork('attacker'));
      return {
        description: `datastore ${datastore} (the busiest) is full for 3 h; 5 min in, an intrusion into ${victim.vm} (${victim.service}), and its disk is encrypted 60 min in`,
        steps: [
          ...full,
          { afterS: 5 * MINUTE_S, kind: 'attack', label: 'intrusion', run: (runtime) => attacker.intrude(runtime) },
          { afterS: 60 * MINUTE_S, kind: 'attack', label: 'encryption', run: (runtime) => attacker.encrypt(runtime) },
        ],
        attacker,
        entry: entryNetwork,
        target: victim.vm,
      };
    },
  },
  {
    name: 'dependency-lost',
    summary: 'the busiest room and the two busiest hosts of the other rooms are lost: lower tiers are shed, and what depends on a shed system starts without it, at once',
    plan(context) {
      const { blueprint } = context;
      const ranked = busiestHosts(context);
      const roomOf = (host: string) => blueprint.hosts.find((candidate) => candidate.name === host)!.room;
      const room = roomOf(ranked[0]!);
      const others = ranked.filter((host) => roomOf(host) !== room).slice(0, 2);
      const roomHosts = blueprint.hosts.filter((host) => host.room === room).map((host) => host.name);
      const faults: Fault[] = [{ kind: 'room-failure', room }, ...others.map((host): Fault => ({ kind: 'host-crash', host }))];
      return {
        description: `server room ${room} and hosts ${others.join(', ')} are lost; repaired after 2 h`,
        steps: [
          ...faults.map((fault) => ({ afterS: 0, kind: 'inject' as const, fault })),
          ...faults.map((fault) => ({ afterS: 2 * 3600, kind: 'heal' as const, fault })),
          ...[...roomHosts, ...others].map((host) => ({ afterS: 2 * 3600 + 1, kind: 'power-on' as const, host })),
        ],
      };
    },
  },
  {
    name: 'crash-loop',
    summary: "a VM's guest crashes 20 s after every boot on the busiest host (a bad local device); elsewhere it runs: restarted with backoff, then moved",
    plan(context) {
      const host = struckHost(context);
      const vm = loopingVm(context, host);
      return {
        description: `${vm} crashes 20 s after each boot on ${host} (it was running there); repaired after 1 h`,
        steps: window({ kind: 'crash-loop', vm, host, afterS: 20 }, 0, 3600),
      };
    },
  },
  {
    name: 'controller-pause',
    summary: 'the leading controller stops for 25 s; 5 s in, the busiest host crashes; it resumes, catches up and recovers',
    plan(context) {
      const host = struckHost(context);
      const crash: Fault = { kind: 'host-crash', host };
      return {
        description: `the controller pauses for 25 s; host ${host} (the busiest) crashes 5 s into the pause; repaired after 2 h`,
        steps: [
          ...window({ kind: 'controller-pause' }, 0, 25),
          { afterS: 5, kind: 'inject', fault: crash },
          { afterS: 2 * 3600, kind: 'heal', fault: crash },
          { afterS: 2 * 3600 + 1, kind: 'power-on', host },
        ],
      };
    },
  },
];
