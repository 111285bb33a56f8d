/** Where the end-to-end and PDF tests find Debian's Chromium and poppler's pdftotext; they skip, saying why, without them. */
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
export const PDFTOTEXT = '/usr/bin/pdftotext';
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const HAS_PDFTOTEXT = existsSync(PDFTOTEXT);

export function skipNotice(what: string, missing: string[]): void {
  if (missing.length > 0) process.stderr.write(`\nSKIPPED ${what}: ${missing.join(' and ')} missing; install with scripts/ci-chromium.sh (Debian: apt-get install -y chromium poppler-utils)\n`);
}
