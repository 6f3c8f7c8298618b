// The one door from the UI to the engine (docs/api.md). Two transports with one interface:
// Tauri IPC inside the desktop app, HTTP + server-sent events under `syncmon serve`.
// Screens call `api.call('method', params)` and never know which one runs.

import { backoffMs, createSseParser } from './sse';
import type { ApiError as EngineError, ErrorCode, Method, ParamsOf, ResultOf, StreamMessage } from './types';

/** What a call can fail with: the engine's `ErrorCode` (generated), or `network` (could not reach it). */
export type CallErrorCode = ErrorCode | 'network';

/** An error from the engine: `{code, message, field?}` whatever the transport. */
export class ApiError extends Error {
  readonly code: CallErrorCode;
  readonly field: string | null;
  readonly httpStatus: number | null;
  constructor(code: CallErrorCode, message: string, field: string | null = null, httpStatus: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.field = field;
    this.httpStatus = httpStatus;
  }
}

/** The engine's `{code, message, field?}`; its `code` is trusted to be one of the generated codes. */
function isErrorShape(x: unknown): x is EngineError {
  return typeof x === 'object' && x !== null && typeof (x as { code?: unknown }).code === 'string' &&
    typeof (x as { message?: unknown }).message === 'string';
}

/** Whatever a transport rejected with, as an ApiError. */
export function toApiError(x: unknown, httpStatus: number | null = null): ApiError {
  if (x instanceof ApiError) return x;
  if (isErrorShape(x)) return new ApiError(x.code, x.message, x.field ?? null, httpStatus);
  if (typeof x === 'object' && x !== null && isErrorShape((x as { error?: unknown }).error)) {
    return toApiError((x as { error: unknown }).error, httpStatus);
  }
  if (typeof x === 'string') {
    try {
      const parsed: unknown = JSON.parse(x);
      if (typeof parsed === 'object' && parsed !== null) return toApiError(parsed, httpStatus);
    } catch {
      /* plain text */
    }
    return new ApiError('io', x, null, httpStatus);
  }
  if (x instanceof Error) return new ApiError('io', x.message, null, httpStatus);
  return new ApiError('io', String(x), null, httpStatus);
}

/** The event-channel state, for the "live" indicator. */
export type StreamState = 'connecting' | 'live' | 'down';

export interface Subscription {
  /** Every event (and stream notice) as it arrives. */
  message(m: StreamMessage): void;
  /** The channel came back after a gap: refetch what is shown. */
  reconnected(): void;
  state?(s: StreamState, error?: ApiError): void;
}

export interface Transport {
  readonly kind: 'tauri' | 'http';
  call(method: string, params: unknown): Promise<unknown>;
  subscribe(sub: Subscription): () => void;
}

// ---------------------------------------------------------------- HTTP (`syncmon serve`)

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HttpDeps {
  fetch: FetchLike;
  /** The session's token (from `#token=…`), or null when the cookie carries it. */
  token(): string | null;
  sleep?(ms: number): Promise<void>;
  base?: string;
}

function headers(token: string | null, json: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (json) h['content-type'] = 'application/json';
  if (token) h['authorization'] = `Bearer ${token}`;
  return h;
}

const UNAUTHORIZED_HINT =
  'Not authorised: open the address that `syncmon serve` printed (run `syncmon serve --show-token` to print it again).';

export function createHttpTransport(deps: HttpDeps): Transport {
  const base = deps.base ?? '';
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  async function call(method: string, params: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await deps.fetch(`${base}/api/rpc`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: headers(deps.token(), true),
        body: JSON.stringify({ method, params: params ?? {} }),
      });
    } catch (e) {
      throw new ApiError('network', `Cannot reach Syncmon (${e instanceof Error ? e.message : String(e)}). Is \`syncmon serve\` running?`);
    }
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = undefined;
    }
    if (res.ok) {
      if (body === undefined) throw new ApiError('io', `The answer to \`${method}\` was not JSON.`, null, res.status);
      return body;
    }
    const shaped = body !== undefined && (isErrorShape(body) || isErrorShape((body as { error?: unknown } | null)?.error));
    if (shaped) throw toApiError(body, res.status);
    if (res.status === 401) throw new ApiError('unauthorized', UNAUTHORIZED_HINT, null, 401);
    const snippet = text.trim().slice(0, 200);
    throw new ApiError('io', `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`, null, res.status);
  }

  function subscribe(sub: Subscription): () => void {
    let closed = false;
    let controller: AbortController | null = null;
    let everConnected = false;
    let failedBefore = false;

    const loop = async () => {
      let attempt = 0;
      while (!closed) {
        sub.state?.('connecting');
        controller = new AbortController();
        let failure: ApiError | undefined;
        try {
          const res = await deps.fetch(`${base}/api/events`, {
            method: 'GET',
            credentials: 'same-origin',
            headers: { ...headers(deps.token(), false), accept: 'text/event-stream' },
            signal: controller.signal,
          });
          if (!res.ok || !res.body) {
            failure = res.status === 401
              ? new ApiError('unauthorized', UNAUTHORIZED_HINT, null, 401)
              : new ApiError('io', `The event stream answered HTTP ${res.status}.`, null, res.status);
          } else {
            const parser = createSseParser({
              data(d) {
                let m: unknown;
                try {
                  m = JSON.parse(d);
                } catch {
                  return;
                }
                if (typeof m === 'object' && m !== null && 'type' in m) sub.message(m as StreamMessage);
              },
              comment(c) {
                if (c === 'connected') {
                  attempt = 0;
                  sub.state?.('live');
                  // Back after a gap (or after failing at start-up): what is shown may be stale.
                  if (everConnected || failedBefore) sub.reconnected();
                  everConnected = true;
                  failedBefore = false;
                }
              },
            });
            const reader = res.body.getReader();
            const decoder = new TextDecoder();
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              parser.push(decoder.decode(value, { stream: true }));
            }
            parser.end();
          }
        } catch (e) {
          if (closed) return;
          failure = new ApiError('network', `The event stream dropped (${e instanceof Error ? e.message : String(e)}).`);
        }
        if (closed) return;
        failedBefore = true;
        sub.state?.('down', failure);
        await sleep(backoffMs(attempt++));
      }
    };
    void loop();
    return () => {
      closed = true;
      controller?.abort();
    };
  }

  return { kind: 'http', call, subscribe };
}

// ---------------------------------------------------------------- Tauri (desktop)

export interface TauriDeps {
  invoke(cmd: string, args: Record<string, unknown>): Promise<unknown>;
  listen(event: string, handler: (e: { payload: unknown }) => void): Promise<() => void>;
}

export const TAURI_EVENT = 'syncmon://event';

export function createTauriTransport(deps: TauriDeps): Transport {
  return {
    kind: 'tauri',
    async call(method, params) {
      try {
        return await deps.invoke('rpc', { request: { method, params: params ?? {} } });
      } catch (e) {
        throw toApiError(e);
      }
    },
    subscribe(sub) {
      let unlisten: (() => void) | null = null;
      let closed = false;
      sub.state?.('connecting');
      deps
        .listen(TAURI_EVENT, (e) => {
          const m = e.payload;
          if (typeof m === 'object' && m !== null && 'type' in m) sub.message(m as StreamMessage);
        })
        .then((u) => {
          if (closed) u();
          else {
            unlisten = u;
            sub.state?.('live');
          }
        })
        .catch((e) => sub.state?.('down', toApiError(e)));
      return () => {
        closed = true;
        unlisten?.();
      };
    },
  };
}

// ---------------------------------------------------------------- start-up

/** Tauri 2 injects `__TAURI_INTERNALS__` before any script runs. */
export function isTauri(win: unknown): boolean {
  return typeof win === 'object' && win !== null && '__TAURI_INTERNALS__' in win &&
    (win as Record<string, unknown>).__TAURI_INTERNALS__ != null;
}

export const TOKEN_KEY = 'syncmon.token';

/**
 * `#token=…` (possibly with other `&`-separated parts) → the token and the hash to keep.
 * Anything that is not a token fragment is returned untouched.
 */
export function parseTokenFragment(hash: string): { token: string | null; rest: string } {
  const h = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!/(^|&)token=/.test(h)) return { token: null, rest: hash };
  let token: string | null = null;
  const keep: string[] = [];
  for (const part of h.split('&')) {
    if (part.startsWith('token=')) token = decodeURIComponent(part.slice(6)) || null;
    else if (part) keep.push(part);
  }
  return { token, rest: keep.length ? `#${keep.join('&')}` : '' };
}

/** Reads the token from the address bar into sessionStorage and removes it from the URL. */
export function adoptToken(win: Window): string | null {
  const { token, rest } = parseTokenFragment(win.location.hash);
  if (token) {
    try {
      win.sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      /* storage disabled: keep it in memory only */
      memoryToken = token;
    }
    win.history.replaceState(null, '', `${win.location.pathname}${win.location.search}${rest || '#/overview'}`);
  }
  return storedToken(win);
}

let memoryToken: string | null = null;

/** Keeps a token the user pasted for this session (the same place `#token=` goes). */
export function rememberToken(win: Window, token: string): void {
  memoryToken = token;
  try {
    win.sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* memory only */
  }
}
function storedToken(win: Window): string | null {
  try {
    return win.sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
  } catch {
    return memoryToken;
  }
}

/**
 * A GET download from `syncmon serve` (the served UI only): fetched with the token, then saved
 * through an `<a download>` so the browser's own save dialog or downloads list takes it.
 */
export async function downloadFile(win: Window, path: string, filename: string): Promise<{ blob: Blob; filename: string }> {
  let res: Response;
  try {
    res = await win.fetch(path, { credentials: 'same-origin', headers: headers(storedToken(win), false) });
  } catch (e) {
    throw new ApiError('network', `Cannot reach Syncmon (${e instanceof Error ? e.message : String(e)}).`);
  }
  if (!res.ok) {
    const text = await res.text();
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const inner = (body as { error?: unknown } | undefined)?.error;
    if (isErrorShape(inner)) throw toApiError(inner, res.status);
    if (res.status === 401) throw new ApiError('unauthorized', UNAUTHORIZED_HINT, null, 401);
    throw new ApiError('io', `HTTP ${res.status}`, null, res.status);
  }
  // The server's name for it (e.g. the diagnostics bundle's time), else the caller's.
  const named = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1];
  if (named) filename = named;
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = win.document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  win.document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { blob, filename };
}

let transport: Transport | null = null;

export function setTransport(t: Transport): void {
  transport = t;
}

/** Chooses and installs the transport for this window. */
export async function initApi(win: Window): Promise<Transport> {
  if (isTauri(win)) {
    const [{ invoke }, { listen }] = await Promise.all([import('@tauri-apps/api/core'), import('@tauri-apps/api/event')]);
    transport = createTauriTransport({
      invoke: (cmd, args) => invoke(cmd, args),
      listen: (ev, handler) => listen(ev, handler),
    });
  } else {
    adoptToken(win);
    transport = createHttpTransport({ fetch: (i, init) => win.fetch(i, init), token: () => storedToken(win) });
  }
  return transport;
}

function current(): Transport {
  if (!transport) throw new ApiError('io', 'The API is not initialised yet.');
  return transport;
}

/** Typed calls: `api.call('failed_page', { filter, offset, limit })`. */
export const api = {
  call<M extends Method>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    return current().call(method, params) as Promise<ResultOf<M>>;
  },
  subscribe(sub: Subscription): () => void {
    return current().subscribe(sub);
  },
  get kind(): 'tauri' | 'http' | null {
    return transport?.kind ?? null;
  },
};
