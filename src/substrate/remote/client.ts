/**
 * A Substrate that lives in another process (`tomaranai twin serve`, later an agent in front of
 * real hosts): calls are HTTP requests whose answers are promises, events arrive as a server-sent
 * event stream. Heartbeat times are carried over as ages ("last seen 1.2 s ago"), so the two
 * processes' clocks need not agree on their zero. If the stream breaks, the client reconnects.
 */
import type { ActionOutcome, Clock, FencingToken, SnapshotObservation, StartRequest, Substrate, SubstrateEvent, SubstrateSnapshot } from '../../ports/index.ts';
import type { SubstrateCall, WireEvent, WireSnapshot } from './protocol.ts';

const CALL_TIMEOUT_MS = 5_000;
const RECONNECT_MS = 500;

export class RemoteSubstrate implements Substrate {
  readonly name = 'remote';
  private readonly listeners = new Set<(event: SubstrateEvent) => void>();
  private readonly silent = new Map<string, Extract<SubstrateEvent, { type: 'heartbeat.lost' }>>();
  private streamAbort: AbortController | null = null;
  private closed = false;
  connected = false;

  constructor(private readonly options: { url: string; clock: Clock }) {}

  /** Opens the event stream; resolves once it is open. */
  async connect(): Promise<void> {
    await this.openStream();
  }

  private async openStream(): Promise<void> {
    const abort = new AbortController();
    this.streamAbort = abort;
    const response = await fetch(`${this.options.url}/events`, { signal: abort.signal });
    if (!response.ok || response.body === null) throw new Error(`substrate event stream answered ${response.status}`);
    this.connected = true;
    void this.pump(response.body.getReader(), abort);
  }

  private async pump(reader: ReadableStreamDefaultReader<Uint8Array>, abort: AbortController): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let split: number;
        while ((split = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          if (!block.startsWith('data: ')) continue;
          this.deliver(JSON.parse(block.slice(6)) as WireEvent);
        }
      }
    } catch {
      // The stream broke (the substrate restarted, or we closed it).
    }
    this.connected = false;
    if (this.closed || abort.signal.aborted) return;
    const retry = () => {
      if (this.closed) return;
      this.openStream().catch(() => setTimeout(retry, RECONNECT_MS).unref());
    };
    setTimeout(retry, RECONNECT_MS).unref();
  }

  private deliver(wire: WireEvent): void {
    let event = wire.event;
    if (event.type === 'heartbeat.lost') {
      event = { ...event, lastSeenAtMs: this.options.clock.nowMs() - (wire.nowMs - event.lastSeenAtMs) };
      this.silent.set(`${event.host}/${event.channel}`, event);
    }
    if (event.type === 'heartbeat.restored') this.silent.delete(`${event.host}/${event.channel}`);
    for (const listener of this.listeners) listener(event);
  }

  close(): void {
    this.closed = true;
    this.streamAbort?.abort();
  }

  /**
   * A controller that subscribes late (a restart, a new leader) assumes every host heartbeats; it
   * is told at once which channels are silent now, with when they were last heard.
   */
  subscribe(listener: (event: SubstrateEvent) => void): () => void {
    this.listeners.add(listener);
    const silentNow = [...this.silent.values()];
    queueMicrotask(() => {
      for (const event of silentNow) if (this.listeners.has(listener)) listener(event);
    });
    return () => this.listeners.delete(listener);
  }

  async snapshot(): Promise<SubstrateSnapshot> {
    const wire = (await this.request('GET', '/snapshot')) as WireSnapshot;
    const now = this.options.clock.nowMs();
    // Heartbeat times are the substrate's clock: carried over as ages.
    const hosts = wire.hosts.map((host) =>
      host.heartbeats === undefined
        ? host
        : {
            ...host,
            heartbeats: {
              management: { ...host.heartbeats.management, lastSeenAtMs: now - (wire.atMs - host.heartbeats.management.lastSeenAtMs) },
              datastore: { ...host.heartbeats.datastore, lastSeenAtMs: now - (wire.atMs - host.heartbeats.datastore.lastSeenAtMs) },
            },
          },
    );
    return { ...wire, hosts, atMs: now, vmGenerations: new Map(wire.vmGenerations) };
  }

  private async request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.options.url}${path}`, {
      method,
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`substrate ${method} ${path} answered ${response.status}`);
    return response.json();
  }

  private call(name: SubstrateCall, body: unknown): Promise<ActionOutcome> {
    return this.request('POST', `/call/${name}`, body) as Promise<ActionOutcome>;
  }

  claimEpoch(token: FencingToken): Promise<ActionOutcome> {
    return this.call('claimEpoch', token);
  }
  startVm(request: StartRequest): Promise<ActionOutcome> {
    return this.call('startVm', request);
  }
  stopVm(request: { token: FencingToken; vm: string; host: string; instanceId: string }): Promise<ActionOutcome> {
    return this.call('stopVm', request);
  }
  promoteSecondary(request: { token: FencingToken; vm: string; instanceId: string }): Promise<ActionOutcome> {
    return this.call('promoteSecondary', request);
  }
  fenceHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    return this.call('fenceHost', request);
  }
  powerOnHost(request: { token: FencingToken; host: string }): Promise<ActionOutcome> {
    return this.call('powerOnHost', request);
  }
  deleteSnapshot(request: { token: FencingToken; snapshotId: string; actor: string }): Promise<ActionOutcome> {
    return this.call('deleteSnapshot', request);
  }
  migrateVm(request: { token: FencingToken; vm: string; instanceId: string; toHost: string }): Promise<ActionOutcome> {
    return this.call('migrateVm', request);
  }
  setCpuShares(request: { token: FencingToken; vm: string; instanceId: string; shares: number }): Promise<ActionOutcome> {
    return this.call('setCpuShares', request);
  }
  /** Per-copy CPU metrics, as the substrate reports them (its element type is the port's). */
  metrics(): Promise<never> {
    return this.request('GET', '/metrics') as Promise<never>;
  }
  async listSnapshots(vm: string): Promise<readonly SnapshotObservation[]> {
    return (await this.request('GET', `/snapshots/${encodeURIComponent(vm)}`)) as SnapshotObservation[];
  }
}
