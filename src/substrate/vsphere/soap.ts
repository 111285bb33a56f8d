/**
 * One SOAP call to vCenter's /sdk: the envelope, the session cookie, TLS that is verified (a CA
 * file, or the server's own certificate, optionally pinned by its SHA-256 fingerprint) or refused,
 * a timeout on every call, a bound on the answer's size, and faults turned into coded errors.
 * http:// and unverified certificates are accepted only when the caller says `allowInsecure`
 * (simulators and labs): never silently.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { TomaranaiError } from '../../errors/index.ts';
import { child, childAnyPrefix, parseXml, path, text, type XmlNode } from './xml.ts';

export const SOAP_TIMEOUT_MS = 30_000;
/** WaitForUpdatesEx blocks on the server up to its maxWaitSeconds; the socket waits that plus this. */
export const SOAP_WAIT_GRACE_MS = 10_000;
/** The largest answer read (a RetrievePropertiesEx page of 74 VMs' configs is well below 1 MiB). */
export const SOAP_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface SoapEndpoint {
  readonly url: URL;
  /** Accept http:// and an unverified certificate (simulators, labs). */
  readonly allowInsecure: boolean;
  /** PEM of the CA that signed vCenter's certificate, or of vCenter's own self-signed certificate. */
  readonly caPem?: string;
  /** The SHA-256 fingerprint vCenter's certificate must have (hex, colons optional). */
  readonly pinSha256?: string;
}

export function checkEndpoint(endpoint: SoapEndpoint): void {
  const { url } = endpoint;
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TomaranaiError('TMR_VSPHERE_INSECURE', `--url ${url.href} is neither https:// nor http://`, 'use https://VCENTER/sdk');
  }
  if (url.protocol === 'http:' && !endpoint.allowInsecure) {
    throw new TomaranaiError('TMR_VSPHERE_INSECURE', `--url ${url.href} is plain http: the session cookie and password would travel unencrypted`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new TomaranaiError('TMR_VSPHERE_CREDENTIALS', `--url carries a user name or password`, 'remove them from the URL and use --credentials FILE');
  }
}

const normalisedFingerprint = (value: string): string => value.replace(/:/g, '').toUpperCase();

export class SoapTransport {
  private cookie: string | null = null;
  /**
   * Its own agent, with no TLS session cache: the pin is checked in the handshake
   * (checkServerIdentity), which a resumed session or another client's pooled socket would skip.
   */
  private readonly agent: HttpsAgent;

  constructor(private readonly endpoint: SoapEndpoint) {
    checkEndpoint(endpoint);
    this.agent = new HttpsAgent({ keepAlive: true, maxSockets: 8, maxCachedSessions: 0, ...this.tlsOptions() });
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  get sessionCookie(): string | null {
    return this.cookie;
  }

  clearSession(): void {
    this.cookie = null;
  }

  /** Sends one body (`<Method>…</Method>`), returns the `<MethodResponse>` element; a fault throws. */
  async call(method: string, body: string, timeoutMs = SOAP_TIMEOUT_MS): Promise<XmlNode | undefined> {
    const envelope =
      '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ' +
      'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:vim25">' +
      `<soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
    const answer = await this.post(method, envelope, timeoutMs);
    const document = parseXml(answer.text);
    const soapBody = childAnyPrefix(childAnyPrefix(document, 'Envelope'), 'Body');
    const fault = childAnyPrefix(soapBody, 'Fault');
    if (fault !== undefined) {
      const faultString = text(child(fault, 'faultstring')) || path(fault, 'faultcode');
      const detail = child(fault, 'detail');
      const kind = detail !== undefined && typeof detail !== 'string' ? Object.keys(detail).find((key) => !key.startsWith('@_')) ?? '' : '';
      if (method === 'Login') throw new TomaranaiError('TMR_VSPHERE_LOGIN', `vCenter refused the login: ${faultString}`);
      throw new TomaranaiError('TMR_VSPHERE_FAULT', `${method}: ${kind.replace(/Fault$/, '')}${kind ? ': ' : ''}${faultString}`.slice(0, 600));
    }
    if (answer.status >= 400) throw new TomaranaiError('TMR_VSPHERE_FAULT', `${method}: HTTP ${answer.status} from ${this.endpoint.url.href}`);
    return childAnyPrefix(soapBody, `${method}Response`);
  }

  private post(method: string, envelope: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    const { url } = this.endpoint;
    const headers: Record<string, string> = {
      'Content-Type': 'text/xml; charset=utf-8',
      SOAPAction: 'urn:vim25/6.5',
      'Content-Length': String(Buffer.byteLength(envelope)),
    };
    if (this.cookie !== null) headers.Cookie = this.cookie;
    return new Promise((resolve, reject) => {
      const onResponse = (response: IncomingMessage) => {
        const setCookie = response.headers['set-cookie']?.find((cookie) => cookie.startsWith('vmware_soap_session='));
        if (setCookie !== undefined) this.cookie = setCookie.split(';')[0]!;
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > SOAP_MAX_RESPONSE_BYTES) {
            request.destroy(new TomaranaiError('TMR_VSPHERE_FAULT', `${method}: the answer exceeds ${SOAP_MAX_RESPONSE_BYTES / 1024 / 1024} MiB`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      };
      const options = { method: 'POST', headers, timeout: timeoutMs };
      const request =
        url.protocol === 'http:' ? httpRequest(url, options, onResponse) : httpsRequest(url, { ...options, ...this.tlsOptions(), agent: this.agent }, onResponse);
      request.on('timeout', () => request.destroy(new TomaranaiError('TMR_VSPHERE_UNREACHABLE', `${method}: no answer from ${url.host} within ${timeoutMs} ms`)));
      request.on('error', (error: Error) => {
        if (error instanceof TomaranaiError) return reject(error);
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (/CERT|SELF_SIGNED|UNABLE_TO|PIN/.test(code) || error.message.includes('pinned')) {
          return reject(new TomaranaiError('TMR_VSPHERE_INSECURE', `${url.host}: the certificate was not verified (${error.message})`));
        }
        reject(new TomaranaiError('TMR_VSPHERE_UNREACHABLE', `${method}: ${url.host}: ${error.message}`));
      });
      request.end(envelope);
    });
  }

  private tlsOptions(): { rejectUnauthorized: boolean; ca?: string; checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined } {
    const { caPem, pinSha256, allowInsecure } = this.endpoint;
    if (caPem === undefined && pinSha256 === undefined && allowInsecure) return { rejectUnauthorized: false };
    const pin = pinSha256 === undefined ? null : normalisedFingerprint(pinSha256);
    return {
      rejectUnauthorized: true,
      ...(caPem === undefined ? {} : { ca: caPem }),
      // With a pin the fingerprint is the server's identity (a self-signed vCenter names no host we know).
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        if (pin === null) return checkServerIdentity(_host, cert);
        return normalisedFingerprint(cert.fingerprint256) === pin ? undefined : new Error(`the certificate is not the pinned one (SHA-256 ${cert.fingerprint256})`);
      },
    };
  }
}
