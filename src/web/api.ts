/**
 * The dashboard talks only to /api/v1 with the user's session token (kept for this tab only, in
 * sessionStorage). Errors keep the API's code, so a view can say what went wrong.
 */
import type { JournalEntryDto, MeDto } from '../dto/index.ts';

export type Me = MeDto;

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'tomaranai.token';

export function token(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(value: string | null): void {
  if (value === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, value);
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  const bearer = token();
  if (bearer !== null) headers.authorization = `Bearer ${bearer}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`/api/v1${path}`, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) });
  const text = await response.text();
  const body = text === '' ? null : (JSON.parse(text) as unknown);
  if (!response.ok) {
    const error = (body as { error?: { code: string; message: string } } | null)?.error;
    throw new ApiFailure(response.status, error?.code ?? 'TMR_API_INTERNAL', error?.message ?? response.statusText);
  }
  return body as T;
}

export type JournalEntry = JournalEntryDto;

/**
 * Server-sent events with the token in a header (EventSource cannot send one): a streamed fetch,
 * parsed line by line, reconnecting after the last id it saw. Returns a function that stops it.
 */
export function streamEvents(onEntry: (entry: JournalEntry) => void, onState: (state: 'open' | 'closed') => void): () => void {
  const controller = new AbortController();
  let lastId: string | null = null;
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const headers: Record<string, string> = { authorization: `Bearer ${token() ?? ''}`, accept: 'text/event-stream' };
        if (lastId !== null) headers['last-event-id'] = lastId;
        const response = await fetch('/api/v1/events', { headers, signal: controller.signal });
        if (!response.ok || response.body === null) throw new Error(`events: ${response.status}`);
        onState('open');
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('id: ')) lastId = line.slice(4);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (data !== '') onEntry(JSON.parse(data) as JournalEntry);
          }
        }
      } catch {
        if (stopped) return;
      }
      onState('closed');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}
