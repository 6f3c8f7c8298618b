import { describe, expect, it } from 'vitest';
import { ApiError } from '../../lib/api';
import type { FailedItem } from '../../lib/types';
import {
  confirmation,
  discard,
  discardLabel,
  discardTouchesOpen,
  enabled,
  isActionable,
  isFiltered,
  isPendingView,
  replay,
  replayAllLabel,
  replayLabel,
  replayTouchesOpen,
  targetIds,
  totalText,
  type ActionHost,
} from './actions';

/** A host that records the calls and toasts, answering with `answer` (or rejecting with it). */
function fakeHost(answer: unknown, fail = false) {
  const calls: [string, unknown][] = [];
  const toasts: [string, string | undefined][] = [];
  const host: ActionHost = {
    async call(method, params) {
      calls.push([method, params]);
      if (fail) throw answer;
      return answer as never;
    },
    toast: (text, tone) => toasts.push([text, tone]),
  };
  return { host, calls, toasts };
}

const item = (state: string) => ({ id: 7, state }) as FailedItem;

describe('what Replay and Discard apply to', () => {
  it('the checked rows, else the open item, else nothing', () => {
    expect(targetIds(new Set([3, 5]), 9)).toEqual([3, 5]);
    expect(targetIds(new Set(), 9)).toEqual([9]);
    expect(targetIds(new Set(), 0)).toEqual([0]);
    expect(targetIds([], null)).toEqual([]);
  });

  it('labels the buttons with the number checked', () => {
    expect(replayLabel(0)).toBe('Replay');
    expect(replayLabel(4)).toBe('Replay selected (4)');
    expect(discardLabel(0)).toBe('Discard');
    expect(discardLabel(1)).toBe('Discard selected (1)');
    expect(replayAllLabel(null)).toBe('Replay all matching');
    expect(replayAllLabel(0)).toBe('Replay all matching');
    expect(replayAllLabel(12345)).toBe('Replay all matching (12,345)');
  });

  it('enables the buttons only when there is something to act on and nothing running', () => {
    const idle = { targets: 2, total: 10, replaying: false, busy: false, pendingView: true };
    expect(enabled(idle)).toEqual({ replay: true, replayAll: true, discard: true, discardAll: true });
    expect(enabled({ ...idle, targets: 0 })).toMatchObject({ replay: false, discard: false, replayAll: true, discardAll: true });
    expect(enabled({ ...idle, replaying: true })).toEqual({ replay: false, replayAll: false, discard: true, discardAll: true });
    expect(enabled({ ...idle, busy: true })).toEqual({ replay: true, replayAll: true, discard: false, discardAll: false });
    expect(enabled({ ...idle, total: 0 })).toMatchObject({ replayAll: false, discardAll: false });
    expect(enabled({ ...idle, total: null })).toMatchObject({ replayAll: false, discardAll: false });
    // "All matching" over resolved or discarded items would act on the wrong set.
    expect(enabled({ ...idle, pendingView: false })).toEqual({ replay: true, replayAll: false, discard: true, discardAll: false });
  });

  it('offers the detail pane actions on pending items only', () => {
    expect(isActionable(item('pending'))).toBe(true);
    expect(isActionable(item('resolved'))).toBe(false);
    expect(isActionable(item('discarded'))).toBe(false);
  });

  it('tells a narrowed view from the default one', () => {
    expect(isFiltered({})).toBe(false);
    expect(isFiltered({ state: 'pending' })).toBe(false);
    expect(isFiltered({ state: 'resolved' })).toBe(true);
    expect(isFiltered({ entity: 'c/items' })).toBe(true);
    expect(isFiltered({ text: 'abc' })).toBe(true);
    expect(isPendingView({})).toBe(true);
    expect(isPendingView({ state: 'pending', entity: 'c/items' })).toBe(true);
    expect(isPendingView({ state: 'discarded' })).toBe(false);
    expect(totalText(null, false)).toBe('Loading…');
    expect(totalText(1, false)).toBe('1 item');
    expect(totalText(1204, true)).toBe('1,204 items match');
  });
});

describe('what the confirmation says', () => {
  it('replay all: the matching total, not the checked rows', () => {
    const c = confirmation('replay-all', 1500, 2);
    expect(c).toMatchObject({ title: 'Replay all matching items?', confirmLabel: 'Replay 1,500', danger: false, count: '1,500' });
    expect(`${c.lead}${c.count} ${c.rest}`).toBe('This re-runs the failed stage for 1,500 items matching the current filter.');
    expect(c.note).toMatch(/superseded/);
    expect(confirmation('replay-all', 1, 0).rest).toBe('item matching the current filter.');
  });

  it('discard: the chosen items, one or many', () => {
    const one = confirmation('discard', 1500, 1);
    expect(one).toMatchObject({ title: 'Discard failed items?', confirmLabel: 'Discard 1', danger: true });
    expect(`${one.lead}${one.count} ${one.rest}`).toBe('This discards 1 item. It will not be replayed.');
    const many = confirmation('discard', 1500, 3);
    expect(`${many.lead}${many.count} ${many.rest}`).toBe('This discards 3 items. They will not be replayed.');
    expect(many.note).toBe('Discarded items stay visible under State: Discarded.');
  });

  it('discard all: the matching total', () => {
    const c = confirmation('discard-all', 2000, 3);
    expect(c).toMatchObject({ confirmLabel: 'Discard 2,000', danger: true });
    expect(`${c.lead}${c.count} ${c.rest}`).toBe('This discards 2,000 items matching the current filter. They will not be replayed.');
    expect(confirmation('discard-all', null, 3).confirmLabel).toBe('Discard 0');
  });
});

describe('the replay and discard calls', () => {
  const filter = { entity: 'c/items', state: 'pending' as const };

  it('replays the given ids, or everything matching the filter', async () => {
    const f = fakeHost({ replayed: 2, superseded: 1, still_failing: 0 });
    expect(await replay(f.host, [4, 5], filter)).toEqual({ replayed: 2, superseded: 1, still_failing: 0 });
    await replay(f.host, null, filter);
    expect(f.calls).toEqual([
      ['failed_replay', { ids: [4, 5] }],
      ['failed_replay', { filter }],
    ]);
    expect(f.toasts[0]).toEqual(['Replay finished: 2 replayed, 1 already superseded, 0 still failing', 'ok']);
  });

  it('says so in red when items still fail, or the call fails', async () => {
    const still = fakeHost({ replayed: 0, superseded: 0, still_failing: 3 });
    await replay(still.host, [1], filter);
    expect(still.toasts).toEqual([['Replay finished: 0 replayed, 0 already superseded, 3 still failing', 'bad']]);

    const down = fakeHost(new ApiError('io', 'The engine is stopping.'), true);
    expect(await replay(down.host, [1], filter)).toBeNull();
    expect(down.toasts).toEqual([['Replay failed: The engine is stopping.', 'bad']]);
  });

  it('discards the given ids, or everything matching, and counts them', async () => {
    const f = fakeHost({ discarded: 1 });
    expect(await discard(f.host, [8], filter)).toBe(true);
    expect(f.calls).toEqual([['failed_discard', { ids: [8] }]]);
    expect(f.toasts).toEqual([['Discarded 1 item', undefined]]);

    const all = fakeHost({ discarded: 1234 });
    await discard(all.host, null, filter);
    expect(all.calls).toEqual([['failed_discard', { filter }]]);
    expect(all.toasts[0][0]).toBe('Discarded 1,234 items');

    const down = fakeHost('connection refused', true);
    expect(await discard(down.host, [8], filter)).toBe(false);
    expect(down.toasts).toEqual([['Discard failed: connection refused', 'bad']]);
  });

  it('refreshes the open item after replaying it, closes it after discarding it', () => {
    expect(replayTouchesOpen([1, 2], 2)).toBe(true);
    expect(replayTouchesOpen([1, 2], 3)).toBe(false);
    expect(replayTouchesOpen(null, 3)).toBe(true); // replay all matching may take the open one too: no stale "pending"
    expect(replayTouchesOpen([1], null)).toBe(false);
    expect(discardTouchesOpen([1, 2], 2)).toBe(true);
    expect(discardTouchesOpen([1, 2], 3)).toBe(false);
    expect(discardTouchesOpen(null, 3)).toBe(true); // discard all matching takes the open one too
    expect(discardTouchesOpen(null, null)).toBe(false);
  });
});
