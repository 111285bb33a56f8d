/**
 * The Hospital view's vSphere drift section in headless Chromium against the real service (the
 * regional hospital on the twin, an in-memory database): with no `vsphere.drift` entry it says the
 * watch is not configured; after a report seeded through the audit inbox exactly as
 * `serve --vsphere-drift` queues it, it shows each difference (kind, object, vCenter against the
 * blueprint); after a report that clears it, it says no drift. A viewer (no audit.read) sees no section.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboard } from '../../src/api/plugins/web.ts';
import { CHROMIUM_ARGS } from '../../src/runtime/pdf.ts';
import { startService, type RunningService } from '../../src/api/server.ts';
import { ROOT } from '../support/blueprints.ts';
import { CHROMIUM, HAS_CHROMIUM, skipNotice } from './chromium.ts';

const PASSWORD = 'a demo password for the drift test';
const VCENTER = 'https://vcenter.hospital.example/sdk';

skipNotice('the vSphere drift dashboard test', HAS_CHROMIUM ? [] : [CHROMIUM]);

describe.skipIf(!HAS_CHROMIUM)('the vSphere drift section of the Hospital view', () => {
  let service: RunningService;
  let browser: Browser;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    await ensureDashboard();
    service = await startService({
      db: 'sqlite::memory:',
      substrate: 'twin',
      blueprintSource: readFileSync(join(ROOT, 'blueprints/regional-hospital.yaml'), 'utf8'),
      port: 0,
      speed: 20,
      logger: false,
      scryptCost: { N: 1024, r: 8, p: 1 },
    });
    for (const [username, role] of [['admin', 'admin'], ['viewer', 'viewer']] as const) {
      await service.storage.accounts.addUser(username, PASSWORD, role);
      tokens[username] = (await service.storage.accounts.createToken(username, 'e2e', null)).token;
    }
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  });

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
  });

  async function hospitalAs(username: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript((token) => {
      sessionStorage.setItem('tomaranai.token', token);
      localStorage.setItem('tomaranai.lang', 'en');
    }, tokens[username]!);
    const page = await context.newPage();
    await page.goto(`${service.url}/#/hospital`);
    await page.waitForSelector('#hospital[data-painted="true"]');
    return page;
  }

  /** As `startServeDrift` (src/cli/service.ts) queues a report; the leader journals the inbox. */
  async function seedReport(data: Record<string, unknown>): Promise<void> {
    const before = service.storage.journal.length;
    await service.storage.accounts.queueAudit('vsphere.drift', VCENTER, 'vsphere-drift', data);
    await expect.poll(() => service.storage.journal.entries(before + 1).some((entry) => entry.type === 'vsphere.drift'), { timeout: 10_000 }).toBe(true);
  }

  it('says the drift watch is not configured while the journal has no report, and hides the section from a viewer', async () => {
    const page = await hospitalAs('admin');
    await page.waitForSelector('#vsphere-drift[data-drift="none"]');
    expect(await page.textContent('#drift-state')).toContain('drift watch is not configured');
    await page.context().close();
    const viewer = await hospitalAs('viewer');
    expect(await viewer.locator('#vsphere-drift').count()).toBe(0);
    await viewer.context().close();
  });

  it('shows the latest report with each difference, then no drift once it clears', async () => {
    await seedReport({
      differences: 2,
      appearedCount: 2,
      appeared: ['override emr-db-1: restart priority medium (blueprint: restart priority highest)', 'group tmr-room-a-vms: 3 members (blueprint: 4 members)'],
      clearedCount: 0,
      cleared: [],
    });
    const page = await hospitalAs('admin');
    await page.waitForSelector('#vsphere-drift[data-drift="drift"]');
    expect(await page.textContent('#drift-state')).toContain('differences now: 2');
    expect(await page.textContent('#vsphere-drift .drift-report')).toContain(VCENTER);
    const rows = await page.locator('#vsphere-drift .drift-difference').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rows).toEqual([
      ['override', 'emr-db-1', 'restart priority medium', 'restart priority highest'],
      ['group', 'tmr-room-a-vms', '3 members', '4 members'],
    ]);
    mkdirSync(join(ROOT, 'out/screenshots'), { recursive: true });
    await page.locator('#vsphere-drift').screenshot({ path: join(ROOT, 'out/screenshots/hospital-drift-en.png') });
    await page.context().close();

    await seedReport({ differences: 0, appearedCount: 0, appeared: [], clearedCount: 2, cleared: ['override emr-db-1', 'group tmr-room-a-vms'] });
    const after = await hospitalAs('admin');
    await after.waitForSelector('#vsphere-drift[data-drift="clean"]');
    expect(await after.textContent('#drift-state')).toContain('No drift reported');
    // The newest first; the earlier report stays listed below it.
    expect(await after.locator('#vsphere-drift .drift-report').count()).toBe(2);
    expect(await after.textContent('#vsphere-drift .drift-report .drift-cleared')).toContain('override emr-db-1');
    await after.context().close();
  });
});
