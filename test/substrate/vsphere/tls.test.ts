/**
 * TLS to vCenter is verified or refused, never silently insecure: the simulator over https with its
 * self-signed certificate is refused without a CA, accepted with its certificate as the CA file and a
 * matching pin, refused with a wrong pin, and accepted unverified only with allowInsecure.
 */
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VsphereClient } from '../../../src/substrate/vsphere/client.ts';
import { SIMULATOR_CREDENTIALS, startVcsim, vcsimBinary, type RunningVcsim } from './vcsim.ts';

const binary = vcsimBinary();

/** The server's certificate as PEM and its SHA-256 fingerprint, read without trusting it. */
function peerCertificate(url: URL): Promise<{ pem: string; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      const base64 = cert.raw.toString('base64').replace(/(.{64})/g, '$1\n');
      resolve({ pem: `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`, fingerprint: cert.fingerprint256 });
    });
    socket.on('error', reject);
  });
}

describe.skipIf(binary === null)('TLS to the vSphere simulator', () => {
  let sim: RunningVcsim;
  let certificate: { pem: string; fingerprint: string };

  beforeAll(async () => {
    sim = await startVcsim(binary!, ['-tls', '-cluster-host', '1', '-host', '0', '-vm', '0']);
    certificate = await peerCertificate(sim.url);
  }, 30_000);
  afterAll(async () => {
    await sim?.stop();
  });

  it('serves https', () => {
    expect(sim.url.protocol).toBe('https:');
  });

  it('refuses a self-signed certificate it was not given, before sending the password', async () => {
    const client = new VsphereClient({ url: sim.url, allowInsecure: false });
    await expect(client.connect(SIMULATOR_CREDENTIALS)).rejects.toMatchObject({ code: 'TMR_VSPHERE_INSECURE' });
  });

  it('connects with the certificate as its CA file and the matching pin', async () => {
    const client = new VsphereClient({ url: sim.url, allowInsecure: false, caPem: certificate.pem, pinSha256: certificate.fingerprint });
    const content = await client.connect(SIMULATOR_CREDENTIALS);
    expect(content.apiVersion).toBe('6.5');
    await client.logout();
  });

  it('refuses a certificate whose fingerprint is not the pinned one', async () => {
    const wrong = certificate.fingerprint.replace(/^../, certificate.fingerprint.startsWith('00') ? '11' : '00');
    const client = new VsphereClient({ url: sim.url, allowInsecure: false, caPem: certificate.pem, pinSha256: wrong });
    await expect(client.connect(SIMULATOR_CREDENTIALS)).rejects.toMatchObject({ code: 'TMR_VSPHERE_INSECURE', message: expect.stringContaining('not the pinned one') });
  });

  it('accepts it unverified only when told it is a simulator', async () => {
    const client = new VsphereClient({ url: sim.url, allowInsecure: true });
    await client.connect(SIMULATOR_CREDENTIALS);
    await client.logout();
  });
});
