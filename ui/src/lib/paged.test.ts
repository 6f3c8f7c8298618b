import { describe, expect, it } from 'vitest';
import { PagedList, pagesFor, visibleRange, type PagedListOptions } from './paged';

describe('virtual list math', () => {
  it('renders only the rows in view plus overscan', () => {
    expect(visibleRange(0, 340, 34, 100_000, 5)).toEqual({ start: 0, end: 16 });
    expect(visibleRange(34 * 50_000, 340, 34, 100_000, 5)).toEqual({ start: 49_995, end: 50_016 });
    expect(visibleRange(34 * 99_995, 340, 34, 100_000, 5)).toEqual({ start: 99_990, end: 100_000 });
  });

  it('handles empty lists and scroll positions past the end', () => {
    expect(visibleRange(0, 500, 34, 0)).toEqual({ start: 0, end: 0 });
    expect(visibleRange(1e9, 500, 34, 10, 2)).toEqual({ start: 7, end: 10 });
  });

  it('maps row ranges to page indexes', () => {
    expect(pagesFor(0, 16, 100)).toEqual([0]);
    expect(pagesFor(95, 120, 100)).toEqual([0, 1]);
    expect(pagesFor(100, 200, 100)).toEqual([1]);
    expect(pagesFor(5, 5, 100)).toEqual([]);
  });
});

/** A fake `failed_page` over `total` rows that records every request. */
function fakeSource(total: number) {
  const calls: [number, number][] = [];
  const resolvers: (() => void)[] = [];
  let hold = false;
  const fetch = (offset: number, limit: number) => {
    calls.push([offset, limit]);
    const items = Array.from({ length: Math.max(0, Math.min(limit, total - offset)) }, (_, i) => ({ id: offset + i }));
    const answer = { total, items };
    if (!hold) return Promise.resolve(answer);
    return new Promise<typeof answer>((r) => resolvers.push(() => r(answer)));
  };
  return {
    calls,
    fetch,
    hold(v: boolean) {
      hold = v;
    },
    release() {
      resolvers.splice(0).forEach((r) => r());
    },
  };
}

/** A list with pages of 100 rows (unless `opts` say otherwise) over a fake source of `total` rows. */
function listOver(total: number, opts: PagedListOptions = {}) {
  const src = fakeSource(total);
  return { src, list: new PagedList(src.fetch, { pageSize: 100, ...opts }) };
}

describe('PagedList', () => {
  it('fetches only the pages of the visible range, never the whole list', async () => {
    const { src, list } = listOver(100_000);
    await list.ensure(0, 30);
    expect(list.total).toBe(100_000);
    expect(src.calls).toEqual([[0, 100]]);
    await list.ensure(50_000, 50_030);
    expect(src.calls).toEqual([[0, 100], [50_000, 100]]);
    expect(list.get(50_010)).toEqual({ id: 50_010 });
    expect(list.get(70_000)).toBeUndefined();
  });

  it('serves cached pages without asking again', async () => {
    const { src, list } = listOver(1000);
    await list.ensure(0, 30);
    await list.ensure(10, 40);
    await list.ensure(0, 30);
    expect(src.calls.length).toBe(1);
  });

  it('asks once for a page that is already in flight', async () => {
    const { src, list } = listOver(1000);
    await list.ensure(0, 10);
    src.hold(true);
    const a = list.ensure(150, 180);
    const b = list.ensure(160, 190);
    src.release();
    await Promise.all([a, b]);
    expect(src.calls).toEqual([[0, 100], [100, 100]]);
  });

  it('fetches both pages when the range straddles a boundary', async () => {
    const { src, list } = listOver(1000);
    await list.ensure(90, 120);
    expect(src.calls).toEqual([[0, 100], [100, 100]]);
  });

  it('keeps at most maxPages, dropping the ones farthest from the viewport', async () => {
    const { list } = listOver(100_000, { maxPages: 3 });
    for (const p of [0, 1, 2, 3, 4]) await list.ensure(p * 100, p * 100 + 30);
    expect(list.cachedPages).toEqual([2, 3, 4]);
  });

  it('drops answers that arrive after a filter change', async () => {
    const { src, list } = listOver(1000);
    src.hold(true);
    const stale = list.ensure(0, 30);
    list.reset();
    src.release();
    await stale;
    expect(list.total).toBeNull();
    expect(list.get(0)).toBeUndefined();
  });

  it('refresh keeps the visible rows while refetching them, and forgets the rest', async () => {
    const { src, list } = listOver(1000);
    await list.ensure(500, 530);
    await list.ensure(0, 30);
    src.hold(true);
    const r = list.refresh();
    expect(list.get(5)).toEqual({ id: 5 }); // still shown while loading
    expect(list.cachedPages).toEqual([0]);
    src.release();
    await r;
    expect(src.calls.at(-1)).toEqual([0, 100]);
  });

  it('reports errors and tries again on the next ensure', async () => {
    let fail = true;
    const errors: unknown[] = [];
    const list = new PagedList(
      async (offset: number) => {
        if (fail) throw new Error('down');
        return { total: 10, items: [{ id: offset }] };
      },
      { onError: (e) => errors.push(e) },
    );
    await list.ensure(0, 10);
    expect(errors.length).toBe(1);
    fail = false;
    await list.ensure(0, 10);
    expect(list.total).toBe(10);
  });
});
