/**
 * A PDF of a printable report, through headless Chromium driven by playwright-core (Debian's
 * `chromium` package; no browser download). This is the one adapter in report/: it is loaded only
 * by the `report` command and by tests, never by the core's computations, and it takes the browser
 * path from its caller rather than from the environment.
 */
import { TomaranaiError } from '../errors/index.ts';

export const DEFAULT_CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'] as const;

/** Renders an HTML document to an A4 PDF; the document needs nothing from the network. */
export async function renderPdf(html: string, options: { executablePath?: string; timeoutMs?: number } = {}): Promise<Uint8Array> {
  const { chromium } = await import('playwright-core');
  const executablePath = options.executablePath ?? DEFAULT_CHROMIUM;
  let browser;
  try {
    browser = await chromium.launch({ executablePath, args: [...CHROMIUM_ARGS], timeout: options.timeoutMs ?? 30_000 });
  } catch (error) {
    throw new TomaranaiError('TMR_REPORT_NO_BROWSER', `cannot start Chromium at ${executablePath}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, 'install it (`sudo apt-get install -y chromium`, or scripts/ci-chromium.sh), or give --chromium PATH');
  }
  try {
    const page = await browser.newPage();
    // No request may leave the page: the report is self-contained.
    await page.route('**/*', (route) => (route.request().url().startsWith('data:') ? route.continue() : route.abort()));
    await page.setContent(html, { waitUntil: 'load', timeout: options.timeoutMs ?? 30_000 });
    await page.emulateMedia({ media: 'print' });
    return await page.pdf({ format: 'A4', printBackground: true, preferCSSPageSize: true });
  } finally {
    await browser.close();
  }
}
