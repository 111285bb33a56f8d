/**
 * Where in a blueprint's text a problem lies: the line and column of the YAML node at a path (or of
 * its nearest existing ancestor, so a default that has no node still points somewhere useful), and
 * the Problem value built with it. Shared by the loader's syntax and schema checks (load.ts) and
 * the semantic checks (semantic-checks.ts).
 */
import { isMap, isNode, isScalar, LineCounter, type Document } from 'yaml';
import type { Problem, ProblemCode } from './problems.ts';

export type Path = readonly (string | number)[];

export class Locator {
  constructor(
    private readonly document: Document | null,
    private readonly lines: LineCounter,
  ) {}

  /** Position of the node at `path`, or of its nearest existing ancestor. */
  at(path: Path): { line: number; col: number } {
    if (this.document === null) return { line: 1, col: 1 };
    for (let length = path.length; length >= 0; length--) {
      const node = length === 0 ? this.document.contents : this.document.getIn(path.slice(0, length), true);
      if (isNode(node) && node.range) {
        const position = this.lines.linePos(node.range[0]);
        return { line: position.line, col: position.col };
      }
    }
    return { line: 1, col: 1 };
  }

  /** Position of the key that ends `path` (an unknown field), not of its value, which may start a line later. */
  keyAt(path: Path): { line: number; col: number } {
    if (this.document === null || path.length === 0) return this.at(path);
    const parent = path.length === 1 ? this.document.contents : this.document.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return this.at(path);
    const key = String(path[path.length - 1]);
    const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === key);
    if (pair === undefined || !isNode(pair.key) || !pair.key.range) return this.at(path);
    const position = this.lines.linePos(pair.key.range[0]);
    return { line: position.line, col: position.col };
  }
}

export function problem(
  locator: Locator,
  code: ProblemCode,
  path: Path,
  message: string,
  hint: string,
  severity: 'error' | 'warning' = 'error',
): Problem {
  return { code, severity, path: [...path], ...locator.at(path), message, hint };
}

