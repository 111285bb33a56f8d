/**
 * The `tomaranai` command line. It is the edge: it reads files and the environment, parses flags
 * with commander, and hands typed values to the core.
 */
import { readFileSync, statSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { blueprintJsonSchema, formatProblem, loadBlueprint, BLUEPRINT_SIZE_LIMIT_BYTES, type LoadResult } from '../model/index.ts';

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const defaultIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Reads and validates a blueprint file; never throws. */
export function readBlueprintFile(file: string): LoadResult {
  try {
    const size = statSync(file).size;
    if (size > BLUEPRINT_SIZE_LIMIT_BYTES) {
      // Read only enough to report the size: a huge file is never parsed.
      return loadBlueprint(new Uint8Array(size));
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

export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('tomaranai')
    .description('SLA-driven continuity control plane for hospital systems on virtual machines')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

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
      exitCode = result.ok ? 0 : 1;
    });

  program
    .command('schema')
    .description('print the JSON Schema of the blueprint format (for editors)')
    .action(() => {
      io.out(`${JSON.stringify(blueprintJsonSchema(), null, 2)}\n`);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    throw error;
  }
  return exitCode;
}
