/**
 * Single sign-on in a real browser: headless Chromium opens the dashboard of a running service
 * (`startService` with `directory`), clicks "log in with the hospital account", signs in at a real
 * OpenID provider (oidc-provider, its login and consent pages), and comes back logged in with the
 * role the provider's groups map to; the handoff code is gone from the address bar.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboard } from '../../src/api/plugins/web.ts';
import { startService, type RunningService } from '../../src/api/server.ts';
import { CHROMIUM_ARGS } from '../../src/runtime/pdf.ts';
import { parseDirectoryConfig } from '../../src/service/auth/directory-config.ts';
import { ROOT } from '../support/blueprints.ts';
import { CLIENT_ID, CLIENT_SECRET, startProvider, type TestProvider } from '../support/oidc-provider.ts';
import { CHROMIUM, HAS_CHROMIUM, skipNotice } from './chromium.ts';

skipNotice('the single sign-on browser test', HAS_CHROMIUM ? [] : [CHROMIUM]);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe.skipIf(!HAS_CHROMIUM)('single sign-on in headless Chromium', () => {
  let provider: TestProvider;
  let service: RunningService;
  let browser: Browser;

  beforeAll(async () => {
    await ensureDashboard();
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/v1/oidc/callback`;
    provider = await startProvider([redirectUri]);
    provider.accounts.set('nurse', ['icu-operators']);
    const secret = join(mkdtempSync(join(tmpdir(), 'tomaranai-sso-')), 'client.secret');
    writeFileSync(secret, CLIENT_SECRET, { mode: 0o600 });
    service = await startService({
      db: 'sqlite::memory:',
      substrate: 'twin',
      blueprintSource: readFileSync(join(ROOT, 'blueprints/regional-hospital.yaml'), 'utf8'),
      port,
      logger: false,
      scryptCost: { N: 1024, r: 8, p: 1 },
      directory: parseDirectoryConfig(`
oidc: { issuer: "${provider.issuer}", clientId: ${CLIENT_ID}, clientSecretFile: "${secret}", redirectUri: "${redirectUri}", allowHttp: true }
roles: [{ group: icu-operators, role: operator }]
`),
    });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    await provider?.close();
  });

  it('logs in at the provider and lands on the dashboard as an operator', async () => {
    const context = await browser.newContext({ locale: 'en-US' });
    await context.addInitScript(() => localStorage.setItem('tomaranai.lang', 'en'));
    const page = await context.newPage();
    await page.goto(`${service.url}/`);
    await page.click('#oidc-login');
    await page.fill('input[name=login]', 'nurse');
    await page.fill('input[name=password]', 'any password');
    await page.click('button[type=submit]');
    // The provider's consent page, then back to the dashboard.
    await page.click('button[type=submit]');
    await page.waitForSelector('.who', { timeout: 20_000 });
    expect(await page.textContent('.who')).toContain('nurse (operator)');
    expect(page.url()).not.toContain('handoff');
    const token = await page.evaluate(() => sessionStorage.getItem('tomaranai.token'));
    const me = await fetch(`${service.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ username: 'nurse', role: 'operator' });
    await context.close();
  }, 60_000);
});
