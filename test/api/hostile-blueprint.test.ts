/**
 * No blueprint a caller sends can stall the control plane (issue 14, point 1). Before, a 40,000-key
 * document held the event loop for ~19 s (the YAML library's duplicate-key check is quadratic) and
 * an alias-heavy 8 MiB one for minutes: /healthz and the controller, which share the loop, waited.
 * Now candidates are read in a worker thread within a budget: /healthz answers while the hostile
 * review runs, the review is refused with a code, and nothing changes.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { harness, SMALL_SOURCE, type Harness } from './harness.ts';

/** A blueprint that is valid YAML up to a map of `keys` distinct keys under one service. */
function manyKeys(keys: number): string {
  const lines = [SMALL_SOURCE.trimEnd(), 'x-extra:'];
  for (let index = 0; index < keys; index++) lines.push(`  k${index}: ${index}`);
  return `${lines.join('\n')}\n`;
}

/** Just under 8 MiB of aliases to one anchor: ~1.2 million alias nodes (26 s and 1.6 GB in `validate` before). */
function aliasBomb(): string {
  const lines = ['a: &a {k: v}', 'list:'];
  const count = Math.floor((8 * 1024 * 1024 - 256) / 7);
  for (let index = 0; index < count; index++) lines.push('  - *a');
  return `${lines.join('\n')}\n`;
}

describe('hostile blueprints', () => {
  let h: Harness | null = null;
  afterEach(async () => {
    await h?.app.close();
    h = null;
  });

  for (const [name, source] of [
    ['40,000 keys', manyKeys(40_000)],
    ['an alias bomb of 8 MiB', aliasBomb()],
  ] as const) {
    it(`refuses ${name} with a code while /healthz keeps answering, and changes nothing`, async () => {
      h = await harness();
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
      const versionBefore = h.plane.blueprintVersion;
      const startedAt = performance.now();
      let reviewDoneAt = Number.POSITIVE_INFINITY;
      const review = fetch(`${base}/api/v1/blueprint/review`, {
        method: 'POST',
        headers: { authorization: `Bearer ${h.tokens.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ source }),
      }).then(async (response) => {
        reviewDoneAt = performance.now();
        return { status: response.status, body: (await response.json()) as { error: { code: string; message: string } } };
      });
      // /healthz answers while the review is still being worked on.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const health = await fetch(`${base}/healthz`);
      const healthAt = performance.now();
      expect(health.status).toBe(200);
      const refused = await review;
      expect(healthAt, 'the health check answered only after the review finished: the loop was blocked').toBeLessThan(reviewDoneAt);
      expect(refused.status).toBe(422);
      expect(['TMR_API_BLUEPRINT_BUDGET', 'TMR_API_BLUEPRINT_INVALID']).toContain(refused.body.error.code);
      expect(refused.body.error.message).toMatch(/nothing was changed/);
      expect(refused.body.error.message).not.toMatch(/reader failed/);
      expect(h.plane.blueprintVersion).toBe(versionBefore);
      // Refused within the budget, with room for a slow machine.
      expect(reviewDoneAt - startedAt).toBeLessThan(10_000);
    }, 60_000);
  }

  it('still reviews a real blueprint after refusing a hostile one (the worker is replaced)', async () => {
    h = await harness();
    const hostile = await h.app.inject({ method: 'POST', url: '/api/v1/blueprint/review', headers: { authorization: `Bearer ${h.tokens.admin}` }, payload: { source: manyKeys(40_000) } });
    expect(hostile.statusCode).toBe(422);
    const fine = await h.app.inject({ method: 'POST', url: '/api/v1/blueprint/review', headers: { authorization: `Bearer ${h.tokens.admin}` }, payload: { source: SMALL_SOURCE } });
    expect(fine.statusCode, fine.body).toBe(200);
    expect(fine.json().diff.unchanged).toBe(true);
  }, 60_000);
});
