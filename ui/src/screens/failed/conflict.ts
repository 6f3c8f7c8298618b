// A failed item of stage `conflict`: the record changed on both systems of a two-way pair since
// they were last in step. Its payload holds both versions, `{"<connection a>": {...}, "<b>": {...}}`.
// This module reads it into rows for the side-by-side view (ConflictView.svelte): the union of both
// field sets, each row marked when the two values differ; and says what "Keep <a>" did.
import { count, plural } from '../../lib/format';
import type { FailedItem, ForwardReport } from '../../lib/types';
import { FAILED_STAGE, FAILED_STATE } from '../../lib/generated/enums';

export interface ConflictRow {
  field: string;
  /** The value on each side, as JSON text; null when that side has no such field. */
  values: [string | null, string | null];
  /** The two sides differ here (a field only one side has counts as a difference). */
  changed: boolean;
}

export interface Conflict {
  /** The two connections, in the payload's order. */
  sides: [string, string];
  rows: ConflictRow[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON text with object keys sorted, so `{a,b}` and `{b,a}` compare equal. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Shown in a cell: strings as they are, everything else as JSON. */
function shown(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Whether the item is a conflict that can still be resolved by keeping one side. */
export function isOpenConflict(item: FailedItem): boolean {
  return item.stage === FAILED_STAGE.Conflict && item.state === FAILED_STATE.Pending;
}

/** Both versions of a conflict item, field by field; null when the payload is not two records. */
export function parseConflict(payload: string): Conflict | null {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!isObject(v)) return null;
  const sides = Object.keys(v);
  if (sides.length !== 2) return null;
  const [a, b] = sides.map((s) => v[s]);
  const ra = isObject(a) ? a : { value: a };
  const rb = isObject(b) ? b : { value: b };
  const fields = [...Object.keys(ra), ...Object.keys(rb).filter((k) => !(k in ra))];
  const rows = fields.map((field): ConflictRow => {
    const inA = field in ra;
    const inB = field in rb;
    const changed = inA !== inB || canonical(ra[field]) !== canonical(rb[field]);
    return { field, values: [inA ? shown(ra[field]) : null, inB ? shown(rb[field]) : null], changed };
  });
  return { sides: [sides[0], sides[1]], rows };
}

/** "2 of 5 fields differ" */
export function changedText(c: Conflict): string {
  const n = c.rows.filter((r) => r.changed).length;
  return `${count(n)} of ${count(c.rows.length)} ${plural(c.rows.length, 'field')} differ${n === 1 ? 's' : ''}`;
}

/** The toast after "Keep <side>": what the delivery that followed did. */
export function resolvedText(keep: string, r: ForwardReport): { text: string; tone: 'ok' | 'bad' } {
  const sent = `${count(r.delivered)} ${plural(r.delivered, 'change')} delivered to ${r.target}`;
  if (r.error) return { text: `Kept ${keep}; ${sent}, delivery stopped: ${r.error}`, tone: 'bad' };
  if (r.failed_new) return { text: `Kept ${keep}; ${sent}, ${count(r.failed_new)} new failed ${plural(r.failed_new, 'item')}`, tone: 'bad' };
  return { text: `Kept ${keep}; ${sent}`, tone: 'ok' };
}
