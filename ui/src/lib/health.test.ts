import { describe, expect, it } from 'vitest';
import { banner, headerAlarms, needsAttention, nextAttemptText, resyncText, sortEntities, verdict, waitingText } from './health';
import type { OverviewHeader } from './types';
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
    waits_for_user: false,
    poll_every_seconds: 60,
    resync_seen: null,
    resync_would_delete: null,
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

describe('verdict: the banner takes the worst of every signal it shows', () => {
  const header = (extra: Partial<OverviewHeader> = {}): OverviewHeader => ({ health: 'healthy', error_rate_5m: 0, p95_ms_5m: 120, pending_failed: 0, requests_5m: 200, ...extra });

  it('never says "Everything is in sync" or "Healthy" above an alarming error rate or p95', () => {
    const all = [ent('a', 'healthy'), ent('b', 'healthy')];
    const v = verdict(all, header({ error_rate_5m: 0.12, p95_ms_5m: 804 }));
    expect(v.banner.title).not.toMatch(/in sync/i);
    expect(v.banner).toMatchObject({ tone: 'warn', inSync: false, title: 'Calls to the source are failing' });
    expect(v.banner.detail).toContain('12 % of 200 calls failed in the last 5 min');
    expect(v.banner.detail).toContain('p95 response 804 ms');
    expect(v.cards).toEqual({ errorRate: 'warn', p95: 'warn', failed: 'ok' });
    expect(v.overall).toEqual({ label: 'Calls failing', tone: 'warn' });
    expect(verdict(all, header({ p95_ms_5m: 804 })).banner.title).toBe('The source is answering slowly');
    expect(verdict(all, header({ p95_ms_5m: 804 })).overall.label).toBe('Slow source');
  });

  it('colours a card no worse than the banner, and red only when the banner is red', () => {
    const failing = verdict([ent('a', 'failing')], header({ health: 'failing', error_rate_5m: 0.5 }));
    expect(failing.banner.tone).toBe('bad');
    expect(failing.cards.errorRate).toBe('bad');
    expect(failing.overall).toEqual({ label: 'Failing', tone: 'bad' });
    for (const h of ['healthy', 'retrying', 'lagging', 'waiting', 'failing', 'circuit_open'] as Health[]) {
      for (const rate of [0, 0.2]) {
        for (const p95 of [100, 900]) {
          const v = verdict([ent('a', h)], header({ health: h, error_rate_5m: rate, p95_ms_5m: p95, pending_failed: 1 }));
          const rank = { ok: 0, info: 1, warn: 2, bad: 3 };
          for (const t of Object.values(v.cards)) expect(rank[t]).toBeLessThanOrEqual(rank[v.banner.tone]);
          expect(rank[v.overall.tone]).toBeLessThanOrEqual(rank[v.banner.tone]);
          if (v.banner.title === 'Everything is in sync') expect([v.cards.errorRate, v.cards.p95, v.overall.tone]).toEqual(['ok', 'ok', 'ok']);
        }
      }
    }
  });

  it('keeps "Everything is in sync" when every signal is green', () => {
    expect(verdict([ent('a', 'healthy')], header()).banner).toMatchObject({ tone: 'ok', inSync: true, title: 'Everything is in sync' });
    expect(verdict([ent('a', 'healthy')], header()).overall).toEqual({ label: 'Healthy', tone: 'ok' });
  });

  it('reads one transient 503 inside the retry budget as "Retrying" (amber, with its next attempt), not red', () => {
    const now = new Date(2026, 11, 3, 10, 0, 0).getTime();
    const e = ent('items', 'retrying', { reason: 'HTTP 503', last_http_status: 503, next_attempt_at: now + 20_000 });
    // One 503 among few calls is a high error rate: still amber while the entity retries.
    const v = verdict([e, ent('b', 'healthy')], header({ health: 'retrying', error_rate_5m: 0.25, requests_5m: 4 }));
    expect(v.banner.tone).toBe('warn');
    expect(v.banner.title).not.toMatch(/needs? attention|in sync/);
    expect(v.cards.errorRate).toBe('warn');
    expect(v.overall).toEqual({ label: 'Retrying', tone: 'warn' });
    expect(verdict([e], header({ health: 'retrying' }), now).banner).toMatchObject({
      tone: 'warn',
      title: 'Retrying: 1 entity',
      detail: 'c/items · a call failed and is tried again by itself: next attempt 10:00 (in 20 s)',
    });
    expect(nextAttemptText(e, now)).toBe('next attempt 10:00 (in 20 s)');
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
