import { describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  createHttpTransport,
  createTauriTransport,
  isTauri,
  parseTokenFragment,
  toApiError,
  type Subscription,
} from './api';
import type { StreamMessage } from './types';

/** The ApiError a call rejects with (fails the test if it resolves). */
function rejection(p: Promise<unknown>): Promise<ApiError> {
  return p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as ApiError,
  );
}

function response(status: number, body: string, contentType = 'application/json'): Response {
  return new Response(body, { status, headers: { 'content-type': contentType } });
}

describe('transport selection', () => {
  it('picks Tauri only when the window carries __TAURI_INTERNALS__', () => {
    expect(isTauri({ __TAURI_INTERNALS__: {} })).toBe(true);
    expect(isTauri({})).toBe(false);
    expect(isTauri({ __TAURI_INTERNALS__: undefined })).toBe(false);
    expect(isTauri(null)).toBe(false);
  });
});

describe('HTTP transport', () => {
  it('posts {method, params} as JSON with the bearer token and same-origin credentials', async () => {
    const fetch = vi.fn(async () => response(200, '{"nudged":3}'));
    const t = createHttpTransport({ fetch, token: () => 'tok' });
    await expect(t.call('sync_now', {})).resolves.toEqual({ nudged: 3 });
    expect(fetch).toHaveBeenCalledTimes(1);
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/rpc');
    expect(init.method).toBe('POST');
    expect(init.credentials).toBe('same-origin');
    expect(init.headers).toEqual({ 'content-type': 'application/json', authorization: 'Bearer tok' });
    expect(JSON.parse(init.body as string)).toEqual({ method: 'sync_now', params: {} });
  });

  it('sends no Authorization header without a token (the cookie carries it)', async () => {
    const fetch = vi.fn(async () => response(200, '{}'));
    await createHttpTransport({ fetch, token: () => null }).call('settings', undefined);
    const init = (fetch.mock.calls[0] as unknown as [string, RequestInit])[1];
    expect(init.headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(init.body as string).params).toEqual({});
  });

  it('maps {error: {code, message, field}} to an ApiError with the field', async () => {
    const fetch = async () =>
      response(400, JSON.stringify({ error: { code: 'config', message: 'base_url must be https', field: 'base_url' } }));
    const err = await rejection(createHttpTransport({ fetch, token: () => 't' }).call('save_connection', {}));
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'config', message: 'base_url must be https', field: 'base_url', httpStatus: 400 });
  });

  it('turns a bare 401 into `unauthorized` with what to do next', async () => {
    const fetch = async () => response(401, 'unauthorized', 'text/plain');
    const err = await rejection(createHttpTransport({ fetch, token: () => null }).call('overview', {}));
    expect(err).toMatchObject({ code: 'unauthorized', httpStatus: 401 });
    expect(err.message).toMatch(/--show-token/);
  });

  it('reports a non-JSON 5xx with its status and body', async () => {
    const fetch = async () => response(502, 'Bad Gateway', 'text/plain');
    const err = await rejection(createHttpTransport({ fetch, token: () => null }).call('overview', {}));
    expect(err).toMatchObject({ code: 'io', httpStatus: 502, message: 'HTTP 502: Bad Gateway' });
  });

  it('reports an unreachable server as `network`', async () => {
    const fetch = async () => {
      throw new TypeError('Failed to fetch');
    };
    const err = await rejection(createHttpTransport({ fetch, token: () => null }).call('overview', {}));
    expect(err).toMatchObject({ code: 'network' });
    expect(err.message).toMatch(/Failed to fetch/);
  });
});

/** A fetch whose /api/events answers with the given SSE chunks, then ends the stream. */
function sseResponse(chunks: string[]): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

describe('HTTP event stream', () => {
  it('delivers events, reconnects after the stream ends, and asks for a refetch on reconnect', async () => {
    const streams = [
      [': connected\n\n', 'data: {"seq":1,"at":5,"type":"nudged","connection":"c","entity":"e"}\n\n'],
      [': connected\n\n', 'data: {"type":"resync_needed"}\n\n'],
    ];
    let calls = 0;
    const fetch = vi.fn(async (url: string, init?: RequestInit) => {
      expect(url).toBe('/api/events');
      expect((init?.headers as Record<string, string>).authorization).toBe('Bearer tok');
      const chunks = streams[calls++];
      if (!chunks) return new Promise<Response>(() => {}); // hang: stay "connected"
      return sseResponse(chunks);
    });
    const messages: StreamMessage[] = [];
    const states: string[] = [];
    let reconnects = 0;
    const sub: Subscription = {
      message: (m) => messages.push(m),
      reconnected: () => reconnects++,
      state: (s) => states.push(s),
    };
    const stop = createHttpTransport({ fetch, token: () => 'tok', sleep: async () => {} }).subscribe(sub);
    await vi.waitFor(() => expect(messages.length).toBe(2));
    stop();
    expect(messages[0]).toMatchObject({ type: 'nudged', seq: 1 });
    expect(messages[1]).toEqual({ type: 'resync_needed' });
    expect(reconnects).toBe(1); // the first connection is not a "re"connection
    expect(states.slice(0, 4)).toEqual(['connecting', 'live', 'down', 'connecting']);
  });

  it('backs off and reports `unauthorized` when the stream answers 401', async () => {
    let n = 0;
    const fetch = async () => (n++ === 0 ? response(401, '') : new Promise<Response>(() => {}));
    const errors: (ApiError | undefined)[] = [];
    const sleeps: number[] = [];
    const stop = createHttpTransport({
      fetch,
      token: () => null,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    }).subscribe({ message: () => {}, reconnected: () => {}, state: (s, e) => s === 'down' && errors.push(e) });
    await vi.waitFor(() => expect(n).toBe(2));
    stop();
    expect(errors[0]?.code).toBe('unauthorized');
    expect(sleeps[0]).toBe(500);
  });
});

describe('Tauri transport', () => {
  it('invokes the `rpc` command with {request: {method, params}}', async () => {
    const invoke = vi.fn(async () => ({ total: 0, items: [] }));
    const t = createTauriTransport({ invoke, listen: async () => () => {} });
    await t.call('failed_page', { filter: {}, offset: 0, limit: 100 });
    expect(invoke).toHaveBeenCalledWith('rpc', { request: { method: 'failed_page', params: { filter: {}, offset: 0, limit: 100 } } });
  });

  it('maps a rejected {code, message, field} and a rejected string', async () => {
    const t1 = createTauriTransport({
      invoke: async () => Promise.reject({ code: 'not_found', message: 'no entity x/y', field: null }),
      listen: async () => () => {},
    });
    await expect(t1.call('entity_detail', { entity: 'x/y' })).rejects.toMatchObject({ code: 'not_found', message: 'no entity x/y', field: null });
    const t2 = createTauriTransport({ invoke: async () => Promise.reject('command rpc not found'), listen: async () => () => {} });
    await expect(t2.call('overview', {})).rejects.toMatchObject({ code: 'io', message: 'command rpc not found' });
  });

  it('listens on syncmon://event and passes payloads through', async () => {
    let handler: ((e: { payload: unknown }) => void) | null = null;
    const unlisten = vi.fn();
    const t = createTauriTransport({
      invoke: async () => null,
      listen: async (name, h) => {
        expect(name).toBe('syncmon://event');
        handler = h;
        return unlisten;
      },
    });
    const got: StreamMessage[] = [];
    const stop = t.subscribe({ message: (m) => got.push(m), reconnected: () => {} });
    await vi.waitFor(() => expect(handler).not.toBeNull());
    handler!({ payload: { seq: 2, at: 1, type: 'circuit_closed', connection: 'c' } });
    handler!({ payload: 'garbage' });
    expect(got).toEqual([{ seq: 2, at: 1, type: 'circuit_closed', connection: 'c' }]);
    stop();
    expect(unlisten).toHaveBeenCalled();
  });
});

describe('error mapping', () => {
  it('accepts the engine shape, the HTTP envelope, JSON text, plain text and Errors', () => {
    expect(toApiError({ code: 'usage', message: 'm' })).toMatchObject({ code: 'usage', message: 'm', field: null });
    expect(toApiError({ error: { code: 'storage', message: 'disk full' } })).toMatchObject({ code: 'storage' });
    expect(toApiError('{"code":"credentials","message":"no secret","field":"secret"}')).toMatchObject({ code: 'credentials', field: 'secret' });
    expect(toApiError('boom')).toMatchObject({ code: 'io', message: 'boom' });
    expect(toApiError(new Error('x'))).toMatchObject({ code: 'io', message: 'x' });
  });
});

describe('token fragment', () => {
  it('takes #token=… and keeps the rest of the hash', () => {
    expect(parseTokenFragment('#token=abc')).toEqual({ token: 'abc', rest: '' });
    expect(parseTokenFragment('#token=a%2Bb&/failed')).toEqual({ token: 'a+b', rest: '#/failed' });
    expect(parseTokenFragment('#/overview')).toEqual({ token: null, rest: '#/overview' });
    expect(parseTokenFragment('')).toEqual({ token: null, rest: '' });
  });
});

describe('HTTP event stream after a failed start', () => {
  it('asks for a refetch when it first connects after failing (the first overview may have failed too)', async () => {
    let n = 0;
    const fetch = async () => {
      n++;
      if (n === 1) throw new TypeError('connection refused');
      if (n === 2) return sseResponse([': connected\n\n']);
      return new Promise<Response>(() => {});
    };
    let reconnects = 0;
    const stop = createHttpTransport({ fetch, token: () => null, sleep: async () => {} }).subscribe({
      message: () => {},
      reconnected: () => reconnects++,
    });
    await vi.waitFor(() => expect(n).toBe(3));
    stop();
    expect(reconnects).toBe(1);
  });
});
