/**
 * Drill scenarios: which fault hits what, when, and how it is repaired. Targets are chosen from
 * the substrate's state at the moment of the fault (the busiest host, rack or room), never to suit
 * the outcome. They strike through the FaultInjector port, so the real-VM lab runs the one-host
 * scenarios it can strike from these same definitions (src/drill/lab/real.ts).
 */
import { hostLoad, type Fault } from '../../ports/index.ts';
import { CYBER_SCENARIOS } from './cyber.ts';
import { UNSCRIPTED_SCENARIOS } from './unscripted.ts';
import { busiestHosts, struckHost, type Scenario, type ScenarioContext, type ScenarioStep } from './scenario.ts';
export type { Scenario, ScenarioContext, ScenarioPlan, ScenarioStep } from './scenario.ts';

const HOUR_S = 3600;

function busiestGroup(context: ScenarioContext, key: 'rack' | 'room'): string {
  const load = hostLoad(context.blueprint, context.faults.copies());
  const totals = new Map<string, number>();
  for (const host of context.blueprint.hosts) {
    totals.set(host[key], (totals.get(host[key]) ?? 0) + (load.get(host.name)?.vcpu ?? 0));
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
}

function hostsOf(context: ScenarioContext, key: 'rack' | 'room', value: string): string[] {
  return context.blueprint.hosts.filter((host) => host[key] === value).map((host) => host.name);
}

function repairAndPowerOn(afterS: number, fault: Fault, hosts: string[]): ScenarioStep[] {
  return [{ afterS, kind: 'heal', fault }, ...hosts.map((host) => ({ afterS: afterS + 1, kind: 'power-on' as const, host }))];
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'host-failure',
    summary: 'the busiest host crashes; repaired and powered on after 2 h',
    plan(context) {
      const host = struckHost(context);
      const fault: Fault = { kind: 'host-crash', host };
      return {
        description: `host ${host} (the busiest) crashes`,
        steps: [{ afterS: 0, kind: 'inject', fault }, ...repairAndPowerOn(2 * HOUR_S, fault, [host])],
      };
    },
  },
  {
    name: 'host-isolation',
    summary: "the busiest host's management network is cut for 10 min; the host and its VMs keep running",
    plan(context) {
      const host = struckHost(context);
      const fault: Fault = { kind: 'host-isolation', host };
      return {
        description: `host ${host} (the busiest) loses its management network for 10 minutes`,
        steps: [{ afterS: 0, kind: 'inject', fault }, { afterS: 600, kind: 'heal', fault }],
      };
    },
  },
  {
    name: 'host-network-loss',
    summary: 'the busiest host loses every network (management and its VMs\' service networks) for 10 min; its storage path stays',
    plan(context) {
      const host = struckHost(context);
      const fault: Fault = { kind: 'host-network-loss', host };
      return {
        description: `host ${host} (the busiest) loses its management and service networks for 10 minutes`,
        // Fenced by the isolation response once its VMs stop answering: powered on after the repair.
        steps: [{ afterS: 0, kind: 'inject', fault }, { afterS: 600, kind: 'heal', fault }, { afterS: 601, kind: 'power-on', host }],
      };
    },
  },
  {
    name: 'storage-path-loss',
    summary: 'the busiest host loses its path to storage for 10 min',
    plan(context) {
      const host = struckHost(context);
      const fault: Fault = { kind: 'storage-path-loss', host };
      return {
        description: `host ${host} (the busiest) loses its storage path for 10 minutes`,
        steps: [{ afterS: 0, kind: 'inject', fault }, { afterS: 600, kind: 'heal', fault }],
      };
    },
  },
  {
    name: 'rack-failure',
    summary: 'the busiest rack loses power; restored after 2 h',
    plan(context) {
      const rack = busiestGroup(context, 'rack');
      const fault: Fault = { kind: 'rack-failure', rack };
      return {
        description: `rack ${rack} (the busiest) loses power`,
        steps: [{ afterS: 0, kind: 'inject', fault }, ...repairAndPowerOn(2 * HOUR_S, fault, hostsOf(context, 'rack', rack))],
      };
    },
  },
  {
    name: 'double-host-failure',
    summary: 'the two busiest hosts in different failure domains crash at once; repaired after 2 h',
    plan(context) {
      const ranked = busiestHosts(context);
      const first = ranked[0]!;
      const firstHost = context.blueprint.hosts.find((host) => host.name === first)!;
      const multiRoom = context.blueprint.rooms.length > 1;
      const second =
        ranked.find((name) => {
          const host = context.blueprint.hosts.find((candidate) => candidate.name === name)!;
          return multiRoom ? host.room !== firstHost.room : host.rack !== firstHost.rack;
        }) ?? ranked[1]!;
      const faults: Fault[] = [
        { kind: 'host-crash', host: first },
        { kind: 'host-crash', host: second },
      ];
      return {
        description: `hosts ${first} and ${second} (the busiest of two failure domains) crash together`,
        steps: [
          ...faults.map((fault) => ({ afterS: 0, kind: 'inject' as const, fault })),
          ...faults.flatMap((fault) => repairAndPowerOn(2 * HOUR_S, fault, [fault.kind === 'host-crash' ? fault.host : ''])),
        ],
      };
    },
  },
  {
    name: 'generator-power',
    summary: 'the grid is lost (every feed without a generator fails): the hospital runs on the generator-backed hosts; restored after 8 h',
    plan(context) {
      const grid = context.blueprint.powerFeeds.filter((feed) => !feed.generator);
      const faults: Fault[] = grid.map((feed) => ({ kind: 'power-feed-failure', feed: feed.name }));
      const hosts = context.blueprint.hosts.filter((host) => grid.some((feed) => feed.name === host.powerFeed)).map((host) => host.name);
      return {
        description: `grid power lost: feeds ${grid.map((feed) => feed.name).join(', ')} fail, ${hosts.length} hosts go dark, the generator-backed hosts carry the hospital`,
        steps: [
          ...faults.map((fault) => ({ afterS: 0, kind: 'inject' as const, fault })),
          ...faults.map((fault) => ({ afterS: 8 * HOUR_S, kind: 'heal' as const, fault })),
          ...hosts.map((host) => ({ afterS: 8 * HOUR_S + 1, kind: 'power-on' as const, host })),
        ],
      };
    },
  },
  {
    name: 'room-failure',
    summary: 'a whole server room with its storage copy is lost; restored after 4 h',
    plan(context) {
      const room = busiestGroup(context, 'room');
      const fault: Fault = { kind: 'room-failure', room };
      return {
        description: `server room ${room} (the busiest), its hosts and its datastore are lost`,
        steps: [{ afterS: 0, kind: 'inject', fault }, ...repairAndPowerOn(4 * HOUR_S, fault, hostsOf(context, 'room', room))],
      };
    },
  },
];

/**
 * Every scenario, cyber drills included. The cyber drills are kept out of SCENARIOS for now
 * because the generic drill test there holds critical systems to RPO 0, which no restore after
 * ransomware can meet (replication copies the encryption too; the recovery point is the last
 * clean snapshot): test/drill/ransomware.test.ts holds them to their snapshot interval instead.
 */
export const ALL_SCENARIOS: readonly Scenario[] = [...SCENARIOS, ...CYBER_SCENARIOS, ...UNSCRIPTED_SCENARIOS];

export function findScenario(name: string): Scenario | undefined {
  return ALL_SCENARIOS.find((scenario) => scenario.name === name);
}

/** A scenario of given faults, struck at once and not repaired: a plan's failure case, replayed. */
export function faultsScenario(name: string, description: string, faults: readonly Fault[]): Scenario {
  return {
    name,
    summary: description,
    plan: () => ({ description, steps: faults.map((fault) => ({ afterS: 0, kind: 'inject' as const, fault })) }),
  };
}
