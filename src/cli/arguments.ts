/**
 * Parsers of command-line values that more than one command takes, so each is checked (and its
 * error worded) in one place. commander calls them; a bad value ends as exit status 2 with the
 * InvalidArgumentError's sentence.
 */
import { InvalidArgumentError } from 'commander';

/** A seed of a simulated run: a whole number that fits 32 bits. */
export function parseSeed(value: string): number {
  if (!/^\d{1,10}$/.test(value) || Number(value) > 0xffffffff) {
    throw new InvalidArgumentError('a seed is a whole number from 0 to 4294967295');
  }
  return Number(value);
}

/** A range of seeds, `A-B` (both included) or one seed: at most 10,000 of them. */
export function parseSeedRange(value: string): number[] {
  const match = /^(\d{1,10})(?:-(\d{1,10}))?$/.exec(value);
  const from = match === null ? NaN : Number(match[1]);
  const to = match === null ? NaN : Number(match[2] ?? match[1]);
  if (!(from <= to) || to > 0xffffffff || to - from >= 10_000) {
    throw new InvalidArgumentError('seeds are a range A-B of whole numbers (A ≤ B, at most 10000 seeds), e.g. 1-50');
  }
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}

/** A whole number of days from 1 to 60. */
export function parseDays(value: string): number {
  if (!/^\d{1,2}$/.test(value) || Number(value) < 1 || Number(value) > 60) throw new InvalidArgumentError('a whole number of days from 1 to 60');
  return Number(value);
}
