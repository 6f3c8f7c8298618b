import { describe, expect, it } from 'vitest';
import { EMPTY_FORM, failedLink, filterKey, formFromQuery, queryFromForm, toFilter, type FilterForm } from './filters';
import { entityLink, findLink, parseRoute, queryOf } from './route';

describe('failed-items filter → params', () => {
  it('sends only what is set, trimmed', () => {
    expect(toFilter(EMPTY_FORM)).toEqual({ state: 'pending' });
    expect(toFilter({ entity: 'c/items', stage: 'deliver', error_kind: ' http_4xx ', state: '', text: '  abc ', rule: '' })).toEqual({
      entity: 'c/items',
      stage: 'deliver',
      error_kind: 'http_4xx',
      any_state: true,
      text: 'abc',
    });
  });

  it('round-trips through the URL query', () => {
    const form: FilterForm = { entity: 'c/items', stage: 'validate', error_kind: '', state: 'resolved', text: 'x y', rule: '' };
    const q = queryFromForm(form);
    expect(q).toBe('?entity=c%2Fitems&stage=validate&state=resolved&text=x+y');
    expect(formFromQuery(new URLSearchParams(q.slice(1)))).toEqual(form);
    expect(queryFromForm(EMPTY_FORM)).toBe('');
    expect(formFromQuery(new URLSearchParams('state=all')).state).toBe('');
    expect(formFromQuery(new URLSearchParams('state=bogus')).state).toBe('pending');
    expect(formFromQuery(new URLSearchParams('stage=apply')).stage).toBe('');
  });

  it('gives equal keys to equal filters', () => {
    expect(filterKey({ entity: 'a', text: undefined })).toBe(filterKey({ entity: 'a' }));
    expect(filterKey({ entity: 'a' })).not.toBe(filterKey({ entity: 'b' }));
  });

  it('links from the overview to a filtered list', () => {
    expect(failedLink('c/items')).toBe('#/failed?entity=c%2Fitems');
    expect(parseRoute(failedLink('c/items'))).toMatchObject({ name: 'failed' });
    const r = parseRoute(failedLink('c/items'));
    expect(r.name === 'failed' && r.query.get('entity')).toBe('c/items');
  });
});

describe('hash routes', () => {
  it('parses every screen and falls back to the overview', () => {
    expect(parseRoute('#/overview')).toEqual({ name: 'overview' });
    expect(parseRoute('')).toEqual({ name: 'overview' });
    expect(parseRoute('#/nope')).toEqual({ name: 'overview' });
    expect(parseRoute('#/entity/demo/items')).toEqual({ name: 'entity', entity: 'demo/items' });
    expect(parseRoute('#/entity/demo')).toEqual({ name: 'overview' });
    expect(parseRoute('#/connections')).toEqual({ name: 'connections' });
    expect(parseRoute('#/activity')).toEqual({ name: 'activity' });
  });

  it('reads the query of a hash route', () => {
    expect(queryOf('#/failed?entity=c%2Fitems&state=all').get('entity')).toBe('c/items');
    expect(queryOf('#/failed?entity=c%2Fitems&state=all').get('state')).toBe('all');
    expect([...queryOf('#/failed').keys()]).toEqual([]);
  });

  it('encodes entity links so odd names survive', () => {
    expect(entityLink('my conn/items')).toBe('#/entity/my%20conn/items');
    expect(parseRoute(entityLink('my conn/items'))).toEqual({ name: 'entity', entity: 'my conn/items' });
  });
});

describe('the find route', () => {
  it('carries the text looked for, slashes and all', () => {
    expect(parseRoute(findLink(' 3f2a-77 '))).toEqual({ name: 'find', query: '3f2a-77' });
    expect(parseRoute(findLink('a/b c'))).toEqual({ name: 'find', query: 'a/b c' });
    expect(parseRoute('#/find')).toEqual({ name: 'overview' });
  });
});
