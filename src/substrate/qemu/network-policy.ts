/**
 * Segmentation and quarantine on the lab's virtual switches. The control plane turns the
 * blueprint's compiled policy into address rules (`networkRules`); each host agent turns them into
 * an nftables `bridge` table on its own bridge (`policyScript`), re-enforces the last one it was
 * given when it starts, and quarantines a single VM's tap on request. Only VM traffic crossing the
 * bridge is touched: the host's own traffic (its agent) never is.
 */
import { join } from 'node:path';
import type { Blueprint } from '../../model/index.ts';
import type { SegmentationPolicy } from '../../model/segmentation.ts';
import type { AgentHost } from './agent-host.ts';
import type { AgentAnswer, NetworkPolicyRequest, QuarantineRequest } from './agent-protocol.ts';
import { run, tryRun } from './command.ts';
import { readJson, writeAtomic } from './lab.ts';
import { HOST_BRIDGE, tapName } from './netns.ts';

export const POLICY_TABLE = 'tmr-policy';

/** Where an agent keeps the last policy it enforced, to enforce it again after a restart. */
const POLICY_FILE = 'policy.json';

/**
 * The nftables script of a segmentation policy on one host's bridge: ARP passes; the monitor
 * addresses reach every VM; each allowed flow passes, and its answers (stateless: source port);
 * every other frame into or out of a VM's tap is dropped. The host's own traffic (its agent) does
 * not cross the bridge's forward hook and is not touched.
 */
export function policyScript(policy: Omit<NetworkPolicyRequest, 'epoch'>): string {
  const lines = [
    `table bridge ${POLICY_TABLE} {`,
    // Every dropped frame's (source, destination), with a packet counter per pair: the denied
    // flows of the security telemetry (block-telemetry.ts reads it).
    '  set denied { type ipv4_addr . ipv4_addr; size 4096; flags dynamic; }',
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    '    ether type { arp, 0x8035 } accept',
    ...policy.monitor.flatMap((monitor) => [`    ip saddr ${monitor} accept`, `    ip daddr ${monitor} accept`]),
    ...policy.rules.flatMap((rule) =>
      rule.port === 0
        ? [`    ip saddr ${rule.from} ip daddr ${rule.to} accept`, `    ip saddr ${rule.to} ip daddr ${rule.from} accept`]
        : [`    ip saddr ${rule.from} ip daddr ${rule.to} ${rule.protocol} dport ${rule.port} accept`, `    ip saddr ${rule.to} ip daddr ${rule.from} ${rule.protocol} sport ${rule.port} accept`],
    ),
    '    iifname "tmr-t*" ip protocol { tcp, udp, icmp } add @denied { ip saddr . ip daddr counter }',
    '    iifname "tmr-t*" drop',
    '    oifname "tmr-t*" drop',
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

/** Replaces the policy table by `script`: delete and re-create in one transaction, no moment without a policy. */
async function replacePolicyTable(script: string): Promise<void> {
  const existing = await tryRun(['nft', 'list', 'table', 'bridge', POLICY_TABLE]);
  await run(['nft', '-f', '-'], { input: `${existing === null ? '' : `delete table bridge ${POLICY_TABLE}\n`}${script}` });
}

/**
 * A host that was powered off lost nothing of its namespace here, but a real one would have: the
 * last policy it was given is enforced again before it runs anything.
 */
export async function restorePolicy(host: AgentHost): Promise<void> {
  const stored = await readJson<Omit<NetworkPolicyRequest, 'epoch'>>(join(host.runDirectory, POLICY_FILE));
  if (stored !== null) await replacePolicyTable(policyScript(stored));
}

/** Enforces a segmentation policy on this host's bridge (replacing the previous one at once). */
export async function applyPolicy(host: AgentHost, request: NetworkPolicyRequest): Promise<AgentAnswer> {
  const refused = await host.checkEpoch(request.epoch);
  if (refused !== null) return { ok: false, reason: refused };
  await replacePolicyTable(policyScript(request));
  await writeAtomic(join(host.runDirectory, POLICY_FILE), JSON.stringify({ monitor: request.monitor, rules: request.rules }));
  host.log('policy.applied', { rules: request.rules.length });
  return { ok: true, detail: `${request.rules.length} rules` };
}

/**
 * Quarantine at the host's virtual switch: an nftables `bridge` table in this namespace drops
 * every frame from or to the VM's tap except to and from the allowed addresses (the forensic
 * network). Nothing else on the host changes; release deletes the VM's chain.
 */
export async function quarantine(host: AgentHost, request: QuarantineRequest): Promise<AgentAnswer> {
  const refused = await host.checkEpoch(request.epoch);
  if (refused !== null) return { ok: false, reason: refused };
  const instance = host.instances.get(request.vm);
  const table = `tmr-q-${request.vm}`.slice(0, 60);
  if (!request.quarantined) {
    await tryRun(['nft', 'delete', 'table', 'bridge', table]);
    if (instance !== undefined) {
      instance.quarantined = false;
      await host.persist(instance);
    }
    return { ok: true };
  }
  await tryRun(['nft', 'delete', 'table', 'bridge', table]);
  await run(['nft', '-f', '-'], { input: quarantineScript(table, tapName(request.vm), request.allow) });
  if (instance !== undefined) {
    instance.quarantined = true;
    await host.persist(instance);
  }
  host.log('vm.quarantined', { vm: request.vm, bridge: HOST_BRIDGE, allow: request.allow });
  return { ok: true };
}

/** ARP passes (the forensic workstation must resolve the VM); IP only to and from `allow`. */
function quarantineScript(table: string, tap: string, allow: readonly string[]): string {
  const allowed = allow.length > 0 ? `{ ${allow.join(', ')} }` : null;
  return [
    `table bridge ${table} {`,
    '  chain forward {',
    '    type filter hook forward priority -10; policy accept;',
    `    iifname "${tap}" ether type { arp, 0x8035 } accept`,
    `    oifname "${tap}" ether type { arp, 0x8035 } accept`,
    ...(allowed === null ? [] : [`    iifname "${tap}" ip daddr ${allowed} accept`, `    oifname "${tap}" ip saddr ${allowed} accept`]),
    `    iifname "${tap}" drop`,
    `    oifname "${tap}" drop`,
    '  }',
    '}',
  ].join('\n');
}

/**
 * A segmentation policy in addresses: each VM endpoint is its lab address, each network endpoint
 * its blueprint CIDR (a network without one, like "external", matches nothing in the lab).
 */
export function networkRules(policy: SegmentationPolicy, blueprint: Blueprint, vmAddress: ReadonlyMap<string, string>): NetworkPolicyRequest['rules'] {
  const cidr = new Map(blueprint.networks.map((network) => [network.name, network.cidr ?? undefined]));
  const addressOf = (endpoint: string): string | null => {
    const vm = vmAddress.get(endpoint);
    if (vm !== undefined) return vm;
    const range = cidr.get(endpoint);
    return range === undefined || range === '0.0.0.0/0' ? null : range;
  };
  const rules: NetworkPolicyRequest['rules'] = [];
  const seen = new Set<string>();
  for (const rule of policy.rules) {
    const from = addressOf(rule.from);
    const to = addressOf(rule.to);
    if (from === null || to === null) continue;
    const protocol = rule.protocol === 'udp' ? 'udp' : 'tcp';
    const key = `${from}>${to}:${rule.port}/${protocol}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push({ from, to, port: rule.port, protocol });
  }
  return rules;
}
