// The `[connection.cursor]` part of the Connections form: which keys each profile takes, the
// defaults a new connection starts from, and how the "next page" choice maps onto the keys.
import type { ConnectionView, CursorView } from '../../lib/types';

export type Profile = ConnectionView['profile'];

/** How the source says where the next page is (one of them; a snapshot may have none). */
export type PageWay = 'url' | 'token' | 'link-header' | 'short-page' | 'none';

export interface CursorField {
  key: keyof CursorView;
  label: string;
  help: string;
  placeholder: string;
}

const field = (key: keyof CursorView, label: string, placeholder: string, help: string): CursorField => ({ key, label, help, placeholder });

const ID = field('id_field', 'Id field', 'id', 'The field that identifies a record.');
const VERSION = field('version_field', 'Version field', 'rowVersion', 'The field that grows on every change (an integer, or digits as text).');
const MODIFIED = field('version_field', 'Last-modified field', 'lastModified',
  "The record's last-modified time; records sharing one value are read again and de-duplicated.");
const RECORDS = field('records_pointer', 'Records pointer', '/items',
  'JSON pointer to the array of records in a page, e.g. /items; empty when the body is the array.');
const FILTER = field('filter_param', 'Checkpoint parameter', 'since',
  'The query parameter that receives the checkpoint (the source returns what changed after it).');
const SINCE = field('filter_param', 'Since parameter', 'modifiedSince',
  'The query parameter that receives the checkpoint inclusively (the source returns records at or after it).');
const EXTRA = field('extra_query', 'Extra query', 'orderBy=lastModified', 'Added to every request as is, e.g. orderBy=lastModified.');
const PAGE_SIZE = field('page_size_param', 'Page size parameter', 'limit', "The query parameter that takes the entity's page size.");

/** The plain cursor keys the form shows for `profile`, in order (the next-page keys come apart). */
export function cursorFields(profile: Profile): CursorField[] {
  switch (profile) {
    case 'cursor':
      return [ID, VERSION, RECORDS, FILTER, EXTRA, PAGE_SIZE];
    case 'timestamp':
      return [ID, MODIFIED, RECORDS, SINCE, EXTRA, PAGE_SIZE];
    case 'snapshot':
      return [ID, RECORDS, EXTRA, PAGE_SIZE];
    default:
      return [];
  }
}

/** The next-page ways `profile` accepts: a snapshot can be one response, and has no version to ask again from. */
export function pageWays(profile: Profile): { way: PageWay; label: string }[] {
  const ways: { way: PageWay; label: string }[] = [
    { way: 'url', label: 'A next-page URL in the body' },
    { way: 'token', label: 'A next-page token in the body' },
    { way: 'link-header', label: 'A Link: rel="next" header' },
  ];
  if (profile === 'snapshot') return [{ way: 'none', label: 'None: the whole snapshot is one response' }, ...ways];
  return [...ways, { way: 'short-page', label: 'A short page is the last (asks again from the newest version)' }];
}

export function pageWayOf(c: CursorView): PageWay {
  if (c.next_url_pointer != null) return 'url';
  if (c.next_token_pointer != null || c.next_token_param != null) return 'token';
  if (c.next === 'link-header' || c.next === 'short-page') return c.next;
  return 'none';
}

/** `c` with `way` chosen: the keys of the other ways cleared, the chosen one's started. */
export function withPageWay(c: CursorView, way: PageWay): CursorView {
  const out: CursorView = { ...c, next_url_pointer: null, next_token_pointer: null, next_token_param: null, next: null };
  if (way === 'url') out.next_url_pointer = c.next_url_pointer ?? '/links/next';
  if (way === 'token') {
    out.next_token_pointer = c.next_token_pointer ?? '';
    out.next_token_param = c.next_token_param ?? '';
  }
  if (way === 'link-header' || way === 'short-page') out.next = way;
  return out;
}

/** The keys a new connection of `profile` starts from (the vendor's usual names). */
export function blankCursor(profile: Profile): CursorView | null {
  const base: CursorView = {
    id_field: 'id',
    version_field: null,
    records_pointer: '/items',
    filter_param: null,
    extra_query: null,
    page_size_param: 'limit',
    next_token_pointer: null,
    next_token_param: null,
    next_url_pointer: '/links/next',
    next: null,
    timestamp_format: null,
  };
  switch (profile) {
    case 'cursor':
      return { ...base, version_field: 'rowVersion', filter_param: 'since' };
    case 'timestamp':
      return { ...base, version_field: 'lastModified', filter_param: 'modifiedSince', timestamp_format: 'rfc3339' };
    case 'snapshot':
      return base;
    default:
      return null;
  }
}

/**
 * `c` switched to `profile`: keys the new profile does not take are dropped (a snapshot has no
 * version; only timestamp has a format and an overlap), the rest the user typed are kept.
 */
export function withProfile(c: ConnectionView, profile: Profile): ConnectionView {
  const out: ConnectionView = { ...c, profile };
  const fresh = blankCursor(profile);
  if (!fresh) {
    out.cursor = null;
  } else {
    const cur: CursorView = { ...fresh, ...(c.cursor ?? {}) };
    if (profile === 'snapshot') {
      cur.version_field = null;
      cur.filter_param = null;
      if (cur.next === 'short-page') cur.next = null;
    } else {
      cur.version_field ??= fresh.version_field;
      cur.filter_param ??= fresh.filter_param;
    }
    cur.timestamp_format = profile === 'timestamp' ? (cur.timestamp_format ?? 'rfc3339') : null;
    out.cursor = cur;
  }
  out.overlap = profile === 'timestamp' ? (c.overlap ?? '0s') : null;
  return out;
}

const OPTIONAL: (keyof CursorView)[] = [
  'version_field', 'filter_param', 'extra_query', 'page_size_param', 'next_token_pointer', 'next_token_param', 'next_url_pointer',
];

/** What the form holds → what `save_connection` gets: empty optional keys are absent (null). */
export function normalizeCursor(c: CursorView | null): CursorView | null {
  if (!c) return null;
  const out: CursorView = { ...c, id_field: c.id_field.trim() || 'id', records_pointer: c.records_pointer.trim() };
  for (const k of OPTIONAL) {
    const v = out[k] as string | null;
    (out as unknown as Record<string, string | null>)[k] = v == null || v.trim() === '' ? null : v.trim();
  }
  return out;
}

/** Whether the form shows `field` (`cursor.filter_param`, `overlap`, …) of the feed part for `profile`. */
export function isShownCursorField(field: string, profile: Profile): boolean {
  if (field === 'overlap') return profile === 'timestamp';
  if (profile === 'rowversion') return false;
  if (field === 'cursor') return true; // the whole section: shown above its fields
  const key = field.startsWith('cursor.') ? field.slice('cursor.'.length) : null;
  if (!key) return false;
  if (cursorFields(profile).some((f) => f.key === key)) return true;
  if (['next_url_pointer', 'next_token_pointer', 'next_token_param', 'next'].includes(key)) return true;
  return key === 'timestamp_format' && profile === 'timestamp';
}
