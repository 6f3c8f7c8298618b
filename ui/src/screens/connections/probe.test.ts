import { describe, expect, it } from 'vitest';
import { ConnectionTest } from './probe.svelte';

const answer = { ok: false, http_status: 503, latency_ms: 12, message: 'unavailable', tracking_id: 'abc' } as never;

describe('ConnectionTest', () => {
  it('keeps the answer, and a refusal as its message; a new run clears the last one', async () => {
    const t = new ConnectionTest();
    await t.run(async () => answer);
    expect(t.result).toEqual(answer);
    expect(t.running).toBe(false);
    await t.run(async () => {
      throw { code: 'not_found', message: 'no connection "x"' };
    });
    expect(t.result).toBeNull();
    expect(t.error).toBe('no connection "x"');
    t.reset();
    expect(t.error).toBeNull();
  });

  it('is running while the call is out', async () => {
    const t = new ConnectionTest();
    let release!: () => void;
    const p = t.run(() => new Promise((r) => (release = () => r(answer))));
    expect(t.running).toBe(true);
    release();
    await p;
    expect(t.running).toBe(false);
  });
});
