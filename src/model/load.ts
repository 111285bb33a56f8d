/**
 * Text → validated, typed blueprint, or every problem with its line and column.
 * Never throws on any input: all failures become problems. This module guards the parser (size,
 * encoding, nesting depth), reads the YAML and checks it against the schema; what the schema cannot
 * say is checked in semantic-checks.ts, and positions come from locate.ts.
 */
import { CST, isMap, isNode, isScalar, Lexer, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { buildBlueprint, type Blueprint } from './blueprint.ts';
import { Locator, problem } from './locate.ts';
import type { Problem, ProblemCode } from './problems.ts';
import { blueprintSchema } from './schema.ts';
import { semanticProblems } from './semantic-checks.ts';

export const BLUEPRINT_SIZE_LIMIT_BYTES = 8 * 1024 * 1024;
export const BLUEPRINT_DEPTH_LIMIT = 64;
/** YAML aliases (`*name`) a blueprint may use: a hand-written one uses a few, the reference hospital none. */
export const BLUEPRINT_ALIAS_LIMIT = 1_000;

export type LoadResult =
  | { readonly ok: true; readonly blueprint: Blueprint; readonly warnings: readonly Problem[] }
  | { readonly ok: false; readonly problems: readonly Problem[] };

export function loadBlueprint(input: string | Uint8Array): LoadResult {
  try {
    return loadUnsafe(input);
  } catch (error) {
    // A last line of defence: a bug or a pathological input must still end as a problem.
    const message = error instanceof Error ? error.message : String(error);
    const code: ProblemCode = error instanceof RangeError ? 'TMR_BLUEPRINT_TOO_DEEP' : 'TMR_BLUEPRINT_YAML';
    return {
      ok: false,
      problems: [
        {
          code,
          severity: 'error',
          path: [],
          line: 1,
          col: 1,
          message: `the blueprint cannot be read: ${message.slice(0, 200)}`,
          hint: 'check that the file is a YAML blueprint; `tomaranai schema` prints the format',
        },
      ],
    };
  }
}

function loadUnsafe(input: string | Uint8Array): LoadResult {
  const empty = new Locator(null, new LineCounter());
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > BLUEPRINT_SIZE_LIMIT_BYTES) {
    return fail([
      problem(
        empty,
        'TMR_BLUEPRINT_TOO_LARGE',
        [],
        `the file is ${(size / 1024 / 1024).toFixed(1)} MiB, larger than the ${BLUEPRINT_SIZE_LIMIT_BYTES / 1024 / 1024} MiB a blueprint may be`,
        'a hospital blueprint is a few hundred KiB; check that this is the right file',
      ),
    ]);
  }
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      return fail([
        problem(empty, 'TMR_BLUEPRINT_NOT_TEXT', [], 'the file is not UTF-8 text', 'save the blueprint as UTF-8 YAML'),
      ]);
    }
  }
  if (text.includes('\u0000')) {
    return fail([
      problem(empty, 'TMR_BLUEPRINT_NOT_TEXT', [], 'the file contains NUL bytes, so it is not a YAML text', 'save the blueprint as UTF-8 YAML'),
    ]);
  }
  if (text.trim() === '') {
    return fail([
      problem(
        empty,
        'TMR_BLUEPRINT_SCHEMA',
        [],
        'the blueprint is empty',
        'start from blueprints/regional-hospital.yaml; `tomaranai schema` prints the format',
      ),
    ]);
  }
  const tooCostly = lexicalProblem(text, empty);
  if (tooCostly !== null) return fail([tooCostly]);
  // Lines are counted here, not by the parser: it misses the line breaks inside the tokens it
  // cannot place (a stray "}" at the top), and every later position then lands on a wrong line.
  const lines = new LineCounter();
  lines.addNewLine(0);
  for (let index = text.indexOf('\n'); index >= 0; index = text.indexOf('\n', index + 1)) lines.addNewLine(index + 1);
  // logLevel 'error': the core never prints; a stringified collection key would otherwise warn on stderr.
  // Duplicate keys are found below in one pass; the parser's own check compares every key with every
  // other key of its map (a 40,000-key map took 6 s).
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: false, logLevel: 'error' });
  const locator = new Locator(document, lines);
  const yamlErrors = [...document.errors, ...duplicateKeys(document.contents)].sort((a, b) => a.pos[0] - b.pos[0]);
  if (yamlErrors.length > 0) {
    return fail(
      yamlErrors.slice(0, 20).map((error) => {
        // linePos is filled in only with prettyErrors; the offset in pos is always there.
        const position = error.linePos?.[0] ?? lines.linePos(error.pos[0]);
        return {
          code: 'TMR_BLUEPRINT_YAML' as const,
          severity: 'error' as const,
          path: [],
          line: position.line,
          col: position.col,
          message: `YAML syntax: ${error.message.split('\n')[0]}`,
          hint: yamlHint(error.code),
        };
      }),
    );
  }
  const depth = nodeDepth(document.contents, 0);
  if (depth > BLUEPRINT_DEPTH_LIMIT) {
    return fail([
      problem(
        locator,
        'TMR_BLUEPRINT_TOO_DEEP',
        [],
        `the document nests ${depth} levels deep; a blueprint needs fewer than ${BLUEPRINT_DEPTH_LIMIT}`,
        'check the indentation; `tomaranai schema` prints the format',
      ),
    ]);
  }
  const data: unknown = document.toJS({ maxAliasCount: 1000 });
  // reportInput: without it zod leaves issue.input undefined, and a wrong type would read as a missing field.
  const parsed = blueprintSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) return fail(schemaProblems(locator, parsed.error.issues));
  const raw = parsed.data;
  const semantic = semanticProblems(locator, raw);
  const errors = semantic.filter((entry) => entry.severity === 'error');
  if (errors.length > 0) return fail(semantic);
  return { ok: true, blueprint: buildBlueprint(raw), warnings: semantic };
}

function fail(problems: Problem[]): LoadResult {
  return { ok: false, problems: problems.sort((a, b) => a.line - b.line || a.col - b.col) };
}

function yamlHint(code: string): string {
  switch (code) {
    case 'DUPLICATE_KEY':
      return 'a key appears twice in one mapping; keep one';
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and the colons on this line';
    case 'MULTILINE_IMPLICIT_KEY':
      return 'a key runs on to the next line: is the colon after the key missing ("key: value")?';
    case 'TAB_AS_INDENT':
      return 'indent YAML with spaces, not tabs';
    default:
      return 'fix the YAML syntax at this position';
  }
}

/**
 * What the lexer alone can tell before the parser runs (the parser's cost grows with both): too
 * many aliases, or nesting far past the limit. Null when neither.
 */
function lexicalProblem(text: string, empty: Locator): Problem | null {
  // The bound is at most twice the depth plus two, so a document within the exact limit, checked
  // after parsing, always passes; four times the limit keeps the parser's own stack shallow.
  const { deepOffset, aliasOffset } = lexicalBounds(text, 4 * BLUEPRINT_DEPTH_LIMIT, BLUEPRINT_ALIAS_LIMIT);
  if (aliasOffset >= 0) {
    const before = text.slice(0, aliasOffset);
    return {
      ...problem(
        empty,
        'TMR_BLUEPRINT_TOO_MANY_ALIASES',
        [],
        `the document uses more than ${BLUEPRINT_ALIAS_LIMIT} YAML aliases; a blueprint needs a few at most`,
        'write the repeated parts out, or use `count:` for identical VMs; every alias is expanded when the blueprint is read',
      ),
      line: before.split('\n').length,
      col: aliasOffset - before.lastIndexOf('\n'),
    };
  }
  if (deepOffset >= 0) {
    const before = text.slice(0, deepOffset);
    return {
      ...problem(
        empty,
        'TMR_BLUEPRINT_TOO_DEEP',
        [],
        `the document nests far deeper than the ${BLUEPRINT_DEPTH_LIMIT} levels a blueprint may use`,
        'check the brackets and the indentation; `tomaranai schema` prints the format',
      ),
      line: before.split('\n').length,
      col: deepOffset - before.lastIndexOf('\n'),
    };
  }
  return null;
}

/** Keys that repeat within one mapping, as the parser would report them, found in one pass per map. */
function duplicateKeys(root: unknown): { code: string; message: string; pos: [number, number]; linePos?: undefined }[] {
  const found: { code: string; message: string; pos: [number, number]; linePos?: undefined }[] = [];
  const visit = (node: unknown, depth: number): void => {
    if (depth > BLUEPRINT_DEPTH_LIMIT || node === null || typeof node !== 'object') return;
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = pair.key;
        const identity = isScalar(key) ? key.value : key;
        if (seen.has(identity)) {
          const start = isNode(key) && key.range ? key.range[0] : 0;
          found.push({ code: 'DUPLICATE_KEY', message: 'Map keys must be unique', pos: [start, start + 1] });
        } else seen.add(identity);
        visit(pair.value, depth + 1);
      }
      return;
    }
    const items = (node as { items?: unknown[] }).items;
    if (Array.isArray(items)) for (const item of items) visit(item, depth + 1);
  };
  visit(root, 0);
  return found;
}

/**
 * Two bounds from the lexer alone, before the parser runs: where the nesting depth first exceeds
 * `depthLimit` (-1 when it does not) and where the aliases first exceed `aliasLimit` (-1 likewise).
 * An alias bomb (8 MiB of `*a`) took the parser 26 s and 1.6 GB before this.
 */
function lexicalBounds(text: string, depthLimit: number, aliasLimit: number): { deepOffset: number; aliasOffset: number } {
  let aliases = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    if (token.startsWith('*') && CST.tokenType(token) === 'alias' && ++aliases > aliasLimit) return { deepOffset: -1, aliasOffset: offset };
    offset += token.length;
  }
  return { deepOffset: nestingBoundExceeded(text, depthLimit), aliasOffset: -1 };
}

/**
 * An upper bound of the nesting depth, from the lexer alone, or -1 when it stays within `limit`.
 * The YAML parser needs memory, and its composer stack, in proportion to the depth: a file of a
 * million "[" exhausts the heap, and a stack overflow inside the composer can abort the process
 * (V8 compiling a regular expression on an exhausted stack), so a deep file must be refused before
 * either runs. Block collections are tracked by the columns where they start (at most two levels,
 * a map and its value's sequence, share a column), flow collections by their brackets.
 * Returns the offset of the token where the bound first exceeds `limit`.
 */
function nestingBoundExceeded(text: string, limit: number): number {
  const starts: number[] = [];
  let offset = 0;
  let column = 0;
  let lineStart = true;
  let afterIndicator = false;
  let scalarNext = false;
  let flowDepth = 0;
  for (const token of new Lexer().lex(text)) {
    if (token === CST.DOCUMENT || token === CST.FLOW_END || token === CST.SCALAR) {
      if (token === CST.SCALAR) scalarNext = true;
      else flowDepth = 0;
      if (token === CST.DOCUMENT) starts.length = 0;
      continue;
    }
    const type = scalarNext ? 'scalar' : CST.tokenType(token);
    scalarNext = false;
    const content = type !== 'space' && type !== 'newline' && type !== 'comment';
    const indicator = type === 'seq-item-ind' || type === 'explicit-key-ind';
    if (flowDepth === 0 && content && (lineStart || afterIndicator || indicator)) {
      while (starts.length > 0 && starts[starts.length - 1]! > column) starts.pop();
      if (starts[starts.length - 1] !== column) starts.push(column);
    }
    if (content) {
      lineStart = false;
      afterIndicator = indicator;
    }
    if (type === 'flow-seq-start' || type === 'flow-map-start') flowDepth++;
    else if ((type === 'flow-seq-end' || type === 'flow-map-end') && flowDepth > 0) flowDepth--;
    if (2 * starts.length + flowDepth > limit) return offset;
    offset += token.length;
    const newline = token.lastIndexOf('\n');
    if (newline < 0) column += token.length;
    else {
      column = token.length - newline - 1;
      if (column === 0) {
        lineStart = true;
        afterIndicator = false;
      }
    }
  }
  return -1;
}

function nodeDepth(node: unknown, depth: number): number {
  if (depth > BLUEPRINT_DEPTH_LIMIT) return depth;
  if (node === null || typeof node !== 'object') return depth;
  const items = (node as { items?: unknown[] }).items;
  if (!Array.isArray(items)) return depth;
  let deepest = depth + 1;
  for (const item of items) {
    const pair = item as { key?: unknown; value?: unknown };
    const child = pair !== null && typeof pair === 'object' && 'value' in pair ? pair.value : item;
    deepest = Math.max(deepest, nodeDepth(child, depth + 1));
    if (deepest > BLUEPRINT_DEPTH_LIMIT) break;
  }
  return deepest;
}

function schemaProblems(locator: Locator, issues: readonly z.core.$ZodIssue[]): Problem[] {
  return issues.slice(0, 100).map((issue) => {
    const path = issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key));
    const field = path.length === 0 ? 'the document' : path.join('.');
    let message = `${field}: ${issue.message}`;
    let hint = 'see `tomaranai schema` for the format of this field';
    if (issue.code === 'unrecognized_keys') {
      message = `${field === 'the document' ? 'top level' : field}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${key}"`).join(', ')}`;
      hint = 'remove it or check its spelling; `tomaranai schema` lists the allowed fields';
      const keyPath = [...path, issue.keys[0]!];
      return { ...problem(locator, 'TMR_BLUEPRINT_SCHEMA', keyPath, message, hint), ...locator.keyAt(keyPath) };
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      message = `${field}: required field is missing`;
      hint = `add "${String(path[path.length - 1])}"`;
    }
    return problem(locator, 'TMR_BLUEPRINT_SCHEMA', path, message, hint);
  });
}
