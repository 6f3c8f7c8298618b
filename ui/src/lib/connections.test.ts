import { describe, expect, it } from 'vitest';
import { blankConnection, cloneConnection, fieldErrorFor, isShownField, normalizeConnection } from './connections';

describe('connections form', () => {
  it('puts a validation error beside the field the engine named', () => {
    const err = { field: 'entities[1].page_size', message: 'page_size must be at least 1' };
    expect(fieldErrorFor(err, 'entities[1].page_size')).toBe('page_size must be at least 1');
    expect(fieldErrorFor(err, 'base_url')).toBeNull();
    expect(fieldErrorFor(null, 'base_url')).toBeNull();
  });

  it('knows which fields the form shows for each auth kind', () => {
    expect(isShownField('base_url', 'none')).toBe(true);
    expect(isShownField('entities[3].poll_every', 'none')).toBe(true);
    expect(isShownField('entities[0].deletion_guard', 'none')).toBe(false);
    expect(isShownField('token_url', 'oauth2')).toBe(true);
    expect(isShownField('token_url', 'api_key')).toBe(false);
    expect(isShownField('secret_env', 'none')).toBe(false);
    expect(isShownField(null, 'oauth2')).toBe(false);
  });

  it('edits a copy, never the listed connection', () => {
    const a = blankConnection();
    const b = cloneConnection(a);
    b.entities[0].name = 'items';
    expect(a.entities[0].name).toBe('');
  });
});

describe('normalizeConnection', () => {
  it('sends empty optional fields as null and trims the rest', () => {
    const c = blankConnection();
    c.id = ' shop ';
    c.base_url = 'https://api.example.com ';
    c.scope = '  ';
    c.token_url = 'https://login.example.com/token';
    c.entities[0] = { ...c.entities[0], name: 'items', path: '', full_resync_every: '' };
    const n = normalizeConnection(c);
    expect(n.id).toBe('shop');
    expect(n.base_url).toBe('https://api.example.com');
    expect(n.scope).toBeNull();
    expect(n.token_url).toBe('https://login.example.com/token');
    expect(n.entities[0]).toMatchObject({ name: 'items', path: null, full_resync_every: null, page_size: 1000 });
  });
});
