/**
 * docs/errors.md and the codes in src/ stay in step: every code the source can produce is
 * documented with what it means and how to fix it, and every documented code still exists.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PROBLEM_CODES } from '../../src/model/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const CODE = 'TMR_[A-Z][A-Z0-9_]*';

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js|mjs|cjs|tsx)$/.test(entry.name) ? [path] : [];
  });
}

/**
 * Codes anywhere under src/, with a file that uses each: string literals ('TMR_X'), and the keys
 * of registries (`TMR_X: …` at the start of a line), which are identifiers rather than literals.
 */
function codesInSource(): Map<string, string> {
  const codes = new Map<string, string>();
  const literal = new RegExp(`(['"\`])(${CODE})\\1`, 'g');
  const registryKey = new RegExp(`^\\s*()(${CODE})\\s*:`, 'gm');
  for (const file of sourceFiles(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const match of [...text.matchAll(literal), ...text.matchAll(registryKey)]) {
      if (!codes.has(match[2]!)) codes.set(match[2]!, file.slice(root.length));
    }
  }
  return codes;
}

interface Section {
  readonly code: string;
  readonly body: string;
}

function documentedSections(): Section[] {
  const text = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const sections: Section[] = [];
  const heading = new RegExp(`^## (${CODE})\\s*$`, 'gm');
  const matches = [...text.matchAll(heading)];
  matches.forEach((match, index) => {
    const end = matches[index + 1]?.index ?? text.length;
    sections.push({ code: match[1]!, body: text.slice(match.index! + match[0].length, end) });
  });
  return sections;
}

describe('docs/errors.md', () => {
  const source = codesInSource();
  const sections = documentedSections();
  const documented = new Set(sections.map((section) => section.code));

  it('finds the codes it checks, in the source and in the document', () => {
    for (const code of Object.keys(PROBLEM_CODES)) expect(source.has(code), code).toBe(true);
    expect(sections.length).toBeGreaterThan(0);
  });

  it('documents every code that appears in src/', () => {
    const undocumented = [...source].filter(([code]) => !documented.has(code)).map(([code, file]) => `${code} (used in ${file})`);
    expect(undocumented, 'add a "## CODE" section to docs/errors.md').toEqual([]);
  });

  it('documents only codes that exist in src/', () => {
    const stale = [...documented].filter((code) => !source.has(code));
    expect(stale, 'remove these sections or restore the codes').toEqual([]);
  });

  it('documents each code once', () => {
    const codes = sections.map((section) => section.code);
    expect(codes).toEqual([...new Set(codes)]);
  });

  it('says for each code what it means and how to fix it', () => {
    for (const section of sections) {
      expect(section.body, section.code).toMatch(/\*\*Means[^*]*:\*\* *\S/);
      expect(section.body, section.code).toMatch(/\*\*Fix:\*\* *\S/);
    }
  });
});
