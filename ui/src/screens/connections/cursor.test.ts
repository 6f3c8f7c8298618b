import { describe, expect, it } from 'vitest';
import { blankConnection } from '../../lib/connections';
import { blankCursor, cursorFields, isShownCursorField, normalizeCursor, pageWayOf, pageWays, withPageWay, withProfile } from './cursor';

describe('the feed part of the Connections form', () => {
  it('shows the keys each profile takes', () => {
    const keys = (p: Parameters<typeof cursorFields>[0]) => cursorFields(p).map((f) => f.key);
    expect(keys('rowversion')).toEqual([]);
    expect(keys('cursor')).toContain('filter_param');
    expect(keys('timestamp')).toEqual(expect.arrayContaining(['version_field', 'filter_param']));
    expect(keys('snapshot')).not.toContain('version_field');
    expect(keys('snapshot')).not.toContain('filter_param');
    expect(cursorFields('timestamp').find((f) => f.key === 'version_field')?.label).toBe('Last-modified field');
  });

  it('switching profile keeps what was typed and drops what the new profile refuses', () => {
    let c = withProfile(blankConnection(), 'timestamp');
    expect(c.cursor?.version_field).toBe('lastModified');
    expect(c.cursor?.timestamp_format).toBe('rfc3339');
    expect(c.overlap).toBe('0s');
    c.cursor!.id_field = 'uid';
    c = withProfile(c, 'snapshot');
    expect(c.cursor).toMatchObject({ id_field: 'uid', version_field: null, filter_param: null, timestamp_format: null });
    expect(c.overlap).toBeNull();
    c = withProfile(c, 'cursor');
    expect(c.cursor).toMatchObject({ id_field: 'uid', version_field: 'rowVersion', filter_param: 'since' });
    expect(withProfile(c, 'rowversion').cursor).toBeNull();
  });

  it('one way to the next page at a time', () => {
    const c = blankCursor('cursor')!;
    expect(pageWayOf(c)).toBe('url');
    const token = withPageWay(c, 'token');
    expect(pageWayOf(token)).toBe('token');
    expect(token.next_url_pointer).toBeNull();
    const link = withPageWay(token, 'link-header');
    expect(link).toMatchObject({ next: 'link-header', next_token_pointer: null, next_token_param: null });
    expect(pageWays('snapshot').map((w) => w.way)).toContain('none');
    expect(pageWays('snapshot').map((w) => w.way)).not.toContain('short-page');
    expect(pageWays('cursor').map((w) => w.way)).not.toContain('none');
  });

  it('sends empty optional keys as null', () => {
    const c = { ...blankCursor('timestamp')!, extra_query: '  ', records_pointer: ' /items ', id_field: ' ' };
    expect(normalizeCursor(c)).toMatchObject({ extra_query: null, records_pointer: '/items', id_field: 'id' });
    expect(normalizeCursor(null)).toBeNull();
  });

  it('puts a cursor refusal beside its field only when the form shows it', () => {
    expect(isShownCursorField('cursor.filter_param', 'cursor')).toBe(true);
    expect(isShownCursorField('cursor.version_field', 'snapshot')).toBe(false);
    expect(isShownCursorField('cursor.timestamp_format', 'timestamp')).toBe(true);
    expect(isShownCursorField('overlap', 'cursor')).toBe(false);
    expect(isShownCursorField('cursor.filter_param', 'rowversion')).toBe(false);
  });
});
