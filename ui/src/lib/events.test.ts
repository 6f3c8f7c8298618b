import { describe, expect, it } from 'vitest';
import { describeEvent, eventEntity, eventTone } from './events';
import type { Event } from './types';

const base = { seq: 1, at: 1_700_000_000_000 };

describe('activity lines', () => {
  it('names the entity or the connection', () => {
    expect(eventEntity({ ...base, type: 'nudged', connection: 'c', entity: 'items' })).toBe('c/items');
    expect(eventEntity({ ...base, type: 'circuit_closed', connection: 'c' })).toBe('c');
    expect(eventEntity({ ...base, type: 'replay_progress', done: 1, total: 2, replayed: 1, superseded: 0, still_failing: 0 })).toBeNull();
  });

  it('says what happened in plain words', () => {
    const failed: Event = { ...base, type: 'cycle_finished', connection: 'c', entity: 'e', outcome: 'failed', records: 0, error: 'HTTP 503 after 5 tries', tracking_id: 't' };
    expect(describeEvent(failed)).toBe('failed: HTTP 503 after 5 tries');
    expect(eventTone(failed)).toBe('bad');
    const waiting: Event = { ...failed, outcome: 'waiting', error: 'rate limited by the source; the source asked to wait 365 days (Retry-After)' };
    expect(describeEvent(waiting)).toMatch(/^waiting: rate limited/);
    expect(eventTone(waiting)).toBe('warn');
    const retry: Event = { ...base, type: 'retrying', connection: 'c', entity: 'e', attempt: 2, wait_ms: 1500, reason: 'server error', http_status: 503, tracking_id: null };
    expect(describeEvent(retry)).toBe('retry 2 in 1.5 s: server error (HTTP 503)');
    expect(describeEvent({ ...base, type: 'page_applied', connection: 'c', entity: 'e', records: 1000, failed: 2, checkpoint: '99' })).toBe(
      'page applied: 1,000 records, 2 failed, checkpoint 99',
    );
    expect(describeEvent({ ...base, type: 'conflict_settled', connection: 'a', entity: 'items', record_id: 'r2', kept: 'b', policy: 'newest' })).toBe(
      "r2 changed on both systems: kept `b`'s version (newest)",
    );
    expect(describeEvent({ ...base, type: 'ingest_applied', connection: 'c', entity: 'e', batch: 'msg_1', records: 3, failed: 1, state: 'partly_failed' })).toBe(
      'pushed batch msg_1 applied: 3 records, 1 failed',
    );
    expect(describeEvent({ ...base, type: 'deletion_guard_tripped', connection: 'c', entity: 'e', would_delete: 600, live: 1000 })).toMatch(/600 of 1,000/);
  });
});
