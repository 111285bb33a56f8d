/**
 * A QMP client over a unix socket: newline-delimited JSON, the greeting, capabilities
 * negotiation, commands tagged with an id and answered within a timeout, and asynchronous events
 * (STOP, RESUME, SHUTDOWN, MIGRATION, …) delivered to listeners. One client per VM; QEMU serves
 * one client per socket at a time.
 */
import { connect, type Socket } from 'node:net';

export const QMP_CONNECT_TIMEOUT_MS = 10_000;
export const QMP_COMMAND_TIMEOUT_MS = 10_000;
/** A bound on commands in flight: a caller that floods a VM is refused, not queued without end. */
export const QMP_MAX_PENDING = 64;
/** A bound on one line from QEMU (query-block of a long snapshot chain stays far below). */
const QMP_MAX_LINE_BYTES = 4 * 1024 * 1024;

export interface QmpEvent {
  readonly event: string;
  readonly data?: Record<string, unknown>;
  readonly timestamp?: { seconds: number; microseconds: number };
}

export class QmpError extends Error {
  // A stable TMR_ code joins the registry (docs/errors.md) when the substrate is wired in.
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly description: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${description}`);
  }
}

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private closedError: Error | null = null;
  /** QEMU's version, from the greeting. */
  version: { major: number; minor: number; micro: number } | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('close', () => this.fail(new Error('QMP socket closed')));
    socket.on('error', (error) => this.fail(error));
  }

  /** Connects, reads the greeting and negotiates capabilities; resolves when commands may be sent. */
  static async connect(socketPath: string, options: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = options.timeoutMs ?? QMP_CONNECT_TIMEOUT_MS;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const candidate = connect(socketPath);
      const timer = setTimeout(() => {
        candidate.destroy();
        reject(new Error(`QMP connect ${socketPath}: timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      candidate.once('connect', () => {
        clearTimeout(timer);
        resolve(candidate);
      });
      candidate.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const client = new QmpClient(socket);
    try {
      await client.greeting(timeoutMs);
      await client.execute('qmp_capabilities', undefined, timeoutMs);
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  private greetingWaiter: { resolve: () => void; reject: (error: Error) => void } | null = null;

  private greeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QMP greeting: timed out after ${timeoutMs} ms`)), timeoutMs);
      this.greetingWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
  }

  /** Runs one QMP command and resolves with its `return` value; rejects with a QmpError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = QMP_COMMAND_TIMEOUT_MS): Promise<T> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    if (this.pending.size >= QMP_MAX_PENDING) return Promise.reject(new Error(`QMP ${command}: ${QMP_MAX_PENDING} commands already in flight`));
    const id = `tmr-${this.nextId++}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`QMP ${command}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }), id })}\n`);
    });
  }

  /** Listens to QEMU's asynchronous events; returns the unsubscribe function. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first event named `name` (and matching `where`, if given) within the timeout. */
  waitForEvent(name: string, timeoutMs: number, where: (event: QmpEvent) => boolean = () => true): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`QMP: no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const unsubscribe = this.onEvent((event) => {
        if (event.event !== name || !where(event)) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(event);
      });
    });
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  close(): void {
    this.fail(new Error('QMP client closed'));
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > QMP_MAX_LINE_BYTES) {
      this.fail(new Error(`QMP: a line longer than ${QMP_MAX_LINE_BYTES} bytes`));
      this.socket.destroy();
      return;
    }
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line.length > 0) this.dispatch(line);
    }
  }

  private dispatch(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // QEMU writes only JSON here; a torn line is dropped rather than crashing the agent.
    }
    if ('QMP' in message) {
      const version = (message.QMP as { version?: { qemu?: { major: number; minor: number; micro: number } } }).version?.qemu;
      this.version = version ?? null;
      this.greetingWaiter?.resolve();
      this.greetingWaiter = null;
      return;
    }
    if (typeof message.event === 'string') {
      for (const listener of this.listeners) listener(message as unknown as QmpEvent);
      return;
    }
    const id = typeof message.id === 'string' ? message.id : null;
    const pending = id === null ? undefined : this.pending.get(id);
    if (pending === undefined || id === null) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string };
      pending.reject(new QmpError(pending.command, error.class ?? 'GenericError', error.desc ?? 'unknown error'));
    } else {
      pending.resolve(message.return);
    }
  }

  private fail(error: Error): void {
    if (this.closedError !== null) return;
    this.closedError = error;
    this.greetingWaiter?.reject(error);
    this.greetingWaiter = null;
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
  }
}
