/** What the service commands share: their output, argument parsers, opening the database, errors. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { TomaranaiError } from '../errors/index.ts';
import { openStorage, type Storage } from '../service/storage.ts';

export interface ServiceIo {
  out(text: string): void;
  err(text: string): void;
}

export const REFERENCE_BLUEPRINT = new URL('../../blueprints/university-hospital.yaml', import.meta.url).pathname;
export const DEFAULT_DB = 'sqlite:./tomaranai.db';
export const DEMO_USER = 'demo';
export const DEMO_SPEED = 10;

export function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new InvalidArgumentError('a port from 0 to 65535');
  return Number(value);
}

export function parsePositive(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0 || number > 1_000_000) throw new InvalidArgumentError('a positive number');
  return number;
}

export function parseNonNegative(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || number > 1440) throw new InvalidArgumentError('a number of minutes from 0 to 1440');
  return number;
}

export function parseTime(value: string): number {
  if (/^\d{1,16}$/.test(value)) return Number(value);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('an ISO 8601 time (2026-01-31T00:00:00Z) or Unix milliseconds');
  return ms;
}

export function readSource(file: string): string {
  return readFileSync(file, 'utf8');
}

export async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

export async function withStorage<T>(db: string, work: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage(db, { instanceId: 'cli' });
  try {
    return await work(storage);
  } finally {
    await storage.close();
  }
}

export function reportError(io: ServiceIo, setExitCode: (code: number) => void, error: unknown): void {
  if (error instanceof TomaranaiError) {
    io.err(`${error.code}: ${error.message} (${error.hint})\n`);
    setExitCode(1);
    return;
  }
  throw error;
}
