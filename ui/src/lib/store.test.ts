import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setTransport, type Subscription, type Transport } from './api';
import { app } from './store.svelte';
import type { StreamMessage } from './types';

/** A transport that answers `overview` and lets the test push events. */
function fakeTransport() {
  const calls: string[] = [];
  let sub: Subscription | null = null;
  const t: Transport = {
    kind: 'http',
    async call(method) {
      calls.push(method);
      return {
        entities: [],
        header: { health: 'healthy', error_rate_5m: 0, p95_ms_5m: null, pending_failed: 0, requests_5m: 0 },
        verdict: {
          tone: 'info',
          in_sync: false,
          title: 'No entities configured',
          detail: 'Add a connection and its entities on the Connections screen.',
          next_attempt_of: null,
          cards: { error_rate: 'ok', p95: 'ok', failed: 'ok' },
          overall: { label: 'Healthy', tone: 'ok' },
          entities: {},
        },
        sparklines: {},
        warnings: [],
      };
    },
    subscribe(s) {
      sub = s;
      s.state?.('live');
      return () => (sub = null);
    },
  };
  return {
    t,
    calls,
    emit: (m: StreamMessage) => sub!.message(m),
    reconnect: () => sub!.reconnected(),
  };
}

const ev = (type: string) => ({ seq: 1, at: 0, type, connection: 'c', entity: 'e' }) as unknown as StreamMessage;

describe('app state: overview once, then events', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fetches the overview once at start and once per burst of relevant events', async () => {
    const f = fakeTransport();
    setTransport(f.t);
    const stop = app.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(f.calls).toEqual(['overview']);
    expect(app.stream).toBe('live');

    for (let i = 0; i < 20; i++) f.emit(ev('page_applied'));
    f.emit(ev('retrying'));
    await vi.advanceTimersByTimeAsync(299);
    expect(f.calls.length).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(f.calls).toEqual(['overview', 'overview']);

    // Nothing happens without events: no polling (the 1 s ticker only moves the clock).
    const before = app.now;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(f.calls.length).toBe(2);
    expect(app.now).toBeGreaterThan(before);

    f.emit(ev('retrying'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(f.calls.length).toBe(2);

    f.reconnect();
    await vi.advanceTimersByTimeAsync(300);
    expect(f.calls.length).toBe(3);

    f.emit({ type: 'resync_needed' });
    await vi.advanceTimersByTimeAsync(300);
    expect(f.calls.length).toBe(4);
    stop();
  });

  it('passes every message to screen listeners until they unsubscribe', () => {
    const f = fakeTransport();
    setTransport(f.t);
    const stop = app.start();
    const got: string[] = [];
    const off = app.onMessage((m) => got.push(m.type));
    f.emit(ev('nudged'));
    off();
    f.emit(ev('nudged'));
    expect(got).toEqual(['nudged']);
    stop();
  });
});

describe('toasts', () => {
  afterEach(() => {
    vi.useRealTimers();
    for (const t of app.toasts) app.dismissToast(t.id);
  });

  it('the same note twice shows once, at most three show, errors stay until dismissed', () => {
    vi.useFakeTimers();
    app.toast('Sync requested for c/items');
    app.toast('Sync requested for c/items');
    expect(app.toasts.map((t) => t.text)).toEqual(['Sync requested for c/items']);
    app.toast('Could not reach the source', 'bad');
    app.toast('two');
    app.toast('three');
    expect(app.toasts.map((t) => t.text)).toEqual(['Could not reach the source', 'two', 'three']);
    vi.advanceTimersByTime(5000);
    expect(app.toasts.map((t) => t.text)).toEqual(['Could not reach the source']);
    app.dismissToast(app.toasts[0].id);
    expect(app.toasts).toEqual([]);
  });
});
