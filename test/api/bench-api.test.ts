/**
 * `npm run bench` must print its numbers, not stop half-way: the API benchmark once died on
 * `429 TMR_API_TOO_MANY_STREAMS` when streams became limited per account. This runs it and checks
 * that every client was served and every event delivered (its timings are printed, never asserted).
 */
import { describe, expect, it } from 'vitest';
import { benchApi } from '../../bench/api.ts';

describe('the API benchmark', () => {
  it('serves all 200 event-stream clients within the per-account stream limit and delivers every event to each', async () => {
    const results = await benchApi();
    const streams = results.find((result) => result.name.includes('SSE clients'));
    expect(streams?.note).toMatch(/ 40000\/40000 deliveries, 200 clients$/);
    const status = results.find((result) => result.name.startsWith('GET /api/v1/services'));
    expect(status?.value).toBeGreaterThan(0);
  });
});
