/**
 * Validation never crashes, whatever it is given: a corpus of hostile and odd inputs, then
 * properties over generated text, bytes and mutations of a valid blueprint. Every answer is
 * `ok: true` or a list of problems, each placed at a real line and column with a message and hint.
 *
 * The properties run from a fixed seed so that the suite is deterministic; fast-check prints the
 * seed and path of a failure, and `FC_SEED=<seed> npx vitest run test/model/robustness.test.ts`
 * replays it or explores from another seed (`FC_RUNS=5000` for a longer search).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readBlueprintFile } from '../../src/cli/main.ts';
import {
  BLUEPRINT_SIZE_LIMIT_BYTES,
  loadBlueprint,
  PROBLEM_CODES,
  type LoadResult,
  type Problem,
  type ProblemCode,
} from '../../src/model/index.ts';

const minimalText = readFileSync(fileURLToPath(new URL('../fixtures/valid/minimal.yaml', import.meta.url)), 'utf8');
const seed = Number(process.env.FC_SEED ?? 20_260_101);
const RUNS = Number(process.env.FC_RUNS ?? 300);

/** Loads without letting an exception escape unnoticed: a throw fails the test with the input's name. */
function load(input: string | Uint8Array): LoadResult {
  let result: LoadResult | undefined;
  expect(() => {
    result = loadBlueprint(input);
  }).not.toThrow();
  return result!;
}

function problemsOf(result: LoadResult): readonly Problem[] {
  return result.ok ? result.warnings : result.problems;
}

/** Every problem names a registered code and a position inside `text`, and says what and how. */
function expectWellFormed(result: LoadResult, text: string | null): void {
  expect(typeof result.ok).toBe('boolean');
  if (!result.ok) expect(result.problems.length).toBeGreaterThan(0);
  const lines = text === null ? null : text.split('\n');
  for (const problem of problemsOf(result)) {
    expect(Object.keys(PROBLEM_CODES)).toContain(problem.code);
    expect(Number.isInteger(problem.line) && problem.line >= 1).toBe(true);
    expect(Number.isInteger(problem.col) && problem.col >= 1).toBe(true);
    expect(problem.message.trim()).not.toBe('');
    expect(problem.hint.trim()).not.toBe('');
    if (lines !== null) {
      expect(problem.line).toBeLessThanOrEqual(lines.length);
      expect(problem.col).toBeLessThanOrEqual(lines[problem.line - 1]!.length + 1);
    }
  }
}

/** A deterministic byte stream (a linear congruential generator): the same garbage on every run. */
function garbage(length: number, start: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = start;
  for (let index = 0; index < length; index++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

const NESTING = 10_000;
const billionLaughs = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((name, index) => {
    const previous = 'abcdefgh'[index]!;
    return `${name}: &${name} [${Array(9).fill(`*${previous}`).join(', ')}]`;
  }),
].join('\n');

interface CorpusEntry {
  readonly name: string;
  readonly input: () => string | Uint8Array;
  readonly ok: boolean;
  /** The code of the first problem, where it is certain. */
  readonly code?: ProblemCode;
}

const corpus: readonly CorpusEntry[] = [
  { name: '8 MiB of aliases to one anchor (26 s and 1.6 GB before the limit)', input: () => `a: &a {k: v}\nlist:\n${'  - *a\n'.repeat(Math.floor((8 * 1024 * 1024 - 256) / 7))}`, ok: false, code: 'TMR_BLUEPRINT_TOO_MANY_ALIASES' },
  { name: 'a duplicate key in a flow map', input: () => `${minimalText}extra: {a: 1, a: 2}\n`, ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a duplicate key deep in a block map', input: () => `${minimalText}extra:\n  inner:\n    a: 1\n    b: 2\n    a: 3\n`, ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: '40,000 distinct keys in one map (the duplicate check is linear)', input: () => `${minimalText}extra:\n${Array.from({ length: 40_000 }, (_, index) => `  k${index}: ${index}\n`).join('')}`, ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'an empty file', input: () => '', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'an empty byte array', input: () => new Uint8Array(0), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'whitespace only', input: () => '  \n\t\n   \r\n', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a comment only', input: () => '# nothing here\n', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'null', input: () => 'null\n', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a tilde', input: () => '~', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a number', input: () => '42\n', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a quoted string', input: () => '"a blueprint"\n', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a list', input: () => '- a\n- b\n', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'an empty flow map', input: () => '{}', ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a NUL byte in text', input: () => 'apiVersion: tomaranai/v1\u0000\n', ok: false, code: 'TMR_BLUEPRINT_NOT_TEXT' },
  { name: 'invalid UTF-8', input: () => new Uint8Array([0x61, 0x3a, 0x20, 0xc3, 0x28, 0xff]), ok: false, code: 'TMR_BLUEPRINT_NOT_TEXT' },
  { name: 'UTF-16 with a byte-order mark', input: () => new Uint8Array([0xff, 0xfe, 0x61, 0x00]), ok: false, code: 'TMR_BLUEPRINT_NOT_TEXT' },
  { name: '64 KiB of random bytes', input: () => garbage(65_536, 7), ok: false },
  { name: 'random bytes with the top bit clear', input: () => garbage(4096, 11).map((byte) => byte & 0x7f), ok: false },
  { name: 'the minimal blueprint', input: () => minimalText, ok: true },
  { name: 'the minimal blueprint with a UTF-8 byte-order mark', input: () => `\uFEFF${minimalText}`, ok: true },
  { name: 'the minimal blueprint with CRLF line ends', input: () => minimalText.replace(/\n/g, '\r\n'), ok: true },
  { name: 'the minimal blueprint with old Mac CR line ends', input: () => minimalText.replace(/\n/g, '\r'), ok: false },
  {
    name: 'a size just over the limit',
    input: () => 'a'.repeat(BLUEPRINT_SIZE_LIMIT_BYTES + 1),
    ok: false,
    code: 'TMR_BLUEPRINT_TOO_LARGE',
  },
  { name: `${NESTING} unclosed [`, input: () => '['.repeat(NESTING), ok: false, code: 'TMR_BLUEPRINT_TOO_DEEP' },
  { name: `${NESTING} nested flow sequences`, input: () => '['.repeat(NESTING) + ']'.repeat(NESTING), ok: false, code: 'TMR_BLUEPRINT_TOO_DEEP' },
  { name: `${NESTING} nested flow maps`, input: () => '{a: '.repeat(NESTING) + '1' + '}'.repeat(NESTING), ok: false, code: 'TMR_BLUEPRINT_TOO_DEEP' },
  { name: `${NESTING} nested compact block lists`, input: () => `${'- '.repeat(NESTING)}x\n`, ok: false, code: 'TMR_BLUEPRINT_TOO_DEEP' },
  {
    name: '3,000 nested block lists, one per line',
    input: () => Array.from({ length: 3000 }, (_, depth) => `${' '.repeat(depth)}-`).join('\n'),
    ok: false,
    code: 'TMR_BLUEPRINT_TOO_DEEP',
  },
  {
    name: '3,000 nested block maps',
    input: () => `${Array.from({ length: 3000 }, (_, depth) => `${' '.repeat(depth)}a:`).join('\n')} 1\n`,
    ok: false,
    code: 'TMR_BLUEPRINT_TOO_DEEP',
  },
  {
    name: 'alternating block lists and maps, 2,000 deep',
    input: () => Array.from({ length: 2000 }, (_, depth) => `${' '.repeat(depth)}${depth % 2 ? 'a:' : '-'}`).join('\n'),
    ok: false,
    code: 'TMR_BLUEPRINT_TOO_DEEP',
  },
  {
    name: '8 MB of [, just under the size limit',
    input: () => '['.repeat(BLUEPRINT_SIZE_LIMIT_BYTES - 1),
    ok: false,
    code: 'TMR_BLUEPRINT_TOO_DEEP',
  },
  {
    name: '65 nested lists inside the description',
    input: () => `${minimalText}description: ${'['.repeat(65)}${']'.repeat(65)}\n`,
    ok: false,
    code: 'TMR_BLUEPRINT_TOO_DEEP',
  },
  { name: 'a billion-laughs alias bomb', input: () => billionLaughs, ok: false },
  {
    name: 'an alias bomb inside a valid blueprint',
    input: () => `${minimalText}description: *i\n${billionLaughs.replace(/^(\w): /gm, 'x-$1: ')}\n`,
    ok: false,
  },
  { name: 'a self-referencing alias', input: () => 'a: &a\n  b: *a\n', ok: false },
  { name: 'a self-referencing alias as the services list', input: () => `${minimalText.replace('services:', 'services: &s')}flows: *s\n`, ok: false },
  { name: 'an undefined alias', input: () => 'hosts: *nothing\n', ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a number of 400 digits', input: () => minimalText.replace('cores: 32', `cores: ${'9'.repeat(400)}`), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a number beyond double precision', input: () => minimalText.replace('cores: 32', 'cores: 1e400'), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a huge hexadecimal port', input: () => minimalText.replace('port: 5432', 'port: 0x7fffffffffffffffffff'), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a NaN port', input: () => minimalText.replace('port: 5432', 'port: .nan'), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a negative infinite vCPU', input: () => minimalText.replace('vcpu: 8', 'vcpu: -.inf'), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a name of 1 MB', input: () => minimalText.replace('name: minimal-hospital', `name: ${'a'.repeat(1_000_000)}`), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a key of 2 MB', input: () => `${'k'.repeat(2_000_000)}: 1\n`, ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a description of 5 MB', input: () => `${minimalText}description: ${'x'.repeat(5_000_000)}\n`, ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a line of 1 MB of spaces', input: () => `${' '.repeat(1_000_000)}\n${minimalText}`, ok: true },
  { name: 'a unicode blueprint name', input: () => minimalText.replace('name: minimal-hospital', 'name: 東大病院'), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'an emoji service name', input: () => minimalText.replace('name: ehr-app', 'name: "🏥"'), ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  {
    name: 'unicode in a title',
    input: () => minimalText.replace('  - name: ehr-app\n', '  - name: ehr-app\n    title: "電子カルテ 🏥 עברית e\u0301"\n'),
    ok: true,
  },
  { name: 'a duplicate top-level key', input: () => `${minimalText}hosts: []\n`, ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a duplicate key in a host', input: () => minimalText.replace('    rack: r2\n', '    rack: r2\n    rack: r3\n'), ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a __proto__ key', input: () => `${minimalText}__proto__: {polluted: true}\n`, ok: false, code: 'TMR_BLUEPRINT_SCHEMA' },
  { name: 'a constructor tier', input: () => minimalText.replace('  continuous:\n', '  constructor: {}\n  continuous:\n'), ok: true },
  { name: 'two documents', input: () => `${minimalText}---\n${minimalText}`, ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a tab as indentation', input: () => minimalText.replace('    tier: critical', '\ttier: critical'), ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'an unknown tag', input: () => minimalText.replace('port: 5432', 'port: !secret 5432'), ok: false },
  { name: 'a binary tag', input: () => minimalText.replace('vendor: vendor-a', 'vendor: !!binary aGVsbG8='), ok: false },
  { name: 'a collection as a key', input: () => `? [a, b]\n: c\n${minimalText}`, ok: false },
  { name: 'an unterminated quote', input: () => `${minimalText}description: "never closed\n`, ok: false, code: 'TMR_BLUEPRINT_YAML' },
  { name: 'a directive without a document', input: () => '%YAML 1.2\n', ok: false },
];

describe('validation never crashes on odd input', () => {
  for (const entry of corpus) {
    it(`${entry.name}: ${entry.ok ? 'is valid' : 'is a problem, not a crash'}`, () => {
      const input = entry.input();
      const started = performance.now();
      const result = load(input);
      expect(performance.now() - started).toBeLessThan(5000);
      expectWellFormed(result, typeof input === 'string' ? input : null);
      expect(result.ok).toBe(entry.ok);
      if (entry.code !== undefined && !result.ok) expect(result.problems[0]!.code).toBe(entry.code);
    });
  }

  it('a __proto__ key does not pollute the prototype of objects', () => {
    load(`${minimalText}__proto__: {polluted: true}\n`);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a deep document validated again and again in one process still ends as a problem', () => {
    // The second deep parse once aborted the whole process: a stack overflow inside the YAML
    // composer let V8 compile a regular expression on an exhausted stack, a fatal error.
    for (let round = 0; round < 5; round++) {
      for (const text of ['['.repeat(NESTING) + ']'.repeat(NESTING), `${'- '.repeat(NESTING)}x`, '{a: '.repeat(NESTING)]) {
        const result = load(text);
        expect(result.ok ? null : result.problems[0]!.code).toBe('TMR_BLUEPRINT_TOO_DEEP');
      }
    }
  });
});

describe('reading a blueprint file', () => {
  let directory = '';
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'tomaranai-robustness-'));
  });
  afterAll(() => {
    rmSync(directory, { recursive: true, force: true });
  });

  it('refuses a 50 MB file by its size, quickly and without parsing it', () => {
    const file = join(directory, 'huge.yaml');
    const line = Buffer.from('  - {from: ehr-app, to: ehr-db, port: 5432}\n');
    const size = 50 * 1024 * 1024;
    const content = Buffer.alloc(size);
    for (let offset = 0; offset < size; offset += line.length) line.copy(content, offset);
    writeFileSync(file, content);
    const started = performance.now();
    const result = readBlueprintFile(file);
    expect(performance.now() - started).toBeLessThan(2000);
    expectWellFormed(result, null);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems).toHaveLength(1);
      expect(result.problems[0]!.code).toBe('TMR_BLUEPRINT_TOO_LARGE');
      expect(result.problems[0]!.message).toContain('50.0 MiB');
    }
  });

  it('reports binary garbage on disk as not text', () => {
    const file = join(directory, 'garbage.yaml');
    writeFileSync(file, garbage(10_000, 3));
    const result = readBlueprintFile(file);
    expectWellFormed(result, null);
    expect(result.ok ? null : result.problems[0]!.code).toBe('TMR_BLUEPRINT_NOT_TEXT');
  });

  it('reports a missing file and a directory as problems', () => {
    for (const path of [join(directory, 'missing.yaml'), directory]) {
      const result = readBlueprintFile(path);
      expectWellFormed(result, null);
      expect(result.ok).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const yamlFragment = fc.constantFrom(
  '-', ' ', '  ', '\n', ':', ': ', '- ', '[', ']', '{', '}', ',', '"', "'", '#', '&a ', '*a', '!', '!!str ', '|', '>',
  '?', '%', '@', '`', '\t', '\r\n', '\\', '~', 'null', 'true', '0x1F', '1e400', '-.inf', 'name', 'name: ', 'hosts:',
  'services:', 'dependsOn: ', 'ehr-db', 'tier: ', 'continuous', '<<: ', '---\n', '...\n', '\uFEFF', 'é', '東', '🏥',
);

describe('validation never crashes on generated input', () => {
  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        expectWellFormed(load(text), text);
      }),
      { numRuns: RUNS, seed },
    );
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        expectWellFormed(load(bytes), null);
      }),
      { numRuns: RUNS, seed },
    );
  });

  it('never throws on strings made of YAML punctuation and blueprint words', () => {
    fc.assert(
      fc.property(fc.array(yamlFragment, { maxLength: 120 }), (fragments) => {
        const text = fragments.join('');
        expectWellFormed(load(text), text);
      }),
      { numRuns: RUNS, seed },
    );
  });

  it('never throws, and places every problem in the file, when the minimal blueprint is spliced with YAML fragments', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.array(yamlFragment, { minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 4 }),
        (splices) => {
          let text = minimalText;
          for (const [at, fragments] of splices) {
            const offset = at % (text.length + 1);
            text = text.slice(0, offset) + fragments.join('') + text.slice(offset);
          }
          expectWellFormed(load(text), text);
        },
      ),
      { numRuns: RUNS, seed },
    );
  });
});

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Key = string | number;

interface Mutation {
  readonly kind: 'delete' | 'replace' | 'duplicate' | 'rename';
  readonly target: number;
  readonly value: Json;
  readonly name: string;
}

/** Paths of every node below the root, in document order. */
function nodePaths(value: Json, prefix: Key[] = []): Key[][] {
  const paths: Key[][] = [];
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      paths.push([...prefix, index], ...nodePaths(item, [...prefix, index]));
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) paths.push([...prefix, key], ...nodePaths(item, [...prefix, key]));
  }
  return paths;
}

function nodeAt(root: Json, path: readonly Key[]): Json | undefined {
  let node: Json | undefined = root;
  for (const key of path) {
    if (Array.isArray(node) && typeof key === 'number') node = node[key];
    else if (node !== null && typeof node === 'object' && !Array.isArray(node) && typeof key === 'string') node = node[key];
    else return undefined;
  }
  return node;
}

/** Applies one mutation; the target is taken modulo the candidates so that every draw applies. */
function mutate(root: Json, mutation: Mutation): void {
  const paths = nodePaths(root);
  const candidates =
    mutation.kind === 'rename'
      ? paths.filter((path) => typeof nodeAt(root, path) === 'string')
      : mutation.kind === 'duplicate'
        ? paths.filter((path) => Array.isArray(nodeAt(root, path.slice(0, -1))))
        : paths;
  const path = candidates[mutation.target % Math.max(1, candidates.length)];
  if (path === undefined) return;
  const parent = nodeAt(root, path.slice(0, -1));
  const key = path[path.length - 1]!;
  if (Array.isArray(parent) && typeof key === 'number') {
    if (mutation.kind === 'delete') parent.splice(key, 1);
    else if (mutation.kind === 'duplicate') parent.splice(key, 0, structuredClone(parent[key]!));
    else parent[key] = mutation.kind === 'rename' ? mutation.name : mutation.value;
  } else if (parent !== null && typeof parent === 'object' && !Array.isArray(parent) && typeof key === 'string') {
    if (mutation.kind === 'delete') delete parent[key];
    else parent[key] = mutation.kind === 'rename' ? mutation.name : mutation.value;
  }
}

const knownNames = [
  'ehr-db', 'ehr-app', 'ds-1', 'gen-1', 'grid-1', 'r1', 'r2', 'room-1', 'server', 'unit-r32', 'r1-h1', 'continuous',
  'critical', 'standard', 'deferred',
];
const mutationArbitrary: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('delete', 'replace', 'duplicate', 'rename'),
  target: fc.nat(),
  value: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  name: fc.oneof(fc.constantFrom(...knownNames, 'nope', 'critcal', 'ehr-bd', '', 'Ehr-DB', 'a'.repeat(70)), fc.string({ maxLength: 12 })),
});

describe('validation of a mutated blueprint', () => {
  it('never throws, places every problem within the file, and answers the same twice', () => {
    const original = parse(minimalText) as Json;
    fc.assert(
      fc.property(fc.array(mutationArbitrary, { minLength: 1, maxLength: 6 }), (mutations) => {
        const document = structuredClone(original);
        for (const mutation of mutations) mutate(document, mutation);
        const text = stringify(document);
        const result = load(text);
        expectWellFormed(result, text);
        expect(load(text)).toEqual(result);
      }),
      { numRuns: RUNS, seed },
    );
  });

  it('reports a renamed reference as an unknown reference at its own line', () => {
    // A sanity check of the mutation machinery: one rename, one problem, at the renamed node.
    const document = structuredClone(parse(minimalText) as Json);
    const path = ['services', 1, 'dependsOn', 0];
    mutate(document, { kind: 'rename', target: nodePaths(document).filter((candidate) => typeof nodeAt(document, candidate) === 'string').findIndex((candidate) => candidate.join('.') === path.join('.')), value: null, name: 'nope' });
    const text = stringify(document);
    const result = load(text);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.map((problem) => problem.code)).toEqual(['TMR_BLUEPRINT_UNKNOWN_REF']);
      expect(result.problems[0]!.path).toEqual(path);
      expect(text.split('\n')[result.problems[0]!.line - 1]).toContain('- nope');
    }
  });
});
