/**
 * HTTPS (issue 14, point 8): `serve --tls-cert --tls-key` serves TLS 1.2+ with
 * Strict-Transport-Security, and only that; half a configuration is refused with a code.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startService } from '../../src/api/server.ts';

const SMALL = readFileSync(new URL('../api/small-hospital.yaml', import.meta.url), 'utf8');

function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tomaranai-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

describe('HTTPS', () => {
  it('serves the API over TLS with HSTS, trusted through the certificate it was given', async () => {
    const { cert, key } = selfSigned();
    const service = await startService({ db: 'sqlite::memory:', substrate: 'twin', blueprintSource: SMALL, port: 0, logger: false, tlsCertFile: cert, tlsKeyFile: key, scryptCost: { N: 1024, r: 8, p: 1 } });
    try {
      expect(service.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const answer = await new Promise<{ status: number; hsts: string | undefined; protocol: string }>((resolve, reject) => {
        const req = request(`${service.url}/healthz`, { ca: readFileSync(cert) }, (response) => {
          response.resume();
          resolve({ status: response.statusCode ?? 0, hsts: response.headers['strict-transport-security'] as string | undefined, protocol: (response.socket as unknown as { getProtocol(): string }).getProtocol() });
        });
        req.on('error', reject);
        req.end();
      });
      expect(answer.status).toBe(200);
      expect(answer.hsts).toBe('max-age=31536000');
      expect(answer.protocol).toMatch(/^TLSv1\.[23]$/);
      // Plain HTTP to the same port gets no API.
      await expect(fetch(service.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
    } finally {
      await service.stop();
    }
  });

  it('refuses a certificate without its key', async () => {
    const { cert } = selfSigned();
    await expect(startService({ db: 'sqlite::memory:', substrate: 'twin', blueprintSource: SMALL, port: 0, logger: false, tlsCertFile: cert })).rejects.toMatchObject({ code: 'TMR_SERVICE_TLS' });
  });
});
