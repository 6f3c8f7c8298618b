import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { affectsFailed, affectsOverview, concernsEntity, debounced } from './refetch';
import type { StreamMessage } from './types';

const ev = (m: Record<string, unknown>) => ({ seq: 1, at: 0, ...m }) as unknown as StreamMessage;

describe('event → refetch debouncing', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('turns a burst of events into one refetch 300 ms after the last', () => {
    const fn = vi.fn();
    const d = debounced(fn, 300);
    for (let i = 0; i < 10; i++) {
      d.trigger();
      vi.advanceTimersByTime(100);
    }
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(300);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('still refetches at least every maxWait under a steady stream', () => {
    const fn = vi.fn();
    const d = debounced(fn, 300, 1000);
    for (let i = 0; i < 25; i++) {
      d.trigger();
      vi.advanceTimersByTime(100);
    }
    expect(fn).toHaveBeenCalledTimes(2); // at 1000 ms and 2000 ms of a 2500 ms burst
  });

  it('can be cancelled and flushed', () => {
    const fn = vi.fn();
    const d = debounced(fn, 300);
    d.trigger();
    d.cancel();
    vi.advanceTimersByTime(1000);
    expect(fn).not.toHaveBeenCalled();
    d.trigger();
    d.flush();
    expect(fn).toHaveBeenCalledTimes(1);
    expect(d.pending).toBe(false);
  });
});

describe('which events matter', () => {
  it('refetches the overview on cycle, page, failed-item, circuit and resync_needed events, not on retries', () => {
    expect(affectsOverview(ev({ type: 'cycle_finished', connection: 'c', entity: 'e' }))).toBe(true);
    expect(affectsOverview(ev({ type: 'page_applied' }))).toBe(true);
    expect(affectsOverview(ev({ type: 'failed_items_added' }))).toBe(true);
    expect(affectsOverview(ev({ type: 'circuit_opened' }))).toBe(true);
    expect(affectsOverview({ type: 'resync_needed' })).toBe(true);
    expect(affectsOverview(ev({ type: 'retrying' }))).toBe(false);
  });

  it('matches events to an entity, connection-wide ones to all its entities', () => {
    expect(concernsEntity(ev({ type: 'page_applied', connection: 'c', entity: 'items' }), 'c/items')).toBe(true);
    expect(concernsEntity(ev({ type: 'page_applied', connection: 'c', entity: 'orders' }), 'c/items')).toBe(false);
    expect(concernsEntity(ev({ type: 'circuit_opened', connection: 'c' }), 'c/items')).toBe(true);
    expect(concernsEntity(ev({ type: 'circuit_opened', connection: 'd' }), 'c/items')).toBe(false);
    expect(concernsEntity(ev({ type: 'replay_progress' }), 'c/items')).toBe(false);
  });

  it('refreshes failed items when some are added or a cycle catches up', () => {
    expect(affectsFailed(ev({ type: 'failed_items_added' }))).toBe(true);
    expect(affectsFailed(ev({ type: 'cycle_finished', outcome: 'caught_up' }))).toBe(true);
    expect(affectsFailed(ev({ type: 'cycle_finished', outcome: 'failed' }))).toBe(false);
    expect(affectsFailed(ev({ type: 'page_applied' }))).toBe(false);
  });
});
