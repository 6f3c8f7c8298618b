// Status words (DESIGN §6), their colours, and the one-glance summary of the Overview.
import type { EntityStatus, Health, OverviewHeader } from './types';
import { until } from './format';
import { HEALTH, HEALTH_BY_SEVERITY } from './generated/enums';

export const HEALTH_LABEL: Record<Health, string> = {
  healthy: 'Healthy',
  lagging: 'Lagging',
  failing: 'Failing',
  paused: 'Paused',
  resyncing: 'Resyncing',
  circuit_open: 'Circuit open',
  waiting: 'Waiting',
  pending: 'Not synced yet',
};

/** Higher is worse: the engine's severity order (`Health` in crates/syncmon-core/src/state.rs). */
export function severity(h: Health): number {
  return Math.max(HEALTH_BY_SEVERITY.indexOf(h), 0);
}

/**
 * Needs a human: failing, circuit open, lagging, waiting (the source asked for a long wait).
 * Paused/resyncing/pending are deliberate or transient.
 */
export function needsAttention(h: Health): boolean {
  return h === HEALTH.Failing || h === HEALTH.CircuitOpen || h === HEALTH.Lagging || h === HEALTH.Waiting;
}

/** Lagging and waiting are warnings (nothing is broken yet); failing and circuit open are not. */
function isBad(h: Health): boolean {
  return h === HEALTH.Failing || h === HEALTH.CircuitOpen;
}

/** "waiting for the source until 14:05" (local time; with the date when not today). */
export function waitingText(e: EntityStatus, now: number): string | null {
  return e.health === HEALTH.Waiting && e.next_attempt_at != null ? `waiting for the source until ${until(e.next_attempt_at, now)}` : null;
}

/** Delivery to the entity's target is stuck while changes wait (the entity itself may be healthy). */
export function forwardingStuck(e: EntityStatus): boolean {
  return !!e.forward_error;
}

/** Whether the row says why: anything not healthy, or forwarding that is stuck. */
export function showsWhy(e: EntityStatus): boolean {
  return e.health !== HEALTH.Healthy || forwardingStuck(e);
}

export const entityName = (e: { connection: string; entity: string }) => `${e.connection}/${e.entity}`;

export interface Banner {
  tone: 'ok' | 'warn' | 'bad' | 'info';
  /** Whether every entity is in sync (failed items to review or paused ones aside). */
  inSync: boolean;
  title: string;
  detail: string;
}

/** The sentence at the top of the Overview that answers "is everything in sync?". */
export function banner(entities: EntityStatus[]): Banner {
  if (entities.length === 0) {
    return { tone: 'info', inSync: false, title: 'No entities configured', detail: 'Add a connection and its entities on the Connections screen.' };
  }
  const bad = entities.filter((e) => needsAttention(e.health) || forwardingStuck(e));
  if (bad.length) {
    const names = bad.slice(0, 3).map(entityName).join(', ') + (bad.length > 3 ? ` and ${bad.length - 3} more` : '');
    const tone = bad.some((e) => isBad(e.health)) ? 'bad' : 'warn';
    return {
      tone,
      inSync: false,
      title: `${bad.length} ${bad.length === 1 ? 'entity needs' : 'entities need'} attention`,
      detail: names,
    };
  }
  const busy = entities.filter((e) => e.health === HEALTH.Resyncing || e.health === HEALTH.Pending);
  const paused = entities.filter((e) => e.health === HEALTH.Paused);
  const failed = entities.reduce((n, e) => n + e.pending_failed, 0);
  const notes: string[] = [];
  if (busy.length) notes.push(`${busy.length} syncing for the first time or resyncing`);
  if (paused.length) notes.push(`${paused.length} paused`);
  if (failed) notes.push(`${failed} failed ${failed === 1 ? 'item' : 'items'} to review`);
  if (busy.length || paused.length) {
    return { tone: 'info', inSync: !busy.length, title: busy.length ? 'Syncing…' : 'Everything is in sync', detail: notes.join(' · ') };
  }
  return {
    tone: failed ? 'warn' : 'ok',
    inSync: true,
    title: 'Everything is in sync',
    detail: notes.length ? notes.join(' · ') : `${entities.length} ${entities.length === 1 ? 'entity' : 'entities'} up to date`,
  };
}

/** Worst first, then by name: problems rise to the top. */
export function sortEntities(entities: EntityStatus[]): EntityStatus[] {
  const rank = (e: EntityStatus) => Math.max(severity(e.health), forwardingStuck(e) ? severity(HEALTH.Lagging) : 0);
  return [...entities].sort((a, b) => rank(b) - rank(a) || entityName(a).localeCompare(entityName(b)));
}

export const ERROR_RATE_RED = 0.05;
export const P95_RED_MS = 500;

export function headerAlarms(h: OverviewHeader): { errorRate: boolean; p95: boolean } {
  return { errorRate: h.error_rate_5m > ERROR_RATE_RED, p95: h.p95_ms_5m != null && h.p95_ms_5m > P95_RED_MS };
}
