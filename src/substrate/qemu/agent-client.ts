/**
 * The control plane's side of the management network: calls to each host's agent with the lab's
 * bearer token, each bounded by a timeout, and the health probe of a guest at its own address —
 * from the root namespace, through the same bridges and uplinks a client's request would take.
 * An agent that does not answer is an answer too (a refusal naming the host), never a throw.
 */
import type { AgentAnswer, AgentState } from './agent-protocol.ts';
import type { LabManifest } from './lab.ts';

const CALL_TIMEOUT_MS = 20_000;
const POLL_TIMEOUT_MS = 600;
const HEALTH_TIMEOUT_MS = 400;

export class AgentClient {
  private readonly addresses: ReadonlyMap<string, string>;

  constructor(
    private readonly manifest: LabManifest,
    private readonly token: string,
  ) {
    this.addresses = new Map(manifest.hosts.map((host) => [host.name, host.address]));
  }

  private async call<T>(host: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const address = this.addresses.get(host);
    if (address === undefined) throw new Error(`unknown host ${host}`);
    const response = await fetch(`http://${address}:${this.manifest.agentPort}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const payload = (await response.json()) as T;
    if (response.status === 401) throw new Error(`agent of ${host} refused the token`);
    return payload;
  }

  /** The agent's state, or null when it does not answer within a poll's budget. */
  state(host: string): Promise<AgentState | null> {
    return this.call<AgentState>(host, 'GET', '/state', undefined, POLL_TIMEOUT_MS).catch(() => null);
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
