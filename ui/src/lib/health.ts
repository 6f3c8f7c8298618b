// Status words (DESIGN §6), their colours, and the one-glance summary of the Overview.
import type { EntityStatus, Health, OverviewHeader } from './types';
import { count, duration, ms, percent, plural, relative, until } from './format';
import { HEALTH, HEALTH_BY_SEVERITY } from './generated/enums';

export const HEALTH_LABEL: Record<Health, string> = {
  healthy: 'Healthy',
  lagging: 'Lagging',
  failing: 'Failing',
  paused: 'Paused',
  resyncing: 'Resyncing',
  retrying: 'Retrying',
  circuit_open: 'Circuit open',
  waiting: 'Waiting',
  pending: 'Not synced yet',
  push_only: 'Push-only',
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

/** Lagging, waiting and retrying are warnings (nothing is broken yet); failing and circuit open are not. */
function isBad(h: Health): boolean {
  return h === HEALTH.Failing || h === HEALTH.CircuitOpen;
}

/**
 * When a row that is not healthy tries again, in words: "next attempt 14:05 (in 20 s)", "waiting
 * for the source until 14:05", "waiting for you" (paused, or a resync waiting for permission to
 * delete: it will not get better by itself). Null for a healthy row.
 */
export function nextAttemptText(e: EntityStatus, now: number): string | null {
  // A resync under way is not waiting to try: its progress is in the reason.
  if (!showsWhy(e) || e.health === HEALTH.PushOnly || (e.health === HEALTH.Resyncing && !e.forward_error)) return null;
  if (e.waits_for_user) return 'waiting for you';
  const waiting = waitingText(e, now);
  if (waiting) return waiting;
  if (e.next_attempt_at != null) {
    return e.next_attempt_at - now < 2000 ? 'next attempt now' : `next attempt ${until(e.next_attempt_at, now)} (${relative(e.next_attempt_at, now)})`;
  }
  // Healthy but its deliveries are stuck: the delivery worker tries again at every poll.
  if (e.health === HEALTH.Healthy && e.poll_every_seconds) return `delivery tried again at the next poll (every ${duration(e.poll_every_seconds)})`;
  return 'next attempt when the agent runs';
}

/** "500 of 3,000 records read · 2,500 rows not seen yet, deleted at the end unless the rest of
 * the feed has them": a resync's progress in the same words on every screen (the engine's status
 * reason says the same). */
export function resyncText(seen: number, of: number | null, wouldDelete: number | null | undefined): string {
  let t = `${count(seen)}${of ? ` of ${count(of)}` : ''} records read`;
  if (wouldDelete != null) {
    t += ` · ${count(wouldDelete)} ${plural(wouldDelete, 'row')} not seen yet, deleted at the end unless the rest of the feed has ${wouldDelete === 1 ? 'it' : 'them'}`;
  }
  return t;
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

export type Tone = 'ok' | 'warn' | 'bad' | 'info';

export interface Banner {
  tone: Tone;
  /** Whether every entity is in sync (failed items to review or paused ones aside). */
  inSync: boolean;
  title: string;
  detail: string;
}

export const ERROR_RATE_RED = 0.05;
export const P95_RED_MS = 500;

/** Above these thresholds the metric is an alarm (the cards' and the banner's one rule, below). */
export function headerAlarms(h: OverviewHeader): { errorRate: boolean; p95: boolean } {
  return { errorRate: h.error_rate_5m > ERROR_RATE_RED, p95: h.p95_ms_5m != null && h.p95_ms_5m > P95_RED_MS };
}

const RANK: Record<Tone, number> = { ok: 0, info: 1, warn: 2, bad: 3 };
const worst = (...tones: Tone[]): Tone => tones.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok' as Tone);

/** An entity's own tone: red when failing or its circuit is open; amber when retrying, waiting,
 * lagging or its forwarding is stuck; blue while resyncing or syncing for the first time. */
export function entityTone(e: EntityStatus): Tone {
  if (isBad(e.health)) return 'bad';
  if (e.health === HEALTH.Retrying || needsAttention(e.health) || forwardingStuck(e)) return 'warn';
  if (e.health === HEALTH.Resyncing || e.health === HEALTH.Pending) return 'info';
  return 'ok';
}

export interface Verdict {
  banner: Banner;
  /** The colour of each header card: the same rule as the banner, so they never disagree. */
  cards: { errorRate: Tone; p95: Tone; failed: Tone };
  /** The word of the "Overall health" card: the worst entity's, or the metric that is worse. */
  overall: { label: string; tone: Tone };
}

/**
 * THE RULE (one place): every signal the Overview shows has a tone, and the banner takes the worst
 * of them all, so nothing red or amber sits under a green "Everything is in sync".
 * - an entity: its `entityTone` (a transient failure inside the retry budget is "retrying", amber);
 * - the error rate of the last 5 min above 5 %: red while an entity is failing or its circuit is
 *   open (the errors are not being retried away), else amber (the retries absorb them);
 * - p95 above 500 ms: amber (slow, not broken);
 * - pending failed items: amber (records to review; the entities themselves are in sync).
 * Each header card is coloured with its own signal's tone.
 */
export function verdict(entities: EntityStatus[], header: OverviewHeader | null, now: number = Date.now()): Verdict {
  const alarms = header ? headerAlarms(header) : { errorRate: false, p95: false };
  const entityWorst = worst(...entities.map(entityTone));
  const cards = {
    errorRate: alarms.errorRate ? (entityWorst === 'bad' ? 'bad' : 'warn') : 'ok',
    p95: alarms.p95 ? 'warn' : 'ok',
    failed: (header?.pending_failed ?? entities.reduce((n, e) => n + e.pending_failed, 0)) > 0 ? 'warn' : 'ok',
  } satisfies Record<string, Tone>;
  let b = entityBanner(entities, now);
  const metricTone = worst(cards.errorRate, cards.p95);
  if (header && entities.length > 0 && RANK[metricTone] > RANK[b.tone]) {
    const parts: string[] = [];
    if (alarms.errorRate) parts.push(`${percent(header.error_rate_5m)} of ${count(header.requests_5m)} calls failed in the last 5 min`);
    if (alarms.p95) parts.push(`p95 response ${ms(header.p95_ms_5m)} (over ${P95_RED_MS} ms)`);
    const title = alarms.errorRate ? 'Calls to the source are failing' : 'The source is answering slowly';
    const rest = b.tone === 'ok' ? [] : [b.title + (b.detail ? `: ${b.detail}` : '')];
    b = { tone: metricTone, inSync: false, title, detail: [...parts, ...rest].join(' · ') };
  }
  if (b.tone === 'ok' && cards.failed === 'warn') {
    const n = header?.pending_failed ?? 0;
    b = { ...b, tone: 'warn', detail: `${count(n)} failed ${plural(n, 'item')} to review` };
  }
  const worstHealth = header?.health ?? HEALTH.Healthy;
  const healthTone = entityWorst;
  const overall =
    RANK[metricTone] > RANK[healthTone]
      ? { label: alarms.errorRate ? 'Calls failing' : 'Slow source', tone: metricTone }
      : { label: HEALTH_LABEL[worstHealth], tone: healthTone };
  return { banner: b, cards, overall };
}

/** The sentence at the top of the Overview that answers "is everything in sync?", from the
 * entities alone (`verdict` adds the metrics). */
export function banner(entities: EntityStatus[], now: number = Date.now()): Banner {
  return entityBanner(entities, now);
}

function names(list: EntityStatus[]): string {
  return list.slice(0, 3).map(entityName).join(', ') + (list.length > 3 ? ` and ${list.length - 3} more` : '');
}

function entityBanner(entities: EntityStatus[], now: number): Banner {
  if (entities.length === 0) {
    return { tone: 'info', inSync: false, title: 'No entities configured', detail: 'Add a connection and its entities on the Connections screen.' };
  }
  const bad = entities.filter((e) => needsAttention(e.health) || forwardingStuck(e));
  const retrying = entities.filter((e) => e.health === HEALTH.Retrying);
  if (bad.length) {
    const tone = bad.some((e) => isBad(e.health)) ? 'bad' : 'warn';
    return {
      tone,
      inSync: false,
      title: `${bad.length} ${bad.length === 1 ? 'entity needs' : 'entities need'} attention`,
      detail: names(bad) + (retrying.length ? ` · ${retrying.length} retrying` : ''),
    };
  }
  if (retrying.length) {
    return {
      tone: 'warn',
      inSync: false,
      title: `Retrying: ${retrying.length} ${plural(retrying.length, 'entity', 'entities')}`,
      detail: `${names(retrying)} · a call failed and is tried again by itself${retrying.length === 1 && nextAttemptText(retrying[0], now) ? `: ${nextAttemptText(retrying[0], now)}` : ''}`,
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
