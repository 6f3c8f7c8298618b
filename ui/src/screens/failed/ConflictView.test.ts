import { describe, expect, it } from 'vitest';
import { render } from 'svelte/server';
import ConflictView from './ConflictView.svelte';
import type { FailedItem } from '../../lib/types';

const item = {
  id: 4, connection: 'a', entity: 'items', record_id: '7', row_version: '5', stage: 'conflict', state: 'pending',
  payload: JSON.stringify({ a: { id: '7', name: 'Anvil', qty: 1 }, b: { id: '7', name: 'Anvil XL', qty: 1, colour: 'red' } }),
  error_kind: 'conflict', message: 'changed on both', http_status: null, tracking_id: null, attempts: 1,
  first_failed_at: 0, last_failed_at: 0, resolution: null, rule: null,
} as FailedItem;

describe('ConflictView', () => {
  it('renders both versions side by side, marks the differing fields, offers Keep a / Keep b', () => {
    const { body } = render(ConflictView, { props: { item } });
    expect(body).toContain('data-testid="keep-a"');
    expect(body).toContain('Keep b');
    expect(body.match(/data-testid="conflict-row"/g)?.length).toBe(4);
    expect(body.match(/data-changed="true"/g)?.length).toBe(2);
    expect(body).toContain('(absent)');
    expect(body).toContain('2 of 4 fields differ');
  });
  it('a resolved conflict shows the versions without the buttons', () => {
    const { body } = render(ConflictView, { props: { item: { ...item, state: 'resolved' } as FailedItem } });
    expect(body).toContain('data-testid="conflict"');
    expect(body).not.toContain('keep-a');
  });
});
