/** Runs the service commands in this process, capturing what they print and their exit code. */
import { Command } from 'commander';
import { registerServiceCommands } from '../../src/cli/service.ts';

export async function runCli(argv: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command('tomaranai').exitOverride().configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (err += text) });
  registerServiceCommands(program, { out: (text) => (out += text), err: (text) => (err += text) }, (value) => (code = value));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    err += String(error);
    code = code || 2;
  }
  return { code, out, err };
}
