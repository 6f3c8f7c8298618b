import { describe, expect, it } from 'vitest';
import { exportPath, kindGroups } from './export';

describe('failed-items export', () => {
  it('puts only the set conditions in the query', () => {
    expect(exportPath({}, 'csv')).toBe('/api/failed/export?format=csv');
    expect(exportPath({ entity: 'src/items', error_kind: 'missing_row_version', text: 'a b', any_state: true, rule: null }, 'jsonl')).toBe(
      '/api/failed/export?format=jsonl&entity=src%2Fitems&kind=missing_row_version&any_state=true&text=a+b',
    );
  });
  it('groups by error kind filter on click and clear on a second click', () => {
    const g = kindGroups([{ error_kind: 'schema', count: 3 }, { error_kind: 'not_json', count: 1 }], 'schema');
    expect(g).toEqual([{ kind: 'schema', count: 3, active: true }, { kind: 'not_json', count: 1, active: false }]);
  });
});
