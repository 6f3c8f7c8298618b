// The failed-items download of the served UI: `GET /api/failed/export` with the filter as a query.
import type { FailedFilter, KindCount } from '../../lib/types';

export type ExportFormat = 'csv' | 'jsonl';

/** The download's path for the filter: only the conditions that are set. */
export function exportPath(f: FailedFilter, format: ExportFormat): string {
  const q = new URLSearchParams({ format });
  const put = (k: string, v: string | null | undefined) => {
    if (v) q.set(k, v);
  };
  put('entity', f.entity);
  put('stage', f.stage);
  put('kind', f.error_kind);
  put('state', f.state);
  if (f.any_state) q.set('any_state', 'true');
  put('text', f.text);
  put('rule', f.rule);
  return `/api/failed/export?${q.toString()}`;
}

export function exportFileName(format: ExportFormat): string {
  return `syncmon-failed-items.${format}`;
}

/** The summary's groups, the active one marked; a click on it again clears the filter. */
export function kindGroups(kinds: KindCount[] | null, active: string): { kind: string; count: number; active: boolean }[] {
  return (kinds ?? []).map((k) => ({ kind: k.error_kind, count: Number(k.count), active: k.error_kind === active }));
}
