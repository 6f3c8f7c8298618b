// The words of a verify (the Entity screen's Verify card): one headline, one line per kind.
import type { VerifyReport, VerifyResult } from '../../lib/types';
import { count, plainWords, plural } from '../../lib/format';

export interface VerifyLine {
  kind: 'missing' | 'stale' | 'extra';
  count: number;
  /** What the count means, in plain words. */
  meaning: string;
  /** Up to 20 sample ids (the count is exact). */
  ids: string[];
}

/** "The replica equals the source: 250 records" / "The replica differs from the source: 3
 * missing, 4 stale, 2 extra" / "Verify could not finish: …". */
export function verifyHeadline(v: VerifyResult): string {
  const r = v.report;
  if (r.error) return `Verify could not finish: ${plainWords(r.error.message)} (after ${count(r.source_records)} ${plural(r.source_records, 'record')})`;
  if (v.equal) return `The replica equals the source: ${count(r.source_records)} ${plural(r.source_records, 'record')} in ${count(r.pages)} ${plural(r.pages, 'page')}`;
  const parts = verifyLines(r)
    .filter((l) => l.count > 0)
    .map((l) => `${count(l.count)} ${l.kind}`);
  return `The replica differs from the source: ${parts.join(', ')}`;
}

export function verifyLines(r: VerifyReport): VerifyLine[] {
  return [
    { kind: 'missing', count: r.missing, meaning: 'at the source, not in the replica (the next syncs should bring them; a full resync does)', ids: r.missing_ids },
    { kind: 'stale', count: r.stale, meaning: 'in both, but the replica holds another version', ids: r.stale_ids },
    { kind: 'extra', count: r.extra, meaning: 'in the replica, no longer at the source (a full resync deletes them)', ids: r.extra_ids },
  ];
}

/** While it reads: "120 of about 3,000 records read · 2 missing, 1 stale so far". */
export function verifyProgressText(p: { records: number; missing: number; stale: number }, replicaRows: number | null): string {
  let t = `${count(p.records)}${replicaRows ? ` of about ${count(replicaRows)}` : ''} records read`;
  if (p.missing || p.stale) t += ` · ${count(p.missing)} missing, ${count(p.stale)} stale so far`;
  return t;
}
