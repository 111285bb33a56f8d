/**
 * The README is the front door, read in five minutes (the architecture issue): at most 300 lines,
 * every page of docs/ linked from it, and every relative link in the README and docs/ resolving.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/blueprints.ts';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pages = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md'));

describe('README and docs', () => {
  it('keeps the README to 300 lines', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(300);
  });

  it('links every docs page from the README', () => {
    expect(pages.filter((page) => !readme.includes(`(docs/${page}`))).toEqual([]);
  });

  it('has no relative link to a file that does not exist', () => {
    const broken: string[] = [];
    for (const file of ['README.md', ...pages.map((page) => `docs/${page}`)]) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const match of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = match[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(ROOT, dirname(file), target))) broken.push(`${file}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
