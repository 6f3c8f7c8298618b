// The Activity screen's logic, kept out of the screen: the search's params, whether a live event
// matches the search, merging pages by sequence number, and folding per-page noise (a cycle's
// pages, a resync's or verify's progress) into one row per run, with day headings between days.
import { count, clockSpan, dayLabel, localDay } from './format';
import { describeEvent, eventEntity } from './events';
import type { Event, EventType, ParamsOf } from './types';

/** What the user searches for; empty strings are no condition. */
export interface ActivityFilter {
  /** `connection/entity` or `connection`. */
  entity: string;
  /** An event type word. */
  kind: string;
  /** A Trackingid, a record id, `connection/entity`, words of an error… */
  text: string;
}

/** Every event type, as the type filter lists it (the Record makes the compiler name them all). */
const TYPE_LABELS: Record<EventType, string> = {
  cycle_started: 'cycle started',
  page_applied: 'page applied',
  ingest_applied: 'ingest applied',
  retrying: 'retrying',
  cycle_finished: 'cycle finished',
  failed_items_added: 'failed items added',
  resync_progress: 'resync progress',
  verify_progress: 'verify progress',
  deletion_guard_tripped: 'deletion guard tripped',
  circuit_opened: 'circuit opened',
  circuit_closed: 'circuit closed',
  nudged: 'nudged',
  lease_taken: 'agent took over',
  replay_progress: 'replay progress',
  forwarded: 'forwarded',
  conflict_settled: 'conflict settled',
};
export const EVENT_TYPES = (Object.keys(TYPE_LABELS) as EventType[]).sort();
export const typeLabel = (t: EventType): string => TYPE_LABELS[t] ?? t;

/** The `activity` call for a filter: the newest `limit`, or those before `beforeSeq`. */
export function activityParams(f: ActivityFilter, limit: number, beforeSeq?: number): ParamsOf<'activity'> {
  const word = (s: string) => (s.trim() ? s.trim() : null);
  return { entity: word(f.entity), kind: word(f.kind), text: word(f.text), before_seq: beforeSeq ?? null, limit };
}

/** Whether a live event belongs in the list the filter shows (the engine's rules, in the UI). */
export function matchesFilter(e: Event, f: ActivityFilter): boolean {
  if (f.kind.trim() && e.type !== f.kind.trim()) return false;
  const want = f.entity.trim();
  if (want) {
    const conn = 'connection' in e ? e.connection : null;
    const ent = 'entity' in e ? e.entity : null;
    const slash = want.indexOf('/');
    const ok =
      slash >= 0
        ? conn === want.slice(0, slash) && (ent == null || ent === want.slice(slash + 1))
        : conn === want || ent === want;
    if (!ok) return false;
  }
  const text = f.text.trim().toLowerCase();
  if (text) {
    const json = JSON.stringify(e).toLowerCase();
    const named = `${'connection' in e ? e.connection : ''}/${'entity' in e ? e.entity : ''}`.toLowerCase();
    if (!json.includes(text) && !json.includes(text.replaceAll(' ', '_')) && !named.includes(text)) return false;
  }
  return true;
}

/** Two lists of events (oldest first) as one, each sequence number once, oldest first. */
export function mergeEvents(a: Event[], b: Event[]): Event[] {
  const bySeq = new Map<number, Event>();
  for (const e of a) bySeq.set(e.seq, e);
  for (const e of b) bySeq.set(e.seq, e);
  return [...bySeq.values()].sort((x, y) => x.seq - y.seq);
}

/** Events that say how far a page-by-page job has got: many in a row say little each. */
export function isNoise(e: Event): boolean {
  switch (e.type) {
    case 'page_applied':
      return e.failed === 0; // a page with failures is a failure: never folded
    case 'resync_progress':
    case 'verify_progress':
    case 'replay_progress':
      return true;
    default:
      return false;
  }
}

/** Events that end a run of noise: a cycle's start or end, its failures, the circuit. A nudge
 * (a webhook), a delivery or a pushed batch in between is listed on its own and the run goes on. */
export function endsRun(e: Event): boolean {
  switch (e.type) {
    case 'nudged':
    case 'lease_taken':
    case 'forwarded':
    case 'ingest_applied':
    case 'conflict_settled':
      return false;
    default:
      return true;
  }
}

export interface EventGroup {
  kind: 'group';
  key: string;
  type: EventType;
  entity: string | null;
  /** Oldest first. */
  events: Event[];
}
export type ActivityRow = { kind: 'event'; key: string; event: Event } | EventGroup | { kind: 'day'; key: string; label: string };

/**
 * Rows for events (oldest first): a run of one entity's noise events of one type becomes one
 * group, placed where its first event is; the run ends at an event of that entity (or of its
 * connection) that `endsRun`, and at midnight. Other entities' events, and the entity's nudges,
 * are listed on their own without ending it. A group of one is shown as its event.
 */
export function foldEvents(events: Event[]): (ActivityRow & { kind: 'event' | 'group' })[] {
  const rows: (ActivityRow & { kind: 'event' | 'group' })[] = [];
  const open = new Map<string, EventGroup & { day: string }>();
  for (const e of events) {
    const who = eventEntity(e);
    if (isNoise(e)) {
      const k = `${who ?? ''}|${e.type}`;
      const g = open.get(k);
      if (g && g.day === localDay(e.at)) {
        g.events.push(e);
        continue;
      }
      const fresh = { kind: 'group' as const, key: `g${e.seq}`, type: e.type, entity: who, events: [e], day: localDay(e.at) };
      open.set(k, fresh);
      rows.push(fresh);
      continue;
    }
    if (endsRun(e)) {
      for (const [k, g] of open) {
        if (who == null || g.entity === who || g.entity?.startsWith(`${who}/`)) open.delete(k);
      }
    }
    rows.push({ kind: 'event', key: `e${e.seq}`, event: e });
  }
  return rows.map((r) => (r.kind === 'group' && r.events.length === 1 ? { kind: 'event', key: `e${r.events[0].seq}`, event: r.events[0] } : r));
}

/** The rows with a day heading before each day's first row ("Today", "Yesterday", a date). */
export function withDays(rows: ActivityRow[], now: number, locale?: string): ActivityRow[] {
  const out: ActivityRow[] = [];
  let day: string | null = null;
  for (const r of rows) {
    if (r.kind === 'day') continue;
    const at = r.kind === 'event' ? r.event.at : r.events[0].at;
    if (localDay(at) !== day) {
      day = localDay(at);
      out.push({ kind: 'day', key: `d${day}`, label: dayLabel(at, now, locale) });
    }
    out.push(r);
  }
  return out;
}

/** A group in one line: "12 pages applied · 5,400 records · 14:02–14:05". */
export function describeGroup(g: EventGroup): string {
  const n = g.events.length;
  const first = g.events[0];
  const last = g.events[n - 1];
  const span = clockSpan(first.at, last.at);
  if (g.type === 'page_applied') {
    const records = g.events.reduce((sum, e) => sum + (e.type === 'page_applied' ? e.records : 0), 0);
    return `${count(n)} pages applied · ${count(records)} records · ${span}`;
  }
  const what = g.type === 'resync_progress' ? 'full resync' : g.type === 'verify_progress' ? 'verify' : 'replay';
  return `${count(n)} ${what} updates · last: ${describeEvent(last).replace(/^[a-z ]+: /, '')} · ${span}`;
}
