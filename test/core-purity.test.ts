import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/blueprints.ts';

const CORE = ['src/model', 'src/ports', 'src/capacity', 'src/plan', 'src/analysis', 'src/control', 'src/detect', 'src/report'];
const FORBIDDEN = [/Date\.now\(/, /new Date\(/, /Math\.random\(/, /setTimeout\(/, /setInterval\(/, /performance\.now\(/, /from ['"]node:/, /process\.env/, /from ['"](\.\.\/)+(substrate|journal|api|cli|web|drill)\//];

function files(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('the core is deterministic and free of adapters', () => {
  it('reads no clock, randomness, timers, environment or node: module, and imports no adapter', () => {
    const offences: string[] = [];
    for (const folder of CORE) {
      for (const file of files(join(ROOT, folder))) {
        readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, index) => {
            if (line.trim().startsWith('//') || line.trim().startsWith('*')) return;
            for (const pattern of FORBIDDEN) if (pattern.test(line)) offences.push(`${file.slice(ROOT.length)}:${index + 1}: ${line.trim()}`);
          });
      }
    }
    expect(offences).toEqual([]);
  });
});
