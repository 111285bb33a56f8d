/**
 * `tomaranai report` turns a room-failure drill into a printable HTML and a PDF; the PDF is read back
 * with pdftotext and must carry the scope, the measured RTO of every affected service, the
 * invariants and the MHLW guideline mapping.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerReportCommands } from '../../src/cli/report.ts';
import { runDrill } from '../../src/drill/sim/run.ts';
import type { DrillReport } from '../../src/report/drill-report.ts';
import { renderDrillReportHtml } from '../../src/report/html.ts';
import { ROOT, shipped } from '../support/blueprints.ts';
import { CHROMIUM, HAS_CHROMIUM, HAS_PDFTOTEXT, skipNotice } from './chromium.ts';

const OUT = join(ROOT, 'out/reports');
const BLUEPRINT = join(ROOT, 'blueprints/university-hospital.yaml');

async function report(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let code = 0;
  let out = '';
  let err = '';
  const program = new Command('tomaranai').exitOverride();
  registerReportCommands(program, { out: (text) => (out += text), err: (text) => (err += text) }, (value) => (code = value));
  await program.parseAsync(args, { from: 'user' });
  return { code, out, err };
}

/** pdftotext breaks lines and may space CJK text; compare without whitespace. */
const squash = (text: string) => text.replace(/\s+/g, '');

describe('tomaranai report', () => {
  let drill: DrillReport;
  let jsonPath: string;
  beforeAll(() => {
    mkdirSync(OUT, { recursive: true });
    drill = runDrill({ blueprint: shipped('university-hospital'), scenario: 'room-failure', seed: 3 }).report;
    jsonPath = join(OUT, 'room-failure-seed3.json');
    writeFileSync(jsonPath, `${JSON.stringify(drill, null, 2)}\n`);
  });

  it('writes an HTML report with scope, timeline, RTO/RPO per service, shedding, invariants and the MHLW 6.0 mapping', async () => {
    const result = await report(['report', jsonPath, '--format', 'html', '--blueprint', BLUEPRINT, '--out', join(OUT, 'room-failure-seed3.html')]);
    expect(result.code, result.err).toBe(0);
    const html = readFileSync(join(OUT, 'room-failure-seed3.html'), 'utf8');
    for (const section of ['scope', 'timeline', 'rto-rpo', 'shed', 'invariants', 'mhlw']) expect(html).toContain(`<section id="${section}">`);
    expect(html).toContain('障害訓練報告書');
    expect(html).toContain('第6.0版');
    expect(html).toContain(`${drill.services.length} システム`);
    for (const service of drill.services.filter((item) => item.affected)) expect(html).toContain(`<td>${service.name}</td>`);
  });

  it('escapes what it prints, so a service name cannot inject markup', () => {
    const hostile = { ...drill, services: [{ ...drill.services[0]!, name: '<script>alert(1)</script>', affected: true }] };
    const html = renderDrillReportHtml(hostile, { lang: 'en' });
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;');
  });

  it('refuses a file that is not a drill report, with a code and a hint', async () => {
    const bad = join(OUT, 'not-a-drill.json');
    writeFileSync(bad, '{"hello": 1}');
    const result = await report(['report', bad]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^TMR_REPORT_NOT_A_DRILL: .*\(make one with/);
  });

  it('writes a PDF whose text, read back with pdftotext, carries the measured values', async (context) => {
    skipNotice('the PDF report test', [...(HAS_CHROMIUM ? [] : [CHROMIUM]), ...(HAS_PDFTOTEXT ? [] : ['pdftotext'])]);
    if (!HAS_CHROMIUM || !HAS_PDFTOTEXT) return context.skip();
    for (const lang of ['en', 'ja'] as const) {
      const pdfPath = join(OUT, `room-failure-seed3.${lang}.pdf`);
      const result = await report(['report', jsonPath, '--format', 'pdf', '--lang', lang, '--blueprint', BLUEPRINT, '--out', pdfPath]);
      expect(result.code, result.err).toBe(0);
      expect(readFileSync(pdfPath).subarray(0, 5).toString()).toBe('%PDF-');
      const text = execFileSync('pdftotext', ['-layout', pdfPath, '-'], { encoding: 'utf8' });
      const flat = squash(text);
      if (lang === 'en') {
        for (const phrase of ['Failure drill report', 'room-failure', 'MHLW Security Guideline 6.0', 'Backups', 'Restore tests', 'Safety invariants', 'Measured RTO and RPO per service against the SLA']) expect(flat).toContain(squash(phrase));
        for (const service of drill.services.filter((item) => item.affected && item.rtoMeasuredS !== null && item.rtoMeasuredS < 120)) {
          // Each affected service's row: its name and its measured RTO as printed (seconds, one decimal).
          expect(flat).toContain(squash(service.name));
          expect(flat).toContain(`${Math.round(service.rtoMeasuredS! * 10) / 10}s`);
        }
      } else {
        for (const phrase of ['障害訓練報告書', '医療情報システムの安全管理に関するガイドライン第6.0版との対応', 'バックアップ', '復旧テスト', '安全性の不変条件']) expect(flat).toContain(squash(phrase));
      }
    }
  });
});
