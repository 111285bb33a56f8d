/** Every API error code is documented in docs/api.md, and the docs name no code that does not exist. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_ERRORS } from '../../src/errors/index.ts';

const docs = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

describe('API error registry', () => {
  it('documents every code with its status', () => {
    for (const [code, spec] of Object.entries(API_ERRORS)) {
      const row = docs.split('\n').find((line) => line.startsWith(`| \`${code}\``));
      expect(row, `${code} is not in docs/api.md`).toBeDefined();
      expect(row).toContain(`| ${spec.status} |`);
      expect(spec.hint.length).toBeGreaterThan(10);
    }
  });

  it('documents no code the registry does not have', () => {
    const documented = [...docs.matchAll(/`(TMR_API_[A-Z_]+)`/g)].map((match) => match[1]!);
    for (const code of documented) expect(Object.keys(API_ERRORS)).toContain(code);
  });
});
