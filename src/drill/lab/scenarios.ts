/**
 * The drills on real VMs: which scenarios the lab runs, which host each strikes (the lab's rule,
 * which calibrate.ts applies on the twin too), and the steps each strikes and repairs.
 *
 * Where the lab strikes the twin's own fault — an isolated host, a lost storage path — its steps
 * come from the twin's scenario definitions (src/drill/sim/scenarios.ts), planned on the host the
 * lab's rule chose. The others are the lab's: its host failure is a power cut the controller must
 * notice from silence (the twin's crashes the host and repairs it after two hours), a killed host
 * agent has no twin counterpart, and maintenance evacuates a host and releases it.
 */
import type { FaultInjector, InstanceObservation } from '../../ports/index.ts';
import type { Blueprint } from '../../model/index.ts';
import { findScenario, type ScenarioPlan, type ScenarioStep } from '../sim/scenarios.ts';
import type { LabFault } from './faults.ts';

export const REAL_SCENARIOS = ['host-failure', 'host-isolation', 'storage-path-loss', 'agent-failure', 'migrate', 'ransomware'] as const;
export type RealScenario = (typeof REAL_SCENARIOS)[number];

export const REAL_SCENARIO_SUMMARIES: Readonly<Record<RealScenario, string>> = {
  'host-failure': "the continuous service's primary host loses power (the power controller cuts it); powered on again after the recovery",
  'host-isolation': "the continuous service's primary host loses its uplink (management and VM network); the link returns after the restart",
  'storage-path-loss': "the continuous service's primary host loses its path to the datastore; restored after the recovery",
  'agent-failure': "the host agent of the continuous service's primary host is killed (the host and its VMs keep running)",
  migrate: 'maintenance: the busiest host without a continuous VM is evacuated by live migration, then released',
  ransomware: "an encryptor inside the first critical service's VM overwrites its documents; detected from the host's telemetry, quarantined, restored from an immutable snapshot, verified, cut over",
};

/**
 * Failures strike the host of the first continuous service's primary: the case the continuous
 * SLA is about. Maintenance takes the busiest host that runs no copy of a continuous VM: on the
 * lab a continuous copy has nowhere to migrate to (the other copy holds the other failure domain).
 */
export function targetHost(instances: readonly Pick<InstanceObservation, 'vm' | 'host' | 'role'>[], blueprint: Blueprint, scenario: RealScenario): string {
  const continuous = new Set(blueprint.services.filter((service) => service.tier === 'continuous').flatMap((service) => service.vms.map((vm) => vm.name)));
  if (scenario === 'migrate') {
    const blocked = new Set(instances.filter((instance) => continuous.has(instance.vm)).map((instance) => instance.host));
    const load = new Map<string, number>();
    for (const instance of instances) load.set(instance.host, (load.get(instance.host) ?? 0) + 1);
    const candidates = blueprint.hosts.map((host) => host.name).filter((host) => !blocked.has(host));
    candidates.sort((a, b) => (load.get(b) ?? 0) - (load.get(a) ?? 0) || a.localeCompare(b));
    return candidates[0] ?? blueprint.hosts[0]!.name;
  }
  const first = blueprint.services.find((service) => service.tier === 'continuous')?.vms[0]?.name;
  return instances.find((instance) => instance.vm === first && instance.role === 'primary')?.host ?? blueprint.hosts[0]!.name;
}

export type LabStep =
  | { readonly kind: 'inject' | 'heal'; readonly fault: LabFault }
  | { readonly kind: 'evacuate' | 'release'; readonly host: string };

/**
 * A real drill's steps. Real time is not compressed: the strike comes at the fault time, and the
 * repair once the controller has recovered, however long the scenario's repair time on the twin.
 */
export interface LabPlan {
  readonly strike: readonly LabStep[];
  readonly repair: readonly LabStep[];
}

/** The steps of a real scenario on the host the lab's rule chose. */
export function realDrillPlan(scenario: RealScenario, context: { readonly blueprint: Blueprint; readonly faults: FaultInjector<LabFault>; readonly host: string }): LabPlan {
  const host = context.host;
  switch (scenario) {
    case 'host-isolation':
    case 'storage-path-loss':
      return fromTwinScenario(findScenario(scenario)!.plan(context));
    case 'host-failure':
      return { strike: [{ kind: 'inject', fault: { kind: 'host-power-loss', host } }], repair: [] };
    case 'agent-failure':
      return { strike: [{ kind: 'inject', fault: { kind: 'agent-failure', host } }], repair: [] };
    case 'migrate':
      return { strike: [{ kind: 'evacuate', host }], repair: [{ kind: 'release', host }] };
    case 'ransomware':
      // The attack is not a host fault: the ransomware drill (ransomware.ts) strikes inside the guest.
      return { strike: [], repair: [] };
  }
}

/**
 * A twin scenario's plan as the lab runs it: its steps at the fault time strike, the later ones
 * repair. Its power-on steps are left out: after every repair the lab's operator powers the host
 * on if the controller fenced it, which is what they ask for.
 */
function fromTwinScenario(plan: ScenarioPlan): LabPlan {
  const steps = [...plan.steps].sort((a, b) => a.afterS - b.afterS);
  return {
    strike: steps.filter((step) => step.afterS === 0).map(labStep),
    repair: steps.filter((step) => step.afterS > 0 && step.kind !== 'power-on').map(labStep),
  };
}

function labStep(step: ScenarioStep): LabStep {
  if ((step.kind === 'inject' || step.kind === 'heal') && step.fault !== undefined) return { kind: step.kind, fault: step.fault };
  if ((step.kind === 'evacuate' || step.kind === 'release') && step.host !== undefined) return { kind: step.kind, host: step.host };
  throw new Error(`the lab cannot run a ${step.kind} step`);
}
