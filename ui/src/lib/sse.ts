// A small server-sent-events reader for `GET /api/events`. EventSource cannot send the
// `Authorization` header docs/api.md asks for, so the stream is read with fetch and parsed here.

export interface SseHandlers {
  /** One complete event's `data` (multi-line data joined with "\n"). */
  data(data: string): void;
  /** A comment line (`: connected`, `: keepalive`), without the colon and leading space. */
  comment?(text: string): void;
}

/** Incremental parser: feed it decoded text chunks in any split; it calls back per event. */
export function createSseParser(h: SseHandlers): { push(chunk: string): void; end(): void } {
  let buf = '';
  let data: string[] = [];
  const line = (l: string) => {
    if (l === '') {
      if (data.length) h.data(data.join('\n'));
      data = [];
      return;
    }
    if (l.startsWith(':')) {
      h.comment?.(l.slice(1).replace(/^ /, ''));
      return;
    }
    const i = l.indexOf(':');
    const field = i < 0 ? l : l.slice(0, i);
    const value = i < 0 ? '' : l.slice(i + 1).replace(/^ /, '');
    if (field === 'data') data.push(value);
    // `event`, `id` and `retry` are not used by syncmon serve.
  };
  return {
    push(chunk: string) {
      buf += chunk;
      for (;;) {
        const m = /\r\n|\r|\n/.exec(buf);
        if (!m) break;
        // A lone "\r" at the very end may be the first half of "\r\n": wait for more.
        if (m[0] === '\r' && m.index === buf.length - 1) break;
        line(buf.slice(0, m.index));
        buf = buf.slice(m.index + m[0].length);
      }
    },
    end() {
      if (buf) line(buf);
      buf = '';
      line('');
    },
  };
}

/** Reconnect delay: 0.5 s doubling to a 15 s ceiling. */
export function backoffMs(attempt: number): number {
  return Math.min(15_000, 500 * 2 ** Math.max(0, attempt));
}
