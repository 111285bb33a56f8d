/**
 * Size limits of the source tree (the architecture issue): no file in src/ over 600 lines and no
 * function over 120 lines, generated data excepted. Uses the TypeScript compiler's own parser, so a
 * function is what TypeScript calls one: declarations, methods, constructors, accessors, arrow
 * functions and function expressions.
 *
 *   node --import tsx scripts/size-limits.ts        prints every breach, exits 1 if any
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const MAX_FILE_LINES = 600;
export const MAX_FUNCTION_LINES = 120;

/** Files that hold generated or tabular data rather than logic. */
const GENERATED = new Set<string>();

export interface SizeBreach {
  readonly file: string;
  readonly line: number;
  readonly what: string;
  readonly lines: number;
  readonly limit: number;
}

function sourceFiles(directory: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(path);
  }
  return files.sort();
}

function functionName(node: ts.Node, source: ts.SourceFile): string {
  const named = node as ts.Node & { name?: ts.Node };
  if (named.name) return named.name.getText(source);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(source);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(source);
  return '(anonymous)';
}

export function sizeBreaches(root: string): SizeBreach[] {
  const breaches: SizeBreach[] = [];
  for (const path of sourceFiles(join(root, 'src'))) {
    const file = relative(root, path);
    if (GENERATED.has(file)) continue;
    const text = readFileSync(path, 'utf8');
    const total = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (total > MAX_FILE_LINES) breaches.push({ file, line: 1, what: 'file', lines: total, limit: MAX_FILE_LINES });
    const source = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node): void => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
        const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
        const lines = end - start + 1;
        if (lines > MAX_FUNCTION_LINES) {
          breaches.push({ file, line: start + 1, what: `function ${functionName(node, source)}`, lines, limit: MAX_FUNCTION_LINES });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return breaches;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('../', import.meta.url));
  const breaches = sizeBreaches(root);
  for (const breach of breaches) console.log(`${breach.file}:${breach.line}: ${breach.what} is ${breach.lines} lines (limit ${breach.limit})`);
  console.log(breaches.length === 0 ? 'size limits: none exceeded' : `size limits: ${breaches.length} exceeded`);
  process.exit(breaches.length === 0 ? 0 : 1);
}
