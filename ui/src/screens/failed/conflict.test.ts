import { describe, expect, it } from 'vitest';
import { canonical, changedText, isOpenConflict, parseConflict, resolvedText } from './conflict';
import type { FailedItem, ForwardReport } from '../../lib/types';

const payload = JSON.stringify({
  a: { id: '7', name: 'Anvil', price: 10, tags: { x: 1, y: 2 }, rowVersion: '5' },
  b: { id: '7', name: 'Anvil XL', tags: { y: 2, x: 1 }, colour: 'red', rowVersion: '9' },
});

describe('parseConflict', () => {
  it('lists the union of both field sets, a first, and marks the differences', () => {
    const c = parseConflict(payload)!;
    expect(c.sides).toEqual(['a', 'b']);
    expect(c.rows.map((r) => r.field)).toEqual(['id', 'name', 'price', 'tags', 'rowVersion', 'colour']);
    const by = Object.fromEntries(c.rows.map((r) => [r.field, r]));
    expect(by.id).toEqual({ field: 'id', values: ['7', '7'], changed: false });
    expect(by.name.changed).toBe(true);
    expect(by.price).toEqual({ field: 'price', values: ['10', null], changed: true });
    expect(by.colour).toEqual({ field: 'colour', values: [null, 'red'], changed: true });
    expect(by.tags.changed).toBe(false);
    expect(changedText(c)).toBe('4 of 6 fields differ');
  });

  it('refuses what is not two versions', () => {
    expect(parseConflict('not json')).toBeNull();
    expect(parseConflict('[1,2]')).toBeNull();
    expect(parseConflict('{"a": {}}')).toBeNull();
    expect(parseConflict('{"a": {}, "b": {}, "c": {}}')).toBeNull();
  });

  it('a string and the number it spells differ', () => {
    const c = parseConflict('{"a": {"n": "1"}, "b": {"n": 1}}')!;
    expect(c.rows[0].changed).toBe(true);
    expect(changedText(c)).toBe('1 of 1 field differs');
  });
});

describe('canonical', () => {
  it('sorts keys at every depth', () => {
    expect(canonical({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });
});

describe('isOpenConflict', () => {
  const item = { stage: 'conflict', state: 'pending' } as FailedItem;
  it('only a pending conflict can be resolved', () => {
    expect(isOpenConflict(item)).toBe(true);
    expect(isOpenConflict({ ...item, state: 'resolved' } as FailedItem)).toBe(false);
    expect(isOpenConflict({ ...item, stage: 'deliver' } as FailedItem)).toBe(false);
  });
});

describe('resolvedText', () => {
  const r: ForwardReport = { target: 'b', delivered: 1, failed_new: 0, unchanged: 0, handed_over: 0, pending: 0, error: null, next_attempt_at: null };
  it('says what the delivery after the choice did', () => {
    expect(resolvedText('a', r)).toEqual({ text: 'Kept a; 1 change delivered to b', tone: 'ok' });
    expect(resolvedText('a', { ...r, delivered: 0, error: 'HTTP 503' }).tone).toBe('bad');
    expect(resolvedText('a', { ...r, failed_new: 2 }).text).toBe('Kept a; 1 change delivered to b, 2 new failed items');
  });
});
