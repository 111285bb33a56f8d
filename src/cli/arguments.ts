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
