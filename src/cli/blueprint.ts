/**
 * The blueprint on the command line: reading a blueprint file (never throwing: a missing, huge or
 * binary file is a problem like any other), printing its problems, and the commands `validate FILE`
 * and `schema`. Every command that takes a blueprint loads it through `blueprintOrReport`.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { blueprintJsonSchema, formatProblem, loadBlueprint, BLUEPRINT_SIZE_LIMIT_BYTES, type Blueprint, type LoadResult } from '../model/index.ts';
import type { CliIo } from './io.ts';

/** Reads and validates a blueprint file; never throws. */
export function readBlueprintFile(file: string): LoadResult {
  try {
    const size = statSync(file).size;
    if (size > BLUEPRINT_SIZE_LIMIT_BYTES) {
      // A huge file is neither read nor parsed: its size is the problem.
      return {
        ok: false,
        problems: [
          {
            code: 'TMR_BLUEPRINT_TOO_LARGE',
            severity: 'error',
            path: [],
            line: 1,
            col: 1,
            message: `the file is ${(size / 1024 / 1024).toFixed(1)} MiB, larger than the ${BLUEPRINT_SIZE_LIMIT_BYTES / 1024 / 1024} MiB a blueprint may be`,
            hint: 'a hospital blueprint is a few hundred KiB; check that this is the right file',
          },
        ],
      };
    }
    return loadBlueprint(readFileSync(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      problems: [
        {
          code: 'TMR_BLUEPRINT_NOT_TEXT',
          severity: 'error',
          path: [],
          line: 1,
          col: 1,
          message: code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'this is a directory, not a file' : `cannot read the file (${code ?? 'error'})`,
          hint: 'give the path of a blueprint YAML file, e.g. blueprints/university-hospital.yaml',
        },
      ],
    };
  }
}

/** Loads a blueprint or prints its problems; null means "exit 1". */
export function blueprintOrReport(file: string, io: CliIo): Blueprint | null {
  const result = readBlueprintFile(file);
  if (result.ok) return result.blueprint;
  for (const entry of result.problems) io.err(`${formatProblem(file, entry)}\n`);
  io.err(`${file}: not a valid blueprint; fix the problems above (\`tomaranai validate ${file}\`)\n`);
  return null;
}

export function registerBlueprintCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('validate')
    .description('check a blueprint; prints FILE:LINE:COL: message (hint) per problem')
    .argument('<file>', 'blueprint YAML')
    .option('--json', 'print the problems as one JSON document')
    .action((file: string, options: { json?: boolean }) => {
      const result = readBlueprintFile(file);
      const problems = result.ok ? result.warnings : result.problems;
      if (options.json) {
        io.out(`${JSON.stringify({ file, valid: result.ok, problems }, null, 2)}\n`);
      } else {
        for (const entry of problems) io.out(`${formatProblem(file, entry)}\n`);
        if (result.ok) {
          const blueprint = result.blueprint;
          io.err(
            `${file}: valid: ${blueprint.services.length} services, ${blueprint.vms.length} VMs, ${blueprint.hosts.length} hosts in ${blueprint.rooms.length} rooms\n`,
          );
        }
      }
      setExitCode(result.ok ? 0 : 1);
    });

  program
    .command('schema')
    .description('print the JSON Schema of the blueprint format (for editors)')
    .action(() => {
      io.out(`${JSON.stringify(blueprintJsonSchema(), null, 2)}\n`);
    });
}
