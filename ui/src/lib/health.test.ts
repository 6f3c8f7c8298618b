import { describe, expect, it } from 'vitest';
import { banner, headerAlarms, needsAttention, sortEntities, waitingText } from './health';
import type { EntityStatus, Health } from './types';
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
    poll_every_seconds: 60,
    resync_seen: null,
    forward_pending: 0,
    forward_error: null,
    ...extra,
  };
}

describe('banner', () => {
  it('says everything is in sync when all entities are healthy', () => {
    expect(banner([ent('a', 'healthy'), ent('b', 'healthy')])).toMatchObject({ tone: 'ok', inSync: true, title: 'Everything is in sync' });
  });

  it('counts the entities that need attention and names them', () => {
    const b = banner([ent('a', 'failing'), ent('b', 'healthy'), ent('c', 'circuit_open')]);
    expect(b).toMatchObject({ tone: 'bad', inSync: false, title: '2 entities need attention', detail: 'c/a, c/c' });
    expect(banner([ent('a', 'lagging')])).toMatchObject({ tone: 'warn', title: '1 entity needs attention' });
  });

  it('shortens long lists of names', () => {
    const b = banner(['a', 'b', 'c', 'd', 'e'].map((n) => ent(n, 'failing')));
    expect(b.detail).toBe('c/a, c/b, c/c and 2 more');
  });

  it('does not call paused or resyncing a problem, but mentions them', () => {
    expect(banner([ent('a', 'healthy'), ent('b', 'paused')])).toMatchObject({ tone: 'info', title: 'Everything is in sync', detail: '1 paused' });
    expect(banner([ent('a', 'resyncing')])).toMatchObject({ tone: 'info', title: 'Syncing…' });
  });

  it('mentions failed items to review while in sync', () => {
    expect(banner([ent('a', 'healthy', { pending_failed: 3 })])).toMatchObject({ tone: 'warn', title: 'Everything is in sync', detail: '3 failed items to review' });
  });

  it('counts an entity whose forwarding is stuck as needing attention, without calling it failing', () => {
    const b = banner([ent('a', 'healthy', { forward_error: 'target circuit open', forward_pending: 12 }), ent('b', 'healthy')]);
    expect(b).toMatchObject({ tone: 'warn', inSync: false, title: '1 entity needs attention', detail: 'c/a' });
    expect(sortEntities([ent('b', 'healthy'), ent('z', 'healthy', { forward_error: 'x' })]).map((e) => e.entity)).toEqual(['z', 'b']);
  });

  it('says what to do when nothing is configured', () => {
    expect(banner([]).title).toBe('No entities configured');
  });
});

describe('health ordering and thresholds', () => {
  it('sorts worst first, then by name', () => {
    const sorted = sortEntities([ent('b', 'healthy'), ent('a', 'healthy'), ent('z', 'failing'), ent('y', 'lagging'), ent('x', 'circuit_open')]);
    expect(sorted.map((e) => e.entity)).toEqual(['x', 'z', 'y', 'a', 'b']);
  });

  it('ranks as the engine does: a resync above a first sync, both above paused', () => {
    const sorted = sortEntities([ent('h', 'healthy'), ent('p', 'pending'), ent('q', 'paused'), ent('r', 'resyncing'), ent('w', 'waiting')]);
    expect(sorted.map((e) => e.entity)).toEqual(['w', 'r', 'p', 'q', 'h']);
  });

  it('needs attention for failing, circuit open, lagging and waiting only', () => {
    expect(HEALTH_BY_SEVERITY.filter(needsAttention)).toEqual(['waiting', 'lagging', 'failing', 'circuit_open']);
  });

  it('says until when an entity waits for the source, in local time, with the date when not today', () => {
    const now = new Date(2026, 11, 3, 10, 0).getTime();
    const at = new Date(2026, 11, 3, 14, 5).getTime();
    expect(waitingText(ent('a', 'waiting', { next_attempt_at: at }), now)).toBe('waiting for the source until 14:05');
    const nextYear = new Date(2027, 11, 3, 14, 5).getTime();
    expect(waitingText(ent('a', 'waiting', { next_attempt_at: nextYear }), now)).toBe('waiting for the source until 2027-12-03 14:05');
    expect(waitingText(ent('a', 'circuit_open', { next_attempt_at: at }), now)).toBeNull();
    expect(banner([ent('a', 'waiting', { next_attempt_at: at })])).toMatchObject({ tone: 'warn', title: '1 entity needs attention' });
  });

  it('turns the error rate red above 5 % and p95 red above 500 ms', () => {
    const h = { health: 'healthy' as Health, pending_failed: 0, requests_5m: 10 };
    expect(headerAlarms({ ...h, error_rate_5m: 0.05, p95_ms_5m: 500 })).toEqual({ errorRate: false, p95: false });
    expect(headerAlarms({ ...h, error_rate_5m: 0.051, p95_ms_5m: 501 })).toEqual({ errorRate: true, p95: true });
    expect(headerAlarms({ ...h, error_rate_5m: 0, p95_ms_5m: null })).toEqual({ errorRate: false, p95: false });
  });
});
