/**
 * Mutual TLS between the control plane and the host agents. A private CA issues one certificate
 * per host (its name as a DNS subject alternative name, server authentication) and one for the
 * control plane (CN `tomaranai-control-plane`, client authentication). An agent serves only over
 * TLS with its own certificate and answers only a client whose certificate that CA signed *and*
 * names the control plane (another host's certificate is refused); the control plane talks only
 * to an agent whose certificate that CA signed for the host it meant to reach, whatever address
 * answers. The bearer token stays as a second factor.
 *
 * `tomaranai agent certs --out DIR --hosts a,b` issues them with Debian's `openssl` command (Node
 * can verify X.509 certificates but not issue them); a hospital may supply its own in the same
 * layout instead:
 *
 *   DIR/ca.pem                         the CA that signs agents and the control plane
 *   DIR/ca.key                         its key (0600; only `agent certs` needs it, keep it offline)
 *   DIR/control-plane.pem, .key        the control plane's client certificate (CN tomaranai-control-plane) and key
 *   DIR/<host>.pem, <host>.key         each host agent's server certificate and key
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { TomaranaiError } from '../../errors/index.ts';
import { run } from './command.ts';

export const CONTROL_PLANE_NAME = 'tomaranai-control-plane';
const CERTIFICATE_DAYS = 825;
const CA_DAYS = 3650;
const NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,62}$/;

export interface TlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

function readPair(directory: string, name: string): TlsMaterial {
  const file = (suffix: string) => join(directory, `${name}${suffix}`);
  try {
    return { ca: readFileSync(join(directory, 'ca.pem'), 'utf8'), cert: readFileSync(file('.pem'), 'utf8'), key: readFileSync(file('.key'), 'utf8') };
  } catch (error) {
    throw new TomaranaiError('TMR_AGENT_TLS', `cannot read the TLS material for ${name} in ${directory}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The control plane's client certificate, key and the agents' CA. */
export function readControlPlaneTls(directory: string): TlsMaterial {
  return readPair(directory, 'control-plane');
}

/** A host agent's server certificate, key and the CA it requires of its clients. */
export function readAgentTls(directory: string, host: string): TlsMaterial {
  return readPair(directory, host);
}

/** A host for `agent certs`: `name` or `name=address` (the address is added as an IP name too). */
export function parseCertificateHosts(list: string): { name: string; address?: string }[] {
  const hosts = list.split(',').map((item) => item.trim()).filter((item) => item !== '');
  if (hosts.length === 0) throw new TomaranaiError('TMR_AGENT_TLS', 'name at least one host: --hosts a,b,…');
  return hosts.map((item) => {
    const [name = '', address] = item.split('=');
    if (!NAME_PATTERN.test(name) || name === 'control-plane' || name === 'ca') throw new TomaranaiError('TMR_AGENT_TLS', `${JSON.stringify(name)} cannot name a host certificate`);
    if (address !== undefined && isIP(address) === 0) throw new TomaranaiError('TMR_AGENT_TLS', `${JSON.stringify(address)} is not an IP address (for ${name})`);
    return address === undefined ? { name } : { name, address };
  });
}

/**
 * Issues a CA, the control plane's client certificate and one server certificate per host into
 * `out` (keys 0600), with EC P-256 keys. Returns the files written.
 */
export async function issueAgentCertificates(options: { out: string; hosts: readonly { name: string; address?: string }[] }): Promise<string[]> {
  const out = options.out;
  await mkdir(out, { recursive: true, mode: 0o700 });
  const scratch = await mkdtemp(join(tmpdir(), 'tmr-certs-'));
  const openssl = (args: string[]) =>
    run(['openssl', ...args], { timeoutMs: 30_000 }).catch((error: unknown) => {
      throw new TomaranaiError('TMR_AGENT_TLS', `openssl failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await openssl(['req', '-x509', ...newKey, '-keyout', join(out, 'ca.key'), '-out', join(out, 'ca.pem'), '-days', String(CA_DAYS), '-subj', '/CN=Tomaranai agent CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const issue = async (name: string, extensions: string, commonName = name) => {
      const extensionsFile = join(scratch, `${name}.ext`);
      await writeFile(extensionsFile, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n${extensions}\n`);
      await openssl(['req', '-new', ...newKey, '-keyout', join(out, `${name}.key`), '-out', join(scratch, `${name}.csr`), '-subj', `/CN=${commonName}`]);
      await openssl(['x509', '-req', '-in', join(scratch, `${name}.csr`), '-CA', join(out, 'ca.pem'), '-CAkey', join(out, 'ca.key'), '-set_serial', `0x${Date.now().toString(16)}${Math.floor(performance.now() * 1000).toString(16)}`, '-days', String(CERTIFICATE_DAYS), '-out', join(out, `${name}.pem`), '-extfile', extensionsFile]);
    };
    await issue('control-plane', 'extendedKeyUsage=clientAuth', CONTROL_PLANE_NAME);
    for (const host of options.hosts) {
      await issue(host.name, `extendedKeyUsage=serverAuth\nsubjectAltName=DNS:${host.name}${host.address === undefined ? '' : `,IP:${host.address}`}`);
    }
    const written = ['ca.pem', 'ca.key', 'control-plane.pem', 'control-plane.key', ...options.hosts.flatMap((host) => [`${host.name}.pem`, `${host.name}.key`])].map((file) => join(out, file));
    for (const file of written) await chmod(file, file.endsWith('.key') ? 0o600 : 0o644);
    return written;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Whether a TLS client certificate is the control plane's (the CA check is done by the TLS layer). */
export function isControlPlaneCertificate(socket: unknown): boolean {
  const tlsSocket = socket as Partial<TLSSocket>;
  if (typeof tlsSocket.getPeerCertificate !== 'function' || tlsSocket.authorized !== true) return false;
  const peer: PeerCertificate = tlsSocket.getPeerCertificate();
  return peer.subject?.CN === CONTROL_PLANE_NAME;
}

/** One HTTP(S) request to a host's agent. With TLS: our client certificate, and the agent's must name `host`. */
export interface AgentRequest {
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly token: string;
  readonly body?: unknown;
  readonly timeoutMs: number;
  readonly tls: TlsMaterial | null;
  /** A keep-alive agent made by `agentConnectionPool` (TLS only), so polls do not shake hands every time. */
  readonly pool?: HttpsAgent;
}

export function agentConnectionPool(tls: TlsMaterial): HttpsAgent {
  return new HttpsAgent({ keepAlive: true, maxSockets: 8, ca: tls.ca, cert: tls.cert, key: tls.key });
}

/** Resolves with the status and parsed JSON body; rejects on a network or TLS error or a timeout. */
export function agentRequest(request: AgentRequest): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
    const headers: Record<string, string> = { authorization: `Bearer ${request.token}` };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const common = { host: request.address, port: request.port, method: request.method, path: request.path, headers, timeout: request.timeoutMs };
    const onResponse = (response: import('node:http').IncomingMessage) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: text === '' ? null : (JSON.parse(text) as unknown) });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      response.on('error', reject);
    };
    const outgoing =
      request.tls === null
        ? httpRequest(common, onResponse)
        : httpsRequest(
            {
              ...common,
              ca: request.tls.ca,
              cert: request.tls.cert,
              key: request.tls.key,
              ...(request.pool === undefined ? { agent: false } : { agent: request.pool }),
              // The agent must prove it is the host we meant, whichever address answered.
              ...(isIP(request.host) === 0 ? { servername: request.host } : {}),
              checkServerIdentity: (_address: string, certificate: PeerCertificate) => checkServerIdentity(request.host, certificate),
            },
            onResponse,
          );
    const timer = setTimeout(() => outgoing.destroy(new Error(`no answer within ${request.timeoutMs} ms`)), request.timeoutMs);
    outgoing.on('close', () => clearTimeout(timer));
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer within ${request.timeoutMs} ms`)));
    outgoing.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    outgoing.end(payload);
  });
}
