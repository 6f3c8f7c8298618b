import { describe, expect, it } from 'vitest';
import { authLine, blankTarget, figures, isShownTargetField, normalizeTarget, splitFields } from './targets';
import type { TargetStatus } from '../../lib/types';

describe('normalizeTarget', () => {
  it('trims, nulls empty optional fields, reads numbers and the ignore list', () => {
    const t = { ...blankTarget(), id: ' dst ', base_url: ' http://x/target ', api_key_header: '  ', idempotency_header: ' X-Idem ' };
    const f = normalizeTarget({ ...t, max_concurrency: '2' as unknown as number, max_retries: '3' as unknown as number }, 'updatedAt, revision\n');
    expect(f.id).toBe('dst');
    expect(f.base_url).toBe('http://x/target');
    expect(f.api_key_header).toBeNull();
    expect(f.idempotency_header).toBe('X-Idem');
    expect([f.max_concurrency, f.max_retries]).toEqual([2, 3]);
    expect(f.ignore_fields).toEqual(['updatedAt', 'revision']);
  });
  it('splits on commas and spaces', () => {
    expect(splitFields(' a,b  c ,, ')).toEqual(['a', 'b', 'c']);
    expect(splitFields('')).toEqual([]);
  });
});

describe('isShownTargetField', () => {
  it('puts a refusal beside the field the form shows for that auth', () => {
    expect(isShownTargetField('timeout', 'none')).toBe(true);
    expect(isShownTargetField('client_id', 'oauth2')).toBe(true);
    expect(isShownTargetField('client_id', 'api_key')).toBe(false);
    expect(isShownTargetField('secret_env', 'none')).toBe(false);
    expect(isShownTargetField('backoff_base', 'api_key')).toBe(false);
    expect(isShownTargetField(null, 'api_key')).toBe(false);
  });
});

describe('figures', () => {
  const now = Date.UTC(2026, 11, 4, 10, 0, 0);
  const s: TargetStatus = {
    id: 'dst', base_url: 'http://x', entities: ['src/items'], is_connection: false, pending: 1, oldest_queued_at: now - 90_000,
    deliveries_per_minute: 2.4, failed_calls: 0, circuit_open_until: null, last_error: null,
  };
  it('says what waits, how fast it goes and the circuit', () => {
    const f = figures(s, now)!;
    expect(f.pending).toBe('1 change waiting');
    expect(f.oldest).toMatch(/^oldest waiting 1 min/);
    expect(f.rate).toBe('2.4 per minute');
    expect(f.circuit).toBe('circuit closed');
    expect(f.bad).toBe(false);
  });
  it('an open circuit or a last error is bad news', () => {
    expect(figures({ ...s, circuit_open_until: now + 30_000 }, now)!.circuit).toMatch(/^circuit open until /);
    expect(figures({ ...s, circuit_open_until: now - 1 }, now)!.bad).toBe(false);
    const f = figures({ ...s, pending: 0, oldest_queued_at: null, deliveries_per_minute: 0, last_error: 'HTTP 503' }, now)!;
    expect([f.pending, f.oldest, f.rate, f.circuit, f.bad]).toEqual(['0 changes waiting', 'none waiting', '0 per minute', 'failing: HTTP 503', true]);
  });
  it('a target the running engine does not know yet has no figures', () => {
    expect(figures(undefined, now)).toBeNull();
  });
});

describe('authLine', () => {
  it('names where the credential is', () => {
    expect(authLine({ ...blankTarget(), has_secret: true })).toBe('api_key · secret saved');
    expect(authLine({ ...blankTarget(), is_connection: true })).toBe("api_key · the connection's secret");
    expect(authLine({ ...blankTarget(), auth: 'none' })).toBe('no auth');
  });
});
