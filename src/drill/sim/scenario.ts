/**
 * The shape of a drill scenario: its steps (faults, repairs, attacker moves) planned from the state
 * of the substrate it strikes, through the FaultInjector port — the twin, or the real-VM lab.
 */
import { hostLoad, type Fault, type FaultInjector } from '../../ports/index.ts';
import type { Random } from '../../ports/random.ts';
import type { Blueprint } from '../../model/index.ts';
import type { Attacker, AttackRuntime } from './attacker.ts';
import type { AttackVariant } from './variants.ts';

export interface ScenarioStep {
  /** Seconds after the fault time. */
  readonly afterS: number;
  readonly kind: 'inject' | 'heal' | 'power-on' | 'attack' | 'evacuate' | 'release';
  readonly fault?: Fault;
  readonly host?: string;
  /** An attacker's move (cyber drills): what it does is the scenario's, run at the step's time. */
  readonly label?: string;
  readonly run?: (runtime: AttackRuntime) => void;
}

export interface ScenarioPlan {
  readonly description: string;
  readonly steps: readonly ScenarioStep[];
  /** Cyber drills: the attacker, where it came in, and the VM it went for first. */
  readonly attacker?: Attacker;
  readonly entry?: string;
  readonly target?: string;
}

export interface ScenarioContext {
  readonly blueprint: Blueprint;
  /** Where the scenario's faults strike, and what it aims them by. */
  readonly faults: FaultInjector;
  /**
   * The host a one-host scenario strikes, when the caller chose it by its own rule (the real-VM
   * lab strikes the continuous service's primary host); otherwise the scenario picks the busiest.
   */
  readonly host?: string;
  /** The drill's seeded stream for the scenario's own choices (cyber drills: targets and timing). */
  readonly random?: Random;
  /** A system (or VM) the operator chose to attack (`--target`). */
  readonly target?: string;
  /** Cyber drills: how the attacker destroys the data (`--variant`; default `full`). */
  readonly variant?: AttackVariant;
}

export interface Scenario {
  readonly name: string;
  readonly summary: string;
  /** The controller runs its security loop (segmentation enforced, telemetry, ransomware detection). */
  readonly security?: boolean;
  plan(context: ScenarioContext): ScenarioPlan;
}

/** Hosts from the busiest (vCPU, then memory, then blueprint order): where a one-host fault hurts most. */
export function busiestHosts(context: ScenarioContext): string[] {
  const load = hostLoad(context.blueprint, context.faults.copies());
  const order = new Map(context.blueprint.hosts.map((host, index) => [host.name, index]));
  return [...load.entries()]
    .sort((a, b) => b[1].vcpu - a[1].vcpu || b[1].memoryGiB - a[1].memoryGiB || order.get(a[0])! - order.get(b[0])!)
    .map(([host]) => host);
}

/** The host a one-host scenario strikes: the caller's choice, or the busiest. */
export function struckHost(context: ScenarioContext): string {
  return context.host ?? busiestHosts(context)[0]!;
}
