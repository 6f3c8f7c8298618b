// The Connections screen's targets ([[target]]): blank and normalized forms, which refusal sits
// beside which field, and the live figures of RPC `targets` as the list shows them.
// Targets.svelte holds the state; this module the rules (targets.test.ts).
import { count, duration, plural, until } from '../../lib/format';
import type { TargetStatus, TargetView } from '../../lib/types';

export function blankTarget(): TargetView {
  return {
    id: '',
    base_url: '',
    auth: 'api_key',
    api_key_header: null,
    token_url: null,
    client_id: null,
    scope: null,
    secret_env: null,
    max_concurrency: 5,
    requests_per_second: 10,
    timeout: '30s',
    max_retries: 5,
    idempotency_header: null,
    ignore_fields: [],
    has_secret: false,
    is_connection: false,
    entities: [],
    test_path: '',
  };
}

export function cloneTarget(t: TargetView): TargetView {
  return JSON.parse(JSON.stringify(t)) as TargetView;
}

const OPTIONAL_TEXT = ['api_key_header', 'token_url', 'client_id', 'scope', 'secret_env', 'idempotency_header'] as const;

/** "updatedAt, revision" → ["updatedAt", "revision"] */
export function splitFields(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((f) => f.trim())
    .filter((f) => f !== '');
}

/** What the form holds → what `save_target` gets: trimmed, empty optional fields null, numbers as numbers. */
export function normalizeTarget(t: TargetView, ignoreText: string): TargetView {
  const out = cloneTarget(t);
  out.id = out.id.trim();
  out.base_url = out.base_url.trim();
  out.timeout = out.timeout.trim();
  for (const k of OPTIONAL_TEXT) {
    const v = out[k];
    out[k] = v == null || v.trim() === '' ? null : v.trim();
  }
  out.max_concurrency = Number(out.max_concurrency);
  out.requests_per_second = Number(out.requests_per_second);
  out.max_retries = Number(out.max_retries);
  out.ignore_fields = splitFields(ignoreText);
  return out;
}

const ALWAYS = new Set(['id', 'base_url', 'auth', 'max_concurrency', 'requests_per_second', 'timeout', 'max_retries', 'idempotency_header', 'ignore_fields']);
const BY_AUTH: Record<string, string[]> = {
  api_key: ['api_key_header', 'secret', 'secret_env'],
  bearer: ['secret', 'secret_env'],
  oauth2: ['token_url', 'client_id', 'scope', 'secret', 'secret_env'],
  none: [],
};

/** Whether the target form shows `field` (so its refusal sits beside it); otherwise it goes below. */
export function isShownTargetField(field: string | null, auth: TargetView['auth']): boolean {
  if (!field) return false;
  return ALWAYS.has(field) || (BY_AUTH[auth] ?? []).includes(field);
}

export interface TargetFigures {
  pending: string;
  oldest: string;
  rate: string;
  circuit: string;
  /** Something to look at: the circuit is open or the last write failed. */
  bad: boolean;
}

/** The live line of a target (RPC `targets`); null status: the running engine does not know it yet. */
export function figures(s: TargetStatus | undefined, now: number): TargetFigures | null {
  if (!s) return null;
  const open = s.circuit_open_until != null && s.circuit_open_until > now;
  const perMin = s.deliveries_per_minute;
  return {
    pending: `${count(s.pending)} ${plural(s.pending, 'change')} waiting`,
    oldest: s.oldest_queued_at == null ? 'none waiting' : `oldest waiting ${duration(Math.max(0, (now - s.oldest_queued_at) / 1000))}`,
    rate: `${perMin >= 10 || perMin === 0 ? Math.round(perMin) : perMin.toFixed(1)} per minute`,
    circuit: open ? `circuit open until ${until(s.circuit_open_until, now)}` : s.last_error ? `failing: ${s.last_error}` : 'circuit closed',
    bad: open || !!s.last_error,
  };
}

/** The auth words of the list's sub line: "api_key · secret saved". */
export function authLine(t: TargetView): string {
  if (t.auth === 'none') return 'no auth';
  return `${t.auth} · ${t.has_secret ? 'secret saved' : t.is_connection ? "the connection's secret" : 'no secret'}`;
}
