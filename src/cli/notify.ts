/**
 * `tomaranai notify`: check a notification configuration, and send a test message to one receiver
 * so whoever is on call can see it arrive before it matters (docs/alerts.md).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { TomaranaiError } from '../errors/index.ts';
import { createReceiver, deliverOnce, parseNotifyConfig, renderMessage, testAlert, type NotifyConfig } from '../notify/index.ts';
import type { CliIo } from './io.ts';

function readConfig(file: string): Readonly<NotifyConfig> {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TomaranaiError('TMR_NOTIFY_CONFIG', `${file}: cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parseNotifyConfig(source, file);
}

function report(io: CliIo, setExitCode: (code: number) => void, error: unknown): void {
  if (!(error instanceof TomaranaiError)) throw error;
  io.err(`${error.code}: ${error.message} (${error.hint})\n`);
  setExitCode(1);
}

export function registerNotifyCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const notify = program.command('notify').description('alerts to people: check the notification configuration, send a test message');
  notify
    .command('check')
    .description('validate a notification configuration (the file given to `serve --notify`)')
    .argument('<file>')
    .action((file: string) => {
      try {
        const config = readConfig(file);
        io.out(`ok: ${config.receivers.length} receiver(s) (${config.receivers.map((receiver) => `${receiver.name}: ${receiver.type}`).join(', ')}), ${config.routes.length} route(s)\n`);
      } catch (error) {
        report(io, setExitCode, error);
      }
    });
  notify
    .command('test')
    .description('send a test message to one receiver now and say whether it took it')
    .argument('<receiver>', 'a receiver name from the configuration')
    .requiredOption('--config <file>', 'the notification configuration (as given to `serve --notify`)')
    .option('--json', 'print the outcome as JSON')
    .action(async (name: string, options: { config: string; json?: boolean }) => {
      try {
        const config = readConfig(options.config);
        const receiver = config.receivers.find((candidate) => candidate.name === name);
        if (receiver === undefined) throw new TomaranaiError('TMR_NOTIFY_UNKNOWN_RECEIVER', `no receiver "${name}" in ${options.config}`, `use one of: ${config.receivers.map((candidate) => candidate.name).join(', ') || '(none)'}`);
        const alert = testAlert(name, Date.now());
        const startedMs = performance.now();
        const delivery = await deliverOnce(createReceiver(receiver), alert);
        const durationMs = Math.round(performance.now() - startedMs);
        if (options.json) io.out(`${JSON.stringify({ receiver: name, type: receiver.type, ok: true, key: alert.key, detail: delivery.detail, durationMs })}\n`);
        else io.out(`sent to ${name} (${receiver.type}) in ${durationMs} ms: ${delivery.detail}\n${renderMessage(alert, receiver.language).text}\n`);
      } catch (error) {
        if (options.json && error instanceof TomaranaiError) io.out(`${JSON.stringify({ receiver: name, ok: false, code: error.code, error: error.message })}\n`);
        report(io, setExitCode, error);
      }
    });
}
