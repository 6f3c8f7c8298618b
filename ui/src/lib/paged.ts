// The data side of the virtualised failed-items table: rows are fetched as offset/limit pages
// (never the whole list), cached by page index, and only the pages near the viewport are kept.

export interface Page<T> {
  total: number;
  items: T[];
}

export type PageFetcher<T> = (offset: number, limit: number) => Promise<Page<T>>;

/** Rows [start, end) to render for a scroll position, with `overscan` extra rows each side. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  count: number,
  overscan = 8,
): { start: number; end: number } {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const visible = Math.ceil(Math.max(0, viewportHeight) / rowHeight) + 1;
  const start = Math.max(0, Math.min(count - 1, first) - overscan);
  const end = Math.min(count, first + visible + overscan);
  return { start, end: Math.max(start, end) };
}

/** Page indexes covering rows [start, end). */
export function pagesFor(start: number, end: number, pageSize: number): number[] {
  if (end <= start) return [];
  const out: number[] = [];
  for (let p = Math.floor(start / pageSize); p <= Math.floor((end - 1) / pageSize); p++) out.push(p);
  return out;
}

interface Cached<T> {
  gen: number;
  items: T[];
}

export interface PagedListOptions {
  pageSize?: number;
  /** Pages kept in memory; the ones farthest from the viewport go first. */
  maxPages?: number;
  onChange?: () => void;
  onError?: (e: unknown) => void;
}

export class PagedList<T> {
  readonly pageSize: number;
  readonly maxPages: number;
  /** Rows matching, from the latest page answer; null before the first one. */
  total: number | null = null;
  /** How many page requests were sent (tests and the debug line use it). */
  requests = 0;
  private pages = new Map<number, Cached<T>>();
  private inflight = new Map<number, number>(); // page → generation requested
  private gen = 0;
  private last: { start: number; end: number } = { start: 0, end: 0 };
  private fetcher: PageFetcher<T>;
  private opts: PagedListOptions;

  constructor(fetcher: PageFetcher<T>, opts: PagedListOptions = {}) {
    this.fetcher = fetcher;
    this.opts = opts;
    this.pageSize = opts.pageSize ?? 100;
    this.maxPages = Math.max(2, opts.maxPages ?? 30);
  }

  /** The row at `index`, or undefined while its page is loading. */
  get(index: number): T | undefined {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    return page?.items[index % this.pageSize];
  }

  /** Whether the page holding `index` is cached (possibly stale). */
  has(index: number): boolean {
    return this.pages.has(Math.floor(index / this.pageSize));
  }

  get cachedPages(): number[] {
    return [...this.pages.keys()].sort((a, b) => a - b);
  }

  /** Makes sure rows [start, end) are (being) fetched. Resolves when they are. */
  async ensure(start: number, end: number): Promise<void> {
    this.last = { start, end };
    if (this.total == null) {
      // The total comes with the first answer; ask for page 0 once, then for the range.
      if (this.inflight.get(0) === this.gen) return;
      await this.load(0);
      if (this.total != null) return this.ensure(this.last.start, this.last.end);
      return;
    }
    const jobs = pagesFor(start, Math.min(end, this.total), this.pageSize)
      .filter((p) => this.pages.get(p)?.gen !== this.gen && this.inflight.get(p) !== this.gen)
      .map((p) => this.load(p));
    await Promise.all(jobs);
  }

  private async load(p: number): Promise<void> {
    const gen = this.gen;
    this.inflight.set(p, gen);
    this.requests++;
    try {
      const res = await this.fetcher(p * this.pageSize, this.pageSize);
      if (gen !== this.gen) return; // a filter change or refresh happened meanwhile
      this.total = res.total;
      this.pages.set(p, { gen, items: res.items });
      this.evict();
      this.opts.onChange?.();
    } catch (e) {
      if (gen === this.gen) this.opts.onError?.(e);
    } finally {
      if (this.inflight.get(p) === gen) this.inflight.delete(p);
    }
  }

  private evict(): void {
    if (this.pages.size <= this.maxPages) return;
    const center = (this.last.start + this.last.end) / 2 / this.pageSize;
    const byDistance = [...this.pages.keys()].sort((a, b) => Math.abs(b - center) - Math.abs(a - center));
    while (this.pages.size > this.maxPages) this.pages.delete(byDistance.shift()!);
  }

  /**
   * The data changed (an event said so): keep showing the cached rows near the viewport until
   * fresh ones arrive, drop the rest, and refetch what is visible.
   */
  refresh(): Promise<void> {
    this.gen++;
    this.inflight.clear();
    const keep = new Set(pagesFor(this.last.start, this.last.end, this.pageSize));
    for (const p of [...this.pages.keys()]) if (!keep.has(p)) this.pages.delete(p);
    return this.ensure(this.last.start, this.last.end);
  }

  /** A different query (filter change): forget everything. */
  reset(fetcher?: PageFetcher<T>): void {
    if (fetcher) this.fetcher = fetcher;
    this.gen++;
    this.inflight.clear();
    this.pages.clear();
    this.total = null;
    this.last = { start: 0, end: 0 };
    this.opts.onChange?.();
  }
}
