/**
 * Power fencing of the qemu substrate's hosts through fence agents (fence-agent.ts), as the
 * fencing file configures them (fence-config.ts): the same calls a hospital's BMCs get. In the lab,
 * every host has a real IPMI BMC (bmc.ts) and the lab writes its own fencing file
 * (`LAB/fencing.json`: fence_ipmilan, lanplus, 127.0.0.1, a port and a password per host);
 * `startLabBmcs` builds all of it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FenceAgentOutcome } from '../../ports/index.ts';
import { bmcPassword, BMC_LOGIN, BMC_PORT_BASE, startBmc } from './bmc.ts';
import { describeCall, fencePowerOff, fencePowerOn, fencePowerStatus, type FenceDevice, type FenceResult } from './fence-agent.ts';
import { devicesFor, type FencingConfig, loadFencingConfig } from './fence-config.ts';
import { type LabLayout, type LabManifest, writeAtomic } from './lab.ts';

const AGENT_READY_TIMEOUT_MS = 20_000;

/** The journal's record of a fence through an agent: name, last off's exit status, time, calls. */
export function fenceOutcome(result: FenceResult): FenceAgentOutcome {
  const offs = result.calls.filter((call) => call.action === 'off');
  const last = offs.at(-1) ?? result.calls.at(-1);
  return {
    name: result.agent,
    exitCode: last?.exitCode ?? null,
    timedOut: result.calls.some((call) => call.timedOut),
    durationMs: result.durationMs,
    calls: result.calls.map(describeCall),
  };
}

export class FencePower {
  private readonly devices: ReadonlyMap<string, FenceDevice>;

  constructor(
    private readonly config: FencingConfig,
    hosts: readonly string[],
    /** Whether the host's agent answers (after a power on, the host counts as up only then). */
    private readonly agentAnswers: (host: string) => Promise<boolean>,
  ) {
    this.devices = devicesFor(config, hosts);
  }

  /** Reads the fencing file named, or the lab's own when there is one; null: no fence agents. */
  static load(file: string | undefined, layout: LabLayout, manifest: LabManifest, agentAnswers: (host: string) => Promise<boolean>): FencePower | null {
    const chosen = file ?? (existsSync(layout.fencingFile) ? layout.fencingFile : undefined);
    if (chosen === undefined) return null;
    return new FencePower(loadFencingConfig(chosen), manifest.hosts.map((host) => host.name), agentAnswers);
  }

  agentOf(host: string): string {
    return this.devices.get(host)!.agent;
  }

  /** Powers the host off and confirms it by the device's status (retried per the file's policy). */
  off(host: string, stopped: () => boolean = () => false): Promise<FenceResult> {
    return fencePowerOff(this.devices.get(host)!, this.config.retry, stopped);
  }

  /** Powers the host on and waits until its agent answers. */
  async on(host: string): Promise<FenceResult> {
    const result = await fencePowerOn(this.devices.get(host)!);
    if (!result.ok) return result;
    const started = performance.now();
    while (performance.now() - started < AGENT_READY_TIMEOUT_MS) {
      if (await this.agentAnswers(host)) return result;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { ...result, ok: false, detail: `${result.detail}; its agent did not answer within ${AGENT_READY_TIMEOUT_MS / 1000} s` };
  }

  /** The power state the device reports; a device that cannot tell counts as on (never assume a host dead). */
  async state(host: string): Promise<'on' | 'off'> {
    return (await fencePowerStatus(this.devices.get(host)!)).state ?? 'on';
  }
}

/**
 * Gives every lab host a real IPMI BMC (ipmi_sim) and writes the lab's fencing file: fence_ipmilan
 * over lanplus on 127.0.0.1, a port and a fresh password per host (in `LAB/secret/bmc/`, 0600).
 * `bootCommand(host)` is what the BMC's power on starts in the host's namespace (its agent).
 */
export async function startLabBmcs(layout: LabLayout, manifest: LabManifest, bootCommand: (host: string) => readonly string[]): Promise<void> {
  const hosts: Record<string, unknown> = {};
  for (const [index, host] of manifest.hosts.entries()) {
    const password = bmcPassword();
    const credentialsFile = join(layout.root, 'secret', 'bmc', `${host.name}.password`);
    await writeAtomic(credentialsFile, `${password}\n`, 0o600);
    const port = BMC_PORT_BASE + index;
    await startBmc({
      host: host.name,
      namespace: host.namespace,
      port,
      login: BMC_LOGIN,
      password,
      directory: join(layout.host(host.name), 'bmc'),
      powerFile: layout.power(host.name),
      bootCommand: bootCommand(host.name),
      bootLog: layout.agentLog(host.name),
    });
    // cipher 3 (RAKP-HMAC-SHA1, AES): without it ipmitool first asks for the cipher suites, which ipmi_sim does not answer (10 s lost per call).
    hosts[host.name] = { agent: 'fence_ipmilan', address: '127.0.0.1', port, login: BMC_LOGIN, credentialsFile, timeoutS: 15, options: { lanplus: '1', cipher: '3', power_wait: '0' } };
  }
  await writeAtomic(layout.fencingFile, `${JSON.stringify({ version: 1, retry: { attempts: 3, backoffMs: 250 }, hosts }, null, 2)}\n`);
}
