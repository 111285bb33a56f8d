/**
 * Real receivers on 127.0.0.1 for the notification tests: an SMTP server (smtp-server, STARTTLS
 * with its built-in test certificate), an SNMP notification receiver (net-snmp, answers INFORMs),
 * an HTTP sink that deduplicates on Idempotency-Key like a careful webhook consumer, and an HTTP
 * server that accepts connections and never answers (a hung receiver). Each records what it got
 * and is stopped by the test that started it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSocket } from 'node:dgram';
import type { AddressInfo, Socket } from 'node:net';
import { simpleParser } from 'mailparser';
import snmp from 'net-snmp';
import { SMTPServer } from 'smtp-server';

export interface Mail {
  readonly subject: string;
  readonly text: string;
  readonly messageId: string;
  readonly inReplyTo: string | null;
  readonly key: string;
  readonly overTls: boolean;
}

export async function startSmtpSink(): Promise<{ port: number; mails: Mail[]; stop(): Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          mails.push({
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            messageId: parsed.messageId ?? '',
            inReplyTo: (parsed.inReplyTo as string | undefined) ?? null,
            key: String(parsed.headers.get('x-tomaranai-key') ?? ''),
            overTls: session.secure,
          });
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

export interface Trap {
  readonly oid: string;
  readonly values: Record<string, string | number>;
}

/** A free UDP port (net-snmp's receiver takes a port number, not 0). */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

export async function startSnmpSink(community = 'public'): Promise<{ port: number; traps: Trap[]; stop(): Promise<void> }> {
  const traps: Trap[] = [];
  const port = await freeUdpPort();
  const receiver = snmp.createReceiver({ port, address: '127.0.0.1', transport: 'udp4', disableAuthorization: false }, (error: Error | null, notification: { pdu: { varbinds: { oid: string; value: unknown }[] } } | undefined) => {
    if (error || notification === undefined) return;
    const values: Record<string, string | number> = {};
    let oid = '';
    for (const varbind of notification.pdu.varbinds) {
      if (varbind.oid === '1.3.6.1.6.3.1.1.4.1.0') oid = String(varbind.value);
      else values[varbind.oid] = Buffer.isBuffer(varbind.value) ? varbind.value.toString('utf8') : (varbind.value as number);
    }
    traps.push({ oid, values });
  });
  receiver.getAuthorizer().addCommunity(community);
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { port, traps, stop: () => new Promise((resolve) => receiver.close(() => resolve())) };
}

export interface Hook {
  readonly path: string;
  readonly key: string;
  readonly body: Record<string, unknown>;
  readonly signature: string | null;
}

export interface HttpSink {
  readonly url: string;
  readonly port: number;
  /** Every request, duplicates included. */
  readonly raw: Hook[];
  /** What an idempotent consumer keeps: the first request per Idempotency-Key. */
  readonly accepted: Hook[];
  stop(): Promise<void>;
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** An HTTP sink; `port` 0 takes a free one, a given port is for a receiver that comes back. */
export async function startHttpSink(port = 0): Promise<HttpSink> {
  const raw: Hook[] = [];
  const accepted: Hook[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      const key = String(request.headers['idempotency-key'] ?? '');
      const hook = { path: request.url ?? '', key, body: JSON.parse(text || '{}') as Record<string, unknown>, signature: (request.headers['x-tomaranai-signature'] as string | undefined) ?? null };
      raw.push(hook);
      if (!accepted.some((seen) => seen.key === key)) accepted.push(hook);
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const bound = await listen(server, port);
  return { url: `http://127.0.0.1:${bound}`, port: bound, raw, accepted, stop: () => closeServer(server, sockets) };
}

/** Accepts every connection and request and never answers. */
export async function startHungSink(): Promise<{ url: string; requests: () => number; stop(): Promise<void> }> {
  let requests = 0;
  const sockets = new Set<Socket>();
  const server = createServer(() => {
    requests++;
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listen(server, 0);
  return { url: `http://127.0.0.1:${port}`, requests: () => requests, stop: () => closeServer(server, sockets) };
}

/** A port that nothing listens on now (for a receiver that is down, then comes back on it). */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
