// App-wide live state: the overview (fetched once, then refetched — debounced — when an event
// says it changed), the event channel's state, and one 1 s clock for relative times.
import { api, ApiError, type StreamState } from './api';
import { affectsOverview, debounced } from './refetch';
import type { OverviewResult, StreamMessage } from './types';

type Listener = (m: StreamMessage) => void;
type ReconnectListener = () => void;

class AppState {
  overview = $state<OverviewResult | null>(null);
  overviewError = $state<ApiError | null>(null);
  stream = $state<StreamState>('connecting');
  streamError = $state<ApiError | null>(null);
  /** The wall clock, ticking once a second: relative times re-render from it. */
  now = $state(Date.now());
  /** Short messages for the toast area ("Sync requested for 3 entities"). */
  toasts = $state<{ id: number; text: string; tone: 'ok' | 'bad' }[]>([]);

  private listeners = new Set<Listener>();
  private reconnectListeners = new Set<ReconnectListener>();
  private refetch = debounced(() => void this.loadOverview(), 300);
  private toastId = 0;

  start(): () => void {
    void this.loadOverview();
    const tick = setInterval(() => (this.now = Date.now()), 1000);
    const unsubscribe = api.subscribe({
      message: (m) => {
        if (affectsOverview(m)) this.refetch.trigger();
        for (const l of this.listeners) l(m);
      },
      reconnected: () => {
        this.refetch.trigger();
        for (const l of this.reconnectListeners) l();
      },
      state: (s, e) => {
        this.stream = s;
        this.streamError = e ?? null;
      },
    });
    return () => {
      clearInterval(tick);
      unsubscribe();
      this.refetch.cancel();
    };
  }

  async loadOverview(): Promise<void> {
    try {
      this.overview = await api.call('overview', {});
      this.overviewError = null;
    } catch (e) {
      this.overviewError = e instanceof ApiError ? e : new ApiError('io', String(e));
    }
  }

  /** Refetch the overview soon (after an action). */
  touch(): void {
    this.refetch.trigger();
  }

  /** Every message from the event channel; returns the unsubscribe function. */
  onMessage(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** The channel came back after a gap (or said `resync_needed`): refetch. */
  onReconnect(l: ReconnectListener): () => void {
    this.reconnectListeners.add(l);
    return () => this.reconnectListeners.delete(l);
  }

  /**
   * A note in the corner: the same text again replaces the earlier one (no pile of "Sync
   * requested"), at most three show, good news goes after 4 s and an error stays until dismissed.
   */
  toast(text: string, tone: 'ok' | 'bad' = 'ok'): void {
    const id = ++this.toastId;
    this.toasts = [...this.toasts.filter((t) => t.text !== text), { id, text, tone }].slice(-3);
    if (tone === 'ok') setTimeout(() => this.dismissToast(id), 4000);
  }

  dismissToast(id: number): void {
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }
}

export const app = new AppState();
