/**
 * The control plane's side of the management network: calls to each host's agent with the lab's
 * bearer token, each bounded by a timeout, and the health probe of a guest at its own address —
 * from the root namespace, through the same bridges and uplinks a client's request would take.
 * An agent that does not answer is an answer too (a refusal naming the host), never a throw.
 */
import type { Agent as HttpsAgent } from 'node:https';
import type { AgentAnswer, AgentState } from './agent-protocol.ts';
import type { HostTelemetry } from './block-telemetry.ts';
import { agentConnectionPool, agentRequest, readControlPlaneTls, type TlsMaterial } from './agent-tls.ts';
import type { LabManifest } from './lab.ts';

const CALL_TIMEOUT_MS = 20_000;
const POLL_TIMEOUT_MS = 600;
const HEALTH_TIMEOUT_MS = 400;
const TELEMETRY_TIMEOUT_MS = 8_000;

export class AgentClient {
  private readonly addresses: ReadonlyMap<string, string>;
  /** Mutual TLS when the lab has certificates (manifest.tlsDirectory): our client pair, the agents' CA. */
  private readonly tls: TlsMaterial | null;
  private readonly pool: HttpsAgent | undefined;

  constructor(
    private readonly manifest: LabManifest,
    private readonly token: string,
    tls?: TlsMaterial | null,
  ) {
    this.addresses = new Map(manifest.hosts.map((host) => [host.name, host.address]));
    this.tls = tls !== undefined ? tls : manifest.tlsDirectory === undefined ? null : readControlPlaneTls(manifest.tlsDirectory);
    this.pool = this.tls === null ? undefined : agentConnectionPool(this.tls);
  }

  close(): void {
    this.pool?.destroy();
  }

  private async call<T>(host: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const address = this.addresses.get(host);
    if (address === undefined) throw new Error(`unknown host ${host}`);
    const response = await agentRequest({ host, address, port: this.manifest.agentPort, method, path, token: this.token, body, timeoutMs, tls: this.tls, ...(this.pool === undefined ? {} : { pool: this.pool }) });
    if (response.status === 401 || response.status === 403) throw new Error(`agent of ${host} refused the control plane (${response.status})`);
    return response.body as T;
  }

  /** The agent's state, or null when it does not answer within a poll's budget. */
  state(host: string): Promise<AgentState | null> {
    return this.call<AgentState>(host, 'GET', '/state', undefined, POLL_TIMEOUT_MS).catch(() => null);
  }

  /** The host's security telemetry (closing its window), or null when the agent does not answer in time. */
  telemetry(host: string): Promise<HostTelemetry | null> {
    return this.call<HostTelemetry>(host, 'GET', '/telemetry', undefined, TELEMETRY_TIMEOUT_MS).catch(() => null);
  }

  /** Asks the agent of `host` for an operation; silence is a refusal that says so. */
  async post(host: string, path: string, body: Record<string, unknown>): Promise<AgentAnswer> {
    try {
      return await this.call<AgentAnswer>(host, 'POST', path, body);
    } catch (error) {
      return { ok: false, reason: `agent of ${host} did not answer: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
}

/** Whether the guest at `address` answers `GET /health` with "ok" in time. */
export async function probeHealth(address: string | undefined): Promise<boolean> {
  try {
    const response = await fetch(`http://${address}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
    return response.ok && (await response.text()).trim() === 'ok';
  } catch {
    return false;
  }
}
