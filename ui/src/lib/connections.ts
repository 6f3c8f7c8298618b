// The Connections form: blank values, copies to edit, and which validation error goes beside
// which field (the engine names it in `field`: `base_url`, `entities[1].page_size`, …).
import type { ConnectionView, EntityView } from './types';

export function blankEntity(): EntityView {
  return { name: '', path: null, poll_every: '5m', page_size: 1000, full_resync_every: '24h', required_fields: [], deletion_guard: 0.5, schema: null };
}

export function blankConnection(): ConnectionView {
  return {
    id: '',
    base_url: '',
    profile: 'rowversion',
    auth: 'oauth2',
    api_key_header: null,
    token_url: null,
    client_id: null,
    scope: null,
    secret_env: null,
    webhook_secret_env: null,
    api_version: null,
    max_concurrency: 5,
    requests_per_second: 10,
    timeout: '30s',
    overlap: null,
    cursor: null,
    entities: [blankEntity()],
    has_secret: false,
    has_webhook_secret: false,
  };
}

export function cloneConnection(c: ConnectionView): ConnectionView {
  return JSON.parse(JSON.stringify(c)) as ConnectionView;
}

/** The message for `field` when the last save error named it. */
export function fieldErrorFor(err: { field: string | null; message: string } | null, field: string): string | null {
  return err && err.field === field ? err.message : null;
}

const TOP_LEVEL = new Set([
  'id', 'base_url', 'profile', 'api_version', 'auth', 'secret_env', 'max_concurrency', 'requests_per_second',
  'timeout', 'entities', 'webhook_secret_env',
]);
const BY_AUTH: Record<string, string[]> = {
  api_key: ['api_key_header', 'secret'],
  bearer: ['secret'],
  oauth2: ['token_url', 'client_id', 'scope', 'secret'],
  none: [],
};
const ENTITY_FIELDS = new Set(['name', 'path', 'poll_every', 'page_size', 'full_resync_every']);

/** Whether the form shows `field` (so its error can sit beside it); otherwise it goes below the form. */
export function isShownField(field: string | null, auth: ConnectionView['auth']): boolean {
  if (!field) return false;
  if (auth === 'none' && field === 'secret_env') return false; // the secret fields are hidden then
  if (TOP_LEVEL.has(field) || (BY_AUTH[auth] ?? []).includes(field)) return true;
  const m = /^entities\[(\d+)\]\.(\w+)$/.exec(field);
  return !!m && ENTITY_FIELDS.has(m[2]);
}

const OPTIONAL_TEXT = ['api_key_header', 'token_url', 'client_id', 'scope', 'secret_env', 'webhook_secret_env', 'api_version'] as const;

/** What the form holds → what `save_connection` gets: empty optional fields are absent (null), not "". */
export function normalizeConnection(c: ConnectionView): ConnectionView {
  const out = cloneConnection(c);
  out.id = out.id.trim();
  out.base_url = out.base_url.trim();
  for (const k of OPTIONAL_TEXT) {
    const v = out[k];
    out[k] = v == null || v.trim() === '' ? null : v.trim();
  }
  out.entities = out.entities.map((e) => ({
    ...e,
    name: e.name.trim(),
    path: e.path == null || e.path.trim() === '' ? null : e.path.trim(),
    full_resync_every: e.full_resync_every == null || e.full_resync_every.trim() === '' ? null : e.full_resync_every.trim(),
    page_size: Number(e.page_size),
  }));
  out.max_concurrency = Number(out.max_concurrency);
  out.requests_per_second = Number(out.requests_per_second);
  return out;
}
