/**
 * The host agent (`tomaranai agent`): one per host, running inside the host's network namespace,
 * like a hypervisor node's HA agent. It starts, stops, promotes and migrates the host's VMs
 * through QMP (agent-operations.ts), answers the control plane over the management network,
 * bearer-token authenticated (agent-routes.ts), enforces the host's network policy
 * (network-policy.ts), and keeps the second heartbeat channel and the per-VM leases on the shared
 * datastore, fencing itself when it loses both channels (agent-heartbeat.ts). What it runs is
 * kept in one place (agent-host.ts).
 *
 * QEMU runs daemonized: an agent that dies leaves its VMs running, and a new agent reattaches to
 * them by their pid files and QMP sockets and repeats nothing. This module is the agent's life
 * cycle: what it does, in which order, when it starts and stops.
 */
import type { FastifyInstance } from 'fastify';
import { AgentHeartbeat, fenceStanding } from './agent-heartbeat.ts';
import { AgentHost } from './agent-host.ts';
import { VmOperations } from './agent-operations.ts';
import { RestoreOperations } from './agent-restore.ts';
import { BlockTelemetryReader } from './block-telemetry.ts';
import { buildAgentServer } from './agent-routes.ts';
import type { TlsMaterial } from './agent-tls.ts';
import type { LabLayout, LabManifest } from './lab.ts';
import { restorePolicy } from './network-policy.ts';
import { loadGuestImage } from './vm.ts';

export type { AgentAnswer, AgentInstanceState, AgentRole, AgentState, NetworkPolicyRequest } from './agent-protocol.ts';
export { readCpu } from './agent-host.ts';
export { POLICY_TABLE, policyScript } from './network-policy.ts';

export class HostAgent {
  private readonly host: AgentHost;
  private readonly heartbeat: AgentHeartbeat;
  private readonly operations: VmOperations;
  private readonly restores: RestoreOperations;
  private readonly telemetry: BlockTelemetryReader;
  private readonly tokenBuffer: Buffer;
  private server: FastifyInstance | null = null;

  constructor(
    private readonly options: {
      readonly layout: LabLayout;
      readonly manifest: LabManifest;
      readonly host: string;
      readonly token: string;
      readonly listen?: { host: string; port: number };
      /** Serve over mutual TLS with this host's certificate (agent-tls.ts). */
      readonly tls?: TlsMaterial;
    },
  ) {
    this.host = new AgentHost(options.layout, options.manifest, options.host);
    this.heartbeat = new AgentHeartbeat(this.host);
    this.operations = new VmOperations(this.host);
    this.restores = new RestoreOperations(this.host);
    this.telemetry = new BlockTelemetryReader(this.host);
    this.tokenBuffer = Buffer.from(options.token, 'utf8');
  }

  /**
   * Reattaches to what a previous agent left running, obeys a standing fence and the last network
   * policy before anything else, beats once, and only then listens for the control plane.
   */
  async start(): Promise<void> {
    const host = this.host;
    host.image = await loadGuestImage(this.options.manifest.imageDirectory);
    if (host.image === null) throw new Error(`the guest image is missing in ${this.options.manifest.imageDirectory}: run npm run vm:image`);
    await host.loadEpoch();
    await host.reattach();
    host.fenced = await fenceStanding(host);
    await restorePolicy(host);
    await this.heartbeat.start();
    const listen = this.options.listen ?? { host: host.ownAddress(), port: this.options.manifest.agentPort };
    this.server = this.buildServer();
    await this.server.listen(listen);
    host.log('agent.started', { epoch: host.epoch, instances: [...host.instances.keys()], listen: `${listen.host}:${listen.port}` });
  }

  async close(): Promise<void> {
    this.heartbeat.stop();
    await this.server?.close();
    for (const instance of this.host.instances.values()) instance.qemu.qmp.close();
  }

  buildServer(): FastifyInstance {
    return buildAgentServer({ host: this.host, operations: this.operations, restores: this.restores, telemetry: this.telemetry, token: this.tokenBuffer, ...(this.options.tls === undefined ? {} : { tls: this.options.tls }) });
  }
}
