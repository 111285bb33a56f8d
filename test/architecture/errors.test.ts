/**
 * One error registry, one error class (the architecture issue): every code src/ raises is in the
 * registry (src/errors) or is a blueprint problem code (model/problems.ts, reported as a list, not
 * thrown), and no other error class copies TomaranaiError's shape. Three low-level classes stay on
 * purpose: a failed process (CommandError) and a QMP protocol error (QmpError) carry an exit status
 * or a QEMU error class, not a user-facing code, and the dashboard's ApiFailure is the browser's
 * view of an API error body.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors/index.ts';
import { PROBLEM_CODES } from '../../src/model/index.ts';
import { ROOT } from '../support/blueprints.ts';

function sources(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const ALLOWED_CLASSES = new Set(['TomaranaiError', 'CommandError', 'QmpError', 'ApiFailure']);

describe('errors', () => {
  const files = sources(join(ROOT, 'src')).map((path) => ({ path: path.slice(ROOT.length), text: readFileSync(path, 'utf8') }));

  it('declares no error class but the one and the three low-level ones', () => {
    const classes = files.flatMap(({ path, text }) => [...text.matchAll(/class (\w+) extends Error\b/g)].map((match) => `${match[1]} (${path})`));
    expect(classes.filter((entry) => !ALLOWED_CLASSES.has(entry.split(' ')[0]!))).toEqual([]);
  });

  it('raises only codes the registry or the blueprint problems know', () => {
    const known = new Set([...Object.keys(ERRORS), ...Object.keys(PROBLEM_CODES)]);
    const unknown = files.flatMap(({ path, text }) => [...text.matchAll(/'(TMR_[A-Z0-9_]+)'/g)].map((match) => match[1]!).filter((code) => !known.has(code)).map((code) => `${code} (${path})`));
    expect(unknown).toEqual([]);
  });

  it('gives every registered code an HTTP status and a hint that says what to do', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(spec.status, code).toBeGreaterThanOrEqual(400);
      expect(spec.hint.length, code).toBeGreaterThan(10);
    }
  });
});
