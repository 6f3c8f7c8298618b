// Live state without polling: events say *that* something changed; the screen refetches what it
// shows, at most once per quiet period, so a burst of page_applied events costs one call.
import type { StreamMessage } from './types';
import { OUTCOME } from './generated/enums';

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/**
 * Trailing debounce with a ceiling: runs `fn` `wait` ms after the last trigger, but never later than
 * `maxWait` ms after the first one of a burst (a steady stream of events still refreshes the screen).
 */
export function debounced(fn: () => void, wait = 300, maxWait = 2000, timers: Timers = realTimers) {
  let handle: unknown = null;
  let firstAt: number | null = null;
  const fire = () => {
    handle = null;
    firstAt = null;
    fn();
  };
  return {
    trigger() {
      const at = timers.now();
      if (firstAt == null) firstAt = at;
      if (handle != null) timers.clearTimeout(handle);
      const remaining = Math.max(0, Math.min(wait, firstAt + maxWait - at));
      handle = timers.setTimeout(fire, remaining);
    },
    /** Runs now if a call is waiting. */
    flush() {
      if (handle != null) {
        timers.clearTimeout(handle);
        fire();
      }
    },
    cancel() {
      if (handle != null) timers.clearTimeout(handle);
      handle = null;
      firstAt = null;
    },
    get pending() {
      return handle != null;
    },
  };
}

/** Events after which the Overview may look different. */
const OVERVIEW_EVENTS = new Set<string>([
  'cycle_started',
  'cycle_finished',
  'page_applied',
  'ingest_applied',
  'failed_items_added',
  'resync_progress',
  'deletion_guard_tripped',
  'circuit_opened',
  'circuit_closed',
  'replay_progress',
  'resync_needed',
]);

export function affectsOverview(m: StreamMessage): boolean {
  return OVERVIEW_EVENTS.has(m.type);
}

/** Whether an event concerns one entity (`conn/entity`); connection-wide events concern all its entities. */
export function concernsEntity(m: StreamMessage, name: string): boolean {
  if (m.type === 'resync_needed') return true;
  if (!('connection' in m)) return false;
  const [conn, ...rest] = name.split('/');
  if (m.connection !== conn) return false;
  return !('entity' in m) || m.entity === rest.join('/');
}

/** Events after which the failed-items list may look different. */
export function affectsFailed(m: StreamMessage): boolean {
  return m.type === 'failed_items_added' || m.type === 'resync_needed' ||
    (m.type === 'cycle_finished' && m.outcome === OUTCOME.CaughtUp); // superseded items clear themselves
}
