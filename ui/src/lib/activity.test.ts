import { describe, expect, it } from 'vitest';
import { activityParams, describeGroup, foldEvents, matchesFilter, mergeEvents, withDays, type EventGroup } from './activity';
import { dayLabel } from './format';
import type { Event } from './types';

// Local times, so the tests read the same in every time zone.
const at = (day: number, h: number, m: number, s = 0) => new Date(2026, 11, day, h, m, s).getTime();
let seq = 0;
const page = (when: number, entity = 'items', records = 450, failed = 0): Event => ({
  seq: ++seq, at: when, type: 'page_applied', connection: 'src', entity, records, failed, checkpoint: String(seq),
});
const started = (when: number, entity = 'items'): Event => ({ seq: ++seq, at: when, type: 'cycle_started', connection: 'src', entity, kind: 'incremental', from: '0' });
const finished = (when: number, entity = 'items', outcome: 'caught_up' | 'failed' = 'caught_up'): Event => ({
  seq: ++seq, at: when, type: 'cycle_finished', connection: 'src', entity, outcome, records: 0, error: outcome === 'failed' ? 'HTTP 503' : null, tracking_id: 'T-42',
});

describe('folding page-by-page noise', () => {
  it('folds one entity’s pages into one row, with other entities’ events and its nudges in between', () => {
    const events = [
      started(at(3, 14, 2)),
      ...Array.from({ length: 12 }, (_, i) => page(at(3, 14, 2, i * 15))),
      started(at(3, 14, 3), 'orders'),
      page(at(3, 14, 4), 'orders'),
      { seq: ++seq, at: at(3, 14, 4, 30), type: 'nudged', connection: 'src', entity: 'items' } as Event,
      page(at(3, 14, 5)),
      finished(at(3, 14, 5, 30)),
    ];
    const rows = foldEvents(events);
    expect(rows.map((r) => (r.kind === 'group' ? `group ${r.entity} ${r.events.length}` : `${r.event.type} ${'entity' in r.event ? r.event.entity : ''}`))).toEqual([
      'cycle_started items',
      'group src/items 13',
      'cycle_started orders',
      'page_applied orders',
      'nudged items',
      'cycle_finished items',
    ]);
    expect(describeGroup(rows[1] as EventGroup)).toBe('13 pages applied · 5,850 records · 14:02–14:05');
  });

  it('never folds failures or state changes, and a failure ends the run', () => {
    const rows = foldEvents([
      page(at(3, 9, 0)),
      page(at(3, 9, 1)),
      page(at(3, 9, 2), 'items', 100, 3),
      finished(at(3, 9, 3), 'items', 'failed'),
      page(at(3, 9, 4)),
      page(at(3, 9, 5)),
    ]);
    expect(rows.map((r) => (r.kind === 'group' ? r.events.length : r.event.type))).toEqual([2, 'page_applied', 'cycle_finished', 2]);
  });

  it('folds resync progress by type and ends groups at midnight', () => {
    const progress = (when: number, seen: number): Event => ({ seq: ++seq, at: when, type: 'resync_progress', connection: 'src', entity: 'items', seen, expected: 1000, would_delete: 0 });
    const rows = foldEvents([progress(at(3, 23, 58), 100), page(at(3, 23, 58, 1)), progress(at(3, 23, 59), 200), page(at(3, 23, 59, 1)), progress(at(4, 0, 1), 300), progress(at(4, 0, 2), 400)]);
    expect(rows.map((r) => (r.kind === 'group' ? `${r.type} ${r.events.length}` : r.event.type))).toEqual(['resync_progress 2', 'page_applied 2', 'resync_progress 2']);
    expect(describeGroup(rows[0] as EventGroup)).toMatch(/^2 full resync updates · last: 200 .* · 23:58–23:59$/);
  });
});

describe('days', () => {
  it('heads each day: Today, Yesterday, then the date', () => {
    const now = at(3, 12, 0);
    expect(dayLabel(at(3, 0, 1), now)).toBe('Today');
    expect(dayLabel(at(2, 23, 59), now)).toBe('Yesterday');
    expect(dayLabel(at(1, 8, 0), now, 'en-GB')).toBe('Tue 1 Dec 2026');
    expect(dayLabel(at(1, 8, 0), now, 'en-US')).toBe('Tue Dec 1 2026');
    const rows = withDays(foldEvents([finished(at(1, 8, 0)), finished(at(2, 9, 0)), finished(at(2, 10, 0)), finished(at(3, 1, 0))]), now, 'en-GB');
    expect(rows.map((r) => (r.kind === 'day' ? r.label : '·'))).toEqual(['Tue 1 Dec 2026', '·', 'Yesterday', '·', '·', 'Today', '·']);
  });
});

describe('the search', () => {
  const f = (entity = '', kind = '', text = '') => ({ entity, kind, text });
  it('asks the engine with empty words left out', () => {
    expect(activityParams(f(' src/items ', '', ''), 1000)).toEqual({ entity: 'src/items', kind: null, text: null, before_seq: null, limit: 1000 });
    expect(activityParams(f('', 'page_applied', 'T-42'), 500, 77)).toEqual({ entity: null, kind: 'page_applied', text: 'T-42', before_seq: 77, limit: 500 });
  });

  it('lets through live events as the engine’s search would', () => {
    const done = finished(at(3, 9, 0));
    const circuit: Event = { seq: ++seq, at: at(3, 9, 1), type: 'circuit_opened', connection: 'src', until: at(3, 9, 5), error: 'HTTP 503' };
    expect(matchesFilter(done, f('src/items'))).toBe(true);
    expect(matchesFilter(circuit, f('src/items')), 'the entity’s connection').toBe(true);
    expect(matchesFilter(done, f('src/orders'))).toBe(false);
    expect(matchesFilter(done, f('src'))).toBe(true);
    expect(matchesFilter(done, f('items'))).toBe(true);
    expect(matchesFilter(done, f('', 'page_applied'))).toBe(false);
    expect(matchesFilter(done, f('', '', 't-42')), 'a Trackingid, any case').toBe(true);
    expect(matchesFilter(done, f('', '', 'caught up')), 'words for the type words').toBe(true);
    expect(matchesFilter(done, f('', '', 'nowhere'))).toBe(false);
    expect(matchesFilter(done, f('', '', 'SRC/items')), 'the entity as people write it').toBe(true);
    expect(matchesFilter(circuit, f('', '', 'src/items'))).toBe(false);
  });

  it('merges pages by sequence number', () => {
    const [a, b, c] = [finished(1), finished(2), finished(3)];
    expect(mergeEvents([b, c], [a, b]).map((e) => e.seq)).toEqual([a.seq, b.seq, c.seq]);
  });
});
