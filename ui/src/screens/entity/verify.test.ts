import { describe, expect, it } from 'vitest';
import { verifyHeadline, verifyLines, verifyProgressText } from './verify';
import type { VerifyReport, VerifyResult } from '../../lib/types';

function report(extra: Partial<VerifyReport> = {}): VerifyReport {
  return {
    entity: 'demo/items',
    source_records: 250,
    replica_rows: 249,
    pages: 3,
    missing: 0,
    stale: 0,
    extra: 0,
    missing_ids: [],
    stale_ids: [],
    extra_ids: [],
    first_tracking_id: 'a',
    last_tracking_id: 'b',
    error: null,
    ...extra,
  };
}
const result = (r: VerifyReport): VerifyResult => ({ finished_at: 0, equal: !r.error && !r.missing && !r.stale && !r.extra, report: r });

describe('verify words', () => {
  it('says whether the replica equals the source, and what differs', () => {
    expect(verifyHeadline(result(report()))).toBe('The replica equals the source: 250 records in 3 pages');
    expect(verifyHeadline(result(report({ missing: 3, stale: 1200, missing_ids: ['x'] })))).toBe('The replica differs from the source: 3 missing, 1,200 stale');
    expect(verifyHeadline(result(report({ source_records: 1, error: { class: 'transient', message: 'HTTP 503', http_status: 503, tracking_id: null } }))))
      .toBe('Verify could not finish: HTTP 503 (after 1 record)');
  });

  it('lists the three kinds with their samples', () => {
    const lines = verifyLines(report({ extra: 2, extra_ids: ['e1', 'e2'] }));
    expect(lines.map((l) => [l.kind, l.count])).toEqual([['missing', 0], ['stale', 0], ['extra', 2]]);
    expect(lines[2].ids).toEqual(['e1', 'e2']);
  });

  it('counts while it reads', () => {
    expect(verifyProgressText({ records: 120, missing: 0, stale: 0 }, 3000)).toBe('120 of about 3,000 records read');
    expect(verifyProgressText({ records: 120, missing: 2, stale: 1 }, null)).toBe('120 records read · 2 missing, 1 stale so far');
  });
});
