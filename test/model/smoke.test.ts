import { describe, expect, it } from 'vitest';
import { loadBlueprint } from '../../src/model/index.ts';

describe('blueprint loading', () => {
  it('reports an empty document as a problem, not a crash', () => {
    const result = loadBlueprint('');
    expect(result.ok).toBe(false);
  });
});
