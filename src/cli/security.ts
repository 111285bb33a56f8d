/**
 * The security commands: `segmentation FILE` (the compiled default-deny policy and its size) and
 * `attack-paths FILE` (reach from the entry points, shortest paths, blast radii and the flows whose
 * removal cuts most paths, next to a flat network). The lead registers them on the main program.
 */
import type { Command } from 'commander';
import type { Blueprint } from '../model/index.ts';
import { analyzeAttackPaths, type AttackPathAnalysis, type EntryReach, type FlowCut, type Hop } from '../plan/attack-paths.ts';
import { ANY_PORT, compileSegmentation, rulesOfVm, type SegmentationPolicy, type SegmentationRule } from '../model/segmentation.ts';
import { table } from './format.ts';

export interface SecurityIo {
  out(text: string): void;
  err(text: string): void;
}

const TOP_BLAST_RADII = 10;
const TOP_FLOWS = 10;

export function registerSecurityCommands(
  program: Command,
  io: SecurityIo,
  loadBlueprintOrReport: (file: string) => Blueprint | null,
  setExitCode: (code: number) => void,
): void {
  program
    .command('segmentation')
    .description('compile the allowed flows into a default-deny per-VM policy; print it and its size')
    .argument('<file>', 'blueprint YAML')
    .option('--vm <name>', "print this VM's ingress and egress rules")
    .option('--json', 'print the policy as one JSON document on stdout')
    .action((file: string, options: { vm?: string; json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      const policy = compileSegmentation(blueprint);
      if (options.vm !== undefined && !policy.vms.some((vm) => vm.vm === options.vm)) {
        io.err(`TMR_SEGMENTATION_UNKNOWN_VM: no VM "${options.vm}" in ${blueprint.name} (VM names are the service name and a number, e.g. ${policy.vms[0]?.vm ?? 'ehr-db-1'})\n`);
        return setExitCode(1);
      }
      if (options.json) {
        const document = options.vm === undefined ? policy : { blueprint: policy.blueprint, defaultAction: policy.defaultAction, vm: options.vm, ...rulesOfVm(policy, options.vm), totals: policy.totals };
        io.out(`${JSON.stringify(document, null, 2)}\n`);
      } else {
        io.out(`${formatSegmentation(policy, options.vm)}\n`);
      }
      setExitCode(0);
    });

  program
    .command('attack-paths')
    .description('what an attacker reaches from each entry point, shortest paths to continuous services, blast radii, flows to cut; against a flat network')
    .argument('<file>', 'blueprint YAML')
    .option('--json', 'print the analysis as one JSON document on stdout')
    .action((file: string, options: { json?: boolean }) => {
      const blueprint = loadBlueprintOrReport(file);
      if (blueprint === null) return setExitCode(1);
      const analysis = analyzeAttackPaths(blueprint);
      io.out(options.json ? `${JSON.stringify(analysis, null, 2)}\n` : `${formatAttackPaths(analysis)}\n`);
      setExitCode(0);
    });
}

const port = (value: number): string => (value === ANY_PORT ? 'any' : String(value));
const percent = (value: number): string => `${value.toFixed(1)} %`;

export function formatSegmentation(policy: SegmentationPolicy, vm?: string): string {
  const { totals } = policy;
  const lines = [
    `Segmentation policy of ${policy.blueprint}: default deny, ${totals.rules} allow rules (${totals.vmToVmRules} VM to VM, ${totals.networkRules} with a network)`,
    `VM pairs allowed: ${totals.vmPairsAllowed} of ${totals.vmPairsFlat} on a flat network (${totals.vms} VMs, n × (n − 1)): ${percent(totals.reductionPercent)} fewer, and only on the listed ports`,
    '',
  ];
  if (vm !== undefined) {
    const rules = rulesOfVm(policy, vm);
    const render = (rule: SegmentationRule) => [rule.from, rule.to, port(rule.port), rule.protocol ?? '', rule.origin];
    lines.push(`${vm}: ${rules.ingress.length} ingress, ${rules.egress.length} egress rules; everything else denied`, '');
    lines.push('ingress', table(['from', 'to', 'port', 'protocol', 'origin'], rules.ingress.map(render)), '');
    lines.push('egress', table(['from', 'to', 'port', 'protocol', 'origin'], rules.egress.map(render)));
    return lines.join('\n');
  }
  lines.push(
    table(
      ['vm', 'service', 'tier', 'ingress', 'egress', 'peers in', 'peers out'],
      policy.vms.map((entry) => [
        entry.vm,
        entry.service,
        entry.tier,
        String(entry.ingress.length),
        String(entry.egress.length),
        String(new Set(entry.ingress.map((rule) => rule.from)).size),
        String(new Set(entry.egress.map((rule) => rule.to)).size),
      ]),
    ),
  );
  const networkOnly = policy.rules.filter((rule) => !policy.vms.some((entry) => entry.vm === rule.from || entry.vm === rule.to));
  if (networkOnly.length > 0) lines.push('', `${networkOnly.length} rules between networks only (no VM end)`);
  lines.push('', 'The management network (hosts\' management plane) is not VM traffic: no VM may reach it.', 'Use --vm NAME for one VM\'s rules, --json for the whole policy.');
  return lines.join('\n');
}

function hopsText(hops: readonly Hop[] | null): string {
  if (hops === null) return 'unreachable';
  if (hops.length === 0) return 'is the entry itself';
  return `${hops.length} hop${hops.length === 1 ? '' : 's'}: ${hops[0]!.from} ${hops.map((hop) => `→(${hop.ports.map(port).join(',')}) ${hop.to}`).join(' ')}`;
}

function flowText(cut: FlowCut): string {
  const nature = cut.category === 'dependency' ? 'carries a dependsOn: harden, do not remove' : cut.category === 'access' ? 'network access' : 'no dependsOn behind it';
  return `${cut.from} → ${cut.to} :${cut.port}${cut.protocol ? ` ${cut.protocol}` : ''}  cuts ${cut.pairsCut} pair${cut.pairsCut === 1 ? '' : 's'}  (${nature})`;
}

export function formatAttackPaths(analysis: AttackPathAnalysis): string {
  const { segmented, flat } = analysis;
  const flatByEntry = new Map(flat.entries.map((entry) => [entry.entry, entry]));
  const vmCount = flat.blastRadius.length;
  const lines = [
    `Attack paths in ${analysis.blueprint}: ${analysis.entryPoints.length} entry points, ${vmCount} VMs, continuous services ${analysis.continuousServices.join(', ')}`,
    'An attacker on a node can attack whatever it may open a connection to; paths follow allowed flows, through networks too.',
    '',
    'Reach per entry point (segmented vs flat network)',
    table(
      ['entry point', 'VMs reached', 'flat', 'continuous reached', 'flat', 'critical services'],
      segmented.entries.map((entry) => {
        const baseline = flatByEntry.get(entry.entry);
        return [
          entry.entry,
          String(entry.vmsReached),
          String(baseline?.vmsReached ?? ''),
          `${entry.continuousReached} of ${analysis.continuousServices.length}`,
          `${baseline?.continuousReached ?? ''} of ${analysis.continuousServices.length}`,
          String(entry.criticalReached),
        ];
      }),
    ),
    '',
    'Shortest path to each continuous service (a flat network: 1 hop, any port, from every entry)',
  ];
  for (const entry of segmented.entries) lines.push(...entryPaths(entry));
  lines.push(
    '',
    `Blast radius of a compromised VM (top ${TOP_BLAST_RADII}; flat network: ${flat.blastRadiusMax} VMs from every VM)`,
    table(
      ['vm', 'tier', 'VMs reached', 'continuous VMs', 'critical VMs'],
      segmented.blastRadius.slice(0, TOP_BLAST_RADII).map((radius) => [radius.vm, radius.tier, String(radius.vmsReached), String(radius.continuousVms), String(radius.criticalVms)]),
    ),
    `mean blast radius ${segmented.blastRadiusMean} VMs (flat ${flat.blastRadiusMean}), largest ${segmented.blastRadiusMax} (flat ${flat.blastRadiusMax})`,
    '',
    `Entry → continuous-service pairs with a path: ${segmented.continuousPairsReachable} of ${segmented.continuousPairsTotal} (flat ${flat.continuousPairsReachable})`,
    `Flows whose removal alone cuts most pairs (top ${TOP_FLOWS} of ${analysis.ranking.length} that cut any)`,
  );
  analysis.ranking.slice(0, TOP_FLOWS).forEach((cut, index) => lines.push(`  ${String(index + 1).padStart(2)}. ${flowText(cut)}`));
  for (const [title, cover] of [
    ['Greedy set of flows that together cut the most pairs', analysis.cover],
    ['The same among flows no dependsOn needs (network access and blanket rules)', analysis.coverWithoutDependencies],
  ] as const) {
    lines.push('', `${title}: ${cover.pairsCut} of ${cover.pairsBefore} pairs cut`);
    cover.flows.forEach((cut, index) => lines.push(`  ${index + 1}. ${flowText(cut)}`));
  }
  return lines.join('\n');
}

function entryPaths(entry: EntryReach): string[] {
  return [`  ${entry.entry} (${entry.description})`, ...entry.continuousPaths.map((path) => `    ${path.service}: ${hopsText(path.hops)}`)];
}
