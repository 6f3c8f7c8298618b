// Status words (DESIGN §6) and how the Overview shows the engine's verdict. The rule that turns
// health and metrics into tones and the banner's words is Rust's (crates/syncmon-core/src/facade/
// verdict.rs, sent as `OverviewResult.verdict`); this module only formats it.
import type { EntityStatus, Health, Verdict } from './types';
import { count, duration, plural, relative, until } from './format';
import { HEALTH, HEALTH_BY_SEVERITY } from './generated/enums';

export { HEALTH_LABEL } from './generated/enums';

/** Higher is worse: the engine's severity order (`Health` in crates/syncmon-core/src/state.rs). */
export function severity(h: Health): number {
  return Math.max(HEALTH_BY_SEVERITY.indexOf(h), 0);
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

/**
 * The banner's detail as shown: the verdict's, plus when its one retrying entity tries again, in
 * local time ("c/items · a call failed and is tried again by itself: next attempt 10:00 (in 20 s)").
 */
export function bannerDetail(v: Verdict, entities: EntityStatus[], now: number): string {
  const retrying = v.next_attempt_of == null ? undefined : entities.find((e) => entityName(e) === v.next_attempt_of);
  const when = retrying ? nextAttemptText(retrying, now) : null;
  return when ? `${v.detail}: ${when}` : v.detail;
}

/** Worst first, then by name: problems rise to the top. */
export function sortEntities(entities: EntityStatus[]): EntityStatus[] {
  const rank = (e: EntityStatus) => Math.max(severity(e.health), forwardingStuck(e) ? severity(HEALTH.Lagging) : 0);
  return [...entities].sort((a, b) => rank(b) - rank(a) || entityName(a).localeCompare(entityName(b)));
}
