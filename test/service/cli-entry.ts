/**
 * The service commands as a process, for tests that start, kill and restart instances (until
 * main.ts registers them, `bin/tomaranai.js serve` is this).
 */
import { Command } from 'commander';
import { registerServiceCommands } from '../../src/cli/service.ts';

let exitCode = 0;
const program = new Command('tomaranai').exitOverride();
registerServiceCommands(program, { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) }, (code) => {
  exitCode = code;
});
try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' });
} catch {
  exitCode = exitCode || 2;
}
process.exitCode = exitCode;
