import { describe, expect, it } from 'vitest';
// The rule itself (tones, the banner's words) is Rust's: crates/syncmon-core/src/facade/verdict_tests.rs.
import { bannerDetail, HEALTH_LABEL, nextAttemptText, resyncText, sortEntities, waitingText } from './health';
import type { EntityStatus, Health, Verdict } from './types';
import { HEALTH_BY_SEVERITY } from './generated/enums';

function ent(entity: string, health: Health, extra: Partial<EntityStatus> = {}): EntityStatus {
  return {
    connection: 'c',
    entity,
    health,
    reason: null,
    checkpoint: '1',
    checkpoint_kind: 'version',
    checkpoint_display: '1',
    last_complete_pass_at: null,
    last_caught_up_at: 0,
    lag_seconds: 0,
    replica_rows: 0,
    pending_failed: 0,
    last_http_status: null,
    last_tracking_id: null,
    next_attempt_at: null,
    waits_for_user: false,
    poll_every_seconds: 60,
    resync_seen: null,
    resync_would_delete: null,
    forward_pending: 0,
    forward_error: null,
    holder: null,
    ...extra,
  };
}

describe('health ordering and thresholds', () => {
  it('sorts worst first, then by name', () => {
    const sorted = sortEntities([ent('b', 'healthy'), ent('a', 'healthy'), ent('z', 'failing'), ent('y', 'lagging'), ent('x', 'circuit_open')]);
    expect(sorted.map((e) => e.entity)).toEqual(['x', 'z', 'y', 'a', 'b']);
  });

  it('ranks as the engine does: a resync above a first sync, both above paused', () => {
    const sorted = sortEntities([ent('h', 'healthy'), ent('p', 'pending'), ent('q', 'paused'), ent('r', 'resyncing'), ent('w', 'waiting')]);
    expect(sorted.map((e) => e.entity)).toEqual(['w', 'r', 'p', 'q', 'h']);
  });

  it('says until when an entity waits for the source, in local time, with the date when not today', () => {
    const now = new Date(2026, 11, 3, 10, 0).getTime();
    const at = new Date(2026, 11, 3, 14, 5).getTime();
    expect(waitingText(ent('a', 'waiting', { next_attempt_at: at }), now)).toBe('waiting for the source until 14:05');
    const nextYear = new Date(2027, 11, 3, 14, 5).getTime();
    expect(waitingText(ent('a', 'waiting', { next_attempt_at: nextYear }), now)).toBe('waiting for the source until 2027-12-03 14:05');
    expect(waitingText(ent('a', 'circuit_open', { next_attempt_at: at }), now)).toBeNull();
  });

  it('sorts an entity whose forwarding is stuck above the healthy ones', () => {
    expect(sortEntities([ent('b', 'healthy'), ent('z', 'healthy', { forward_error: 'x' })]).map((e) => e.entity)).toEqual(['z', 'b']);
  });

  it('reads every health word from the engine', () => {
    expect(HEALTH_LABEL.circuit_open).toBe('Circuit open');
    expect(HEALTH_LABEL.pending).toBe('Not synced yet');
    expect(Object.keys(HEALTH_LABEL).sort()).toEqual([...HEALTH_BY_SEVERITY].sort());
  });
});

describe("the banner shows the engine's verdict, with the next attempt in local time", () => {
  const verdict = (extra: Partial<Verdict> = {}): Verdict => ({
    tone: 'warn',
    in_sync: false,
    title: 'Retrying: 1 entity',
    detail: 'c/items · a call failed and is tried again by itself',
    next_attempt_of: 'c/items',
    cards: { error_rate: 'warn', p95: 'ok', failed: 'ok' },
    overall: { label: 'Retrying', tone: 'warn' },
    entities: { 'c/items': 'warn' },
    ...extra,
  });

  it('adds when the one retrying entity tries again', () => {
    const now = new Date(2026, 11, 3, 10, 0, 0).getTime();
    const e = ent('items', 'retrying', { reason: 'HTTP 503', last_http_status: 503, next_attempt_at: now + 20_000 });
    expect(bannerDetail(verdict(), [e, ent('b', 'healthy')], now)).toBe('c/items · a call failed and is tried again by itself: next attempt 10:00 (in 20 s)');
    expect(nextAttemptText(e, now)).toBe('next attempt 10:00 (in 20 s)');
  });

  it('keeps the detail as it is when no entity is named', () => {
    const v = verdict({ tone: 'ok', in_sync: true, title: 'Everything is in sync', detail: '1 entity up to date', next_attempt_of: null });
    expect(bannerDetail(v, [ent('items', 'healthy')], Date.now())).toBe('1 entity up to date');
  });
});

describe('every row that is not healthy says when it tries again', () => {
  const now = new Date(2026, 11, 3, 10, 0, 0).getTime();
  it('names the next attempt, the wait, or that it waits for you', () => {
    expect(nextAttemptText(ent('a', 'healthy'), now)).toBeNull();
    expect(nextAttemptText(ent('a', 'failing', { next_attempt_at: now + 5 * 60_000 }), now)).toBe('next attempt 10:05 (in 5 min)');
    expect(nextAttemptText(ent('a', 'circuit_open', { next_attempt_at: now + 90_000 }), now)).toBe('next attempt 10:01 (in 1 min 30 s)');
    expect(nextAttemptText(ent('a', 'waiting', { next_attempt_at: now + 3_600_000 }), now)).toBe('waiting for the source until 11:00');
    expect(nextAttemptText(ent('a', 'paused', { waits_for_user: true }), now)).toBe('waiting for you');
    expect(nextAttemptText(ent('a', 'failing', { waits_for_user: true }), now)).toBe('waiting for you');
    expect(nextAttemptText(ent('a', 'lagging', { next_attempt_at: now }), now)).toBe('next attempt now');
    expect(nextAttemptText(ent('a', 'healthy', { forward_error: 'target down' }), now)).toBe('delivery tried again at the next poll (every 1 min)');
    expect(nextAttemptText(ent('a', 'resyncing', { next_attempt_at: now + 60_000 }), now)).toBeNull(); // under way: the reason has its progress
    for (const h of HEALTH_BY_SEVERITY.filter((h) => h !== 'healthy' && h !== 'push_only' && h !== 'resyncing')) {
      expect(nextAttemptText(ent('a', h), now), h).toBeTruthy();
    }
  });

  it('says a resync\'s progress in one set of words', () => {
    expect(resyncText(500, 3000, null)).toBe('500 of 3,000 records read');
    expect(resyncText(500, 3000, 2500)).toBe('500 of 3,000 records read · 2,500 rows not seen yet, deleted at the end unless the rest of the feed has them');
    expect(resyncText(0, 0, 1)).toBe('0 records read · 1 row not seen yet, deleted at the end unless the rest of the feed has it');
  });
});
