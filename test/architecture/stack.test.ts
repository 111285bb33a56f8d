/**
 * The architecture issue's checks, in `npm test`: the import stack of .dependency-cruiser.cjs
 * (no cycle, no upward or sideways import), the size limits (no file over 600 lines, no function
 * over 120), and the golden outputs of every deterministic run (scripts/golden.ts), which a
 * structural change must leave byte-identical. A change that alters behaviour on purpose
 * regenerates test/fixtures/golden.txt and says why in its commit.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sizeBreaches } from '../../scripts/size-limits.ts';
import { ROOT } from '../support/blueprints.ts';

describe('architecture', () => {
  it('every import in src/ follows the stack and no file is in a cycle', () => {
    const result = spawnSync(join(ROOT, 'node_modules/.bin/depcruise'), ['src', '--output-type', 'err'], { cwd: ROOT, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toContain('no dependency violations found');
    expect(result.status).toBe(0);
  });

  it('the stack check fails on an upward import and on a cycle', () => {
    // The rule set itself must bite: a tree where the model imports the controller is refused.
    const tree = mkdtempSync(join(tmpdir(), 'tomaranai-stack-'));
    mkdirSync(join(tree, 'src/model'), { recursive: true });
    mkdirSync(join(tree, 'src/control'), { recursive: true });
    writeFileSync(join(tree, 'tsconfig.json'), readFileSync(join(ROOT, 'tsconfig.json')));
    writeFileSync(join(tree, 'src/model/blueprint.ts'), "import { decide } from '../control/decide.ts';\nexport const x = decide;\n");
    writeFileSync(join(tree, 'src/control/decide.ts'), "import { x } from '../model/blueprint.ts';\nexport const decide = () => x;\n");
    const result = spawnSync(join(ROOT, 'node_modules/.bin/depcruise'), ['src', '--output-type', 'err', '--config', join(ROOT, '.dependency-cruiser.cjs')], { cwd: tree, encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toContain('layer-model: src/model/blueprint.ts → src/control/decide.ts');
    expect(result.stdout).toContain('no-circular');
  });

  it('no source file over 600 lines, no function over 120', () => {
    expect(sizeBreaches(ROOT).map((breach) => `${breach.file}:${breach.line} ${breach.what} ${breach.lines}`)).toEqual([]);
  });

  it('every deterministic run gives its golden output', () => {
    const output = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/golden.ts', '--check', 'test/fixtures/golden.txt'], { cwd: ROOT, encoding: 'utf8' });
    expect(output).toMatch(/golden: \d+ lines identical/);
  }, 120_000);
});
