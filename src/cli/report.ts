/**
 * `tomaranai report DRILL.json --format html|pdf`: the printable drill report (for the hospital's
 * business-continuity plan and its auditors) from the JSON that `tomaranai drill --json` prints,
 * or from a drill the API returned (`GET /api/v1/drills/{id}`, whose `report` field is used).
 * main.ts registers it with `registerReportCommands`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { DrillReport } from '../report/drill-report.ts';
import { renderDrillReportHtml, type ReportLang } from '../report/html.ts';
import { DEFAULT_CHROMIUM, renderPdf } from '../runtime/pdf.ts';
import { loadBlueprint } from '../model/index.ts';
import { TomaranaiError } from '../errors/index.ts';

export interface ReportIo {
  out(text: string): void;
  err(text: string): void;
}

function fail(io: ReportIo, setExitCode: (code: number) => void, code: string, message: string, hint: string): void {
  io.err(`${code}: ${message} (${hint})\n`);
  setExitCode(1);
}

/** The drill report in a file: a report itself, or an API drill record holding one. */
export function readDrillReport(text: string): DrillReport | null {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return null;
  }
  const candidate = (document as { report?: unknown }).report ?? document;
  const report = candidate as Partial<DrillReport>;
  if (typeof report !== 'object' || report === null || typeof report.scenario !== 'string' || !Array.isArray(report.services) || typeof report.invariants !== 'object') return null;
  return report as DrillReport;
}

export function registerReportCommands(program: Command, io: ReportIo, setExitCode: (code: number) => void): void {
  program
    .command('report')
    .description('a printable drill report (HTML or PDF) for the continuity plan and auditors, from `tomaranai drill --json` output')
    .argument('<drill-json>', 'the JSON report of a drill (`tomaranai drill FILE --scenario … --json > drill.json`)')
    .addOption(new Option('--format <format>', 'html or pdf').choices(['html', 'pdf']).default('html'))
    .addOption(new Option('--lang <lang>', 'language of the report').choices(['ja', 'en']).default('ja'))
    .option('--out <file>', 'output file (default: the input name with .html or .pdf)')
    .option('--blueprint <file>', 'the blueprint the drill ran on, to state its scope (services, VMs, hosts, rooms)')
    .option('--chromium <path>', 'headless Chromium for PDF', DEFAULT_CHROMIUM)
    .action(async (file: string, options: { format: 'html' | 'pdf'; lang: ReportLang; out?: string; blueprint?: string; chromium: string }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        fail(io, setExitCode, 'TMR_REPORT_READ', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'give the path of a drill JSON file');
        return;
      }
      const report = readDrillReport(text);
      if (report === null) {
        fail(io, setExitCode, 'TMR_REPORT_NOT_A_DRILL', `${file} is not a drill report`, 'make one with `tomaranai drill FILE --scenario NAME --json > drill.json`');
        return;
      }
      let scope: { hospital: string; services: number; vms: number; hosts: number; rooms: number } | undefined;
      if (options.blueprint !== undefined) {
        const loaded = loadBlueprint(readFileSync(options.blueprint));
        if (!loaded.ok) {
          fail(io, setExitCode, 'TMR_REPORT_BLUEPRINT', `${options.blueprint} is not a valid blueprint`, `run \`tomaranai validate ${options.blueprint}\``);
          return;
        }
        const blueprint = loaded.blueprint;
        scope = { hospital: blueprint.name, services: blueprint.services.length, vms: blueprint.vms.length, hosts: blueprint.hosts.length, rooms: blueprint.rooms.length };
      }
      const html = renderDrillReportHtml(report, { lang: options.lang, generatedAt: new Date().toISOString(), ...(scope ? { scope } : {}) });
      const out = options.out ?? `${file.replace(/\.json$/i, '')}.${options.format}`;
      if (options.format === 'html') {
        writeFileSync(out, html);
      } else {
        try {
          writeFileSync(out, await renderPdf(html, { executablePath: options.chromium }));
        } catch (error) {
          if (error instanceof TomaranaiError) {
            fail(io, setExitCode, error.code, error.message, error.hint);
            return;
          }
          throw error;
        }
      }
      io.out(`${out}\n`);
      io.err(`report of ${report.scenario} (seed ${report.seed}) on ${report.blueprint}: ${report.summary.met} met, ${report.summary.missed} missed → ${out}\n`);
    });
}
