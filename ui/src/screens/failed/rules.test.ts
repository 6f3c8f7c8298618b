import { describe, expect, it } from 'vitest';
import { ruleGroups, ruleTotal, toggleChip } from './rules';
import { EMPTY_FORM, formFromQuery, queryFromForm, toFilter } from '../../lib/filters';
import { isFiltered } from './actions';

describe('failed items grouped by schema rule', () => {
  const counts = [
    { rule: 'type', count: 3 },
    { rule: 'minimum', count: 12 },
    { rule: 'pattern', count: 3 },
  ];

  it('lists the rules with their counts, most first, ties by name', () => {
    const groups = ruleGroups(counts, '');
    expect(groups.map((g) => [g.rule, g.count, g.active])).toEqual([
      ['minimum', 12, false],
      ['pattern', 3, false],
      ['type', 3, false],
    ]);
    expect(groups[0].label).toBe('minimum · 12 items');
    expect(ruleGroups([{ rule: 'required', count: 1 }], '')[0].label).toBe('required · 1 item');
    expect(ruleTotal(groups)).toBe(18);
    expect(ruleGroups(null, '')).toEqual([]);
  });

  it('marks the chosen rule, and keeps it listed when nothing breaks it any more', () => {
    expect(ruleGroups(counts, 'pattern').filter((g) => g.active).map((g) => g.rule)).toEqual(['pattern']);
    const gone = ruleGroups(counts, 'required');
    expect(gone.at(-1)).toMatchObject({ rule: 'required', count: 0, active: true });
  });

  it('filters by a click and clears on a second click', () => {
    expect(toggleChip('', 'minimum')).toBe('minimum');
    expect(toggleChip('minimum', 'type')).toBe('type');
    expect(toggleChip('type', 'type')).toBe('');
  });

  it('sends the chosen rule in the filter and keeps it in the URL', () => {
    const form = { ...EMPTY_FORM, rule: 'minimum' };
    expect(toFilter(form)).toEqual({ state: 'pending', rule: 'minimum' });
    expect(isFiltered(toFilter(form))).toBe(true);
    const q = queryFromForm(form);
    expect(q).toBe('?rule=minimum');
    expect(formFromQuery(new URLSearchParams(q.slice(1)))).toEqual(form);
  });
});
