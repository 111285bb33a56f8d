/**
 * The cyber drills (ransomware, lateral spread, vendor VPN misuse): which system the attacker goes
 * for and the steps it takes, run by the attacker model in attacker.ts.
 */
import type { Random } from '../../ports/random.ts';
import { tierOf, type Blueprint } from '../../model/index.ts';
import type { Scenario, ScenarioContext, ScenarioStep } from './scenario.ts';
import { Attacker, MINUTE_S } from './attacker.ts';

/** The target VM: the named system (its VMs drawn by the seed), or a seeded non-continuous system. */
export function attackTarget(context: ScenarioContext, random: Random): { service: string; vm: string; vendor: string } {
  const { blueprint } = context;
  const vendorNetworks = new Set(blueprint.networks.filter((network) => network.kind === 'vendor').map((network) => network.vendor));
  let candidates = blueprint.services.filter((service) => vendorNetworks.has(service.vendor));
  if (context.target !== undefined) {
    candidates = blueprint.services.filter((service) => service.name === context.target || service.vms.some((vm) => vm.name === context.target));
    if (candidates.length === 0) throw new Error(`no system or VM "${context.target}" in ${blueprint.name}`);
  } else {
    candidates = candidates.filter((service) => tierOf(blueprint, service).mechanism !== 'failover');
  }
  const service = random.pick(candidates);
  const vm = service.vms.find((candidate) => candidate.name === context.target) ?? random.pick(service.vms);
  return { service: service.name, vm: vm.name, vendor: service.vendor };
}

function vendorNetwork(blueprint: Blueprint, vendor: string): string {
  const network = blueprint.networks.find((candidate) => candidate.kind === 'vendor' && candidate.vendor === vendor);
  if (network === undefined) throw new Error(`vendor ${vendor} has no remote-maintenance network in ${blueprint.name}`);
  return network.name;
}

function attackScenario(name: string, summary: string, shape: { lateral: boolean; scan: boolean }): Scenario {
  return {
    name,
    summary,
    security: true,
    plan(context) {
      const random = (context.random ?? fallbackRandom()).fork(`attack/${name}`);
      const target = attackTarget(context, random.fork('target'));
      const entryNetwork = vendorNetwork(context.blueprint, target.vendor);
      const timing = random.fork('timing');
      const intrusionAfterS = 5 * MINUTE_S + timing.int(25 * MINUTE_S);
      const dwellS = 60 * MINUTE_S + timing.int(180 * MINUTE_S);
      const variant = context.variant ?? 'full';
      const attacker = new Attacker(
        { entryNetwork, firstVm: target.vm, lateral: shape.lateral, maxFootholds: shape.lateral ? 5 : 1, exploitProbability: 0.35, scanFromEntry: shape.scan, variant },
        random.fork('attacker'),
      );
      const steps: ScenarioStep[] = [
        { afterS: intrusionAfterS, kind: 'attack', label: 'intrusion', run: (runtime) => attacker.intrude(runtime) },
        { afterS: intrusionAfterS + dwellS, kind: 'attack', label: 'encryption', run: (runtime) => attacker.encrypt(runtime) },
      ];
      const exfiltration = attacker.plan.exfiltration;
      // Exfiltration ends as the encryption starts (within the dwell: it is at least an hour).
      if (exfiltration !== null) steps.splice(1, 0, { afterS: intrusionAfterS + dwellS - Math.min(dwellS - 60, exfiltration.durationMs / 1000), kind: 'attack', label: 'exfiltration', run: (runtime) => attacker.exfiltrate(runtime) });
      const how = variant === 'full' ? 'encryption' : `${variant} ${variant === 'wiper' ? 'wiping' : 'encryption'}`;
      return {
        description: `${shape.scan ? "vendor VPN misused" : 'ransomware'}: intrusion through ${entryNetwork} into ${target.vm} (${target.service}) ${Math.round(intrusionAfterS / 60)} min in, ${shape.lateral ? 'spreading along allowed flows, ' : ''}${how} ${Math.round(dwellS / 60)} min later`,
        steps,
        attacker,
        entry: entryNetwork,
        target: target.vm,
      };
    },
  };
}

function fallbackRandom(): Random {
  throw new Error('cyber scenarios need the drill\'s seeded random stream');
}

export const CYBER_SCENARIOS: readonly Scenario[] = [
  attackScenario('ransomware', 'intrusion through a vendor VPN, dormant probing, then one system\'s disk encrypted: detect, quarantine, restore the last clean snapshot', { lateral: false, scan: false }),
  attackScenario('ransomware-lateral', 'the same, spreading to other VMs along allowed flows; segmentation bounds how far', { lateral: true, scan: false }),
  attackScenario('vendor-vpn-compromise', "a vendor's VPN misused: it scans the whole hospital, reaches only that vendor's VMs, then encrypts one", { lateral: false, scan: true }),
];
