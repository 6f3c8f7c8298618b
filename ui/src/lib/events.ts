// One line of plain words per engine event, for the Activity screen.
import { count, duration, ms, plainWords, timestamp } from './format';
import { resyncText } from './health';
import type { Event } from './types';
import { OUTCOME } from './generated/enums';

/** `conn/entity` for entity events, `conn` for connection-wide ones, null otherwise. */
export function eventEntity(e: Event): string | null {
  if ('entity' in e && 'connection' in e) return `${e.connection}/${e.entity}`;
  if ('connection' in e) return e.connection;
  return null;
}

export function eventTone(e: Event): 'ok' | 'warn' | 'bad' | 'plain' {
  switch (e.type) {
    case 'cycle_finished':
      return e.outcome === OUTCOME.CaughtUp ? 'ok' : e.outcome === OUTCOME.Waiting ? 'warn' : 'bad';
    case 'circuit_opened':
    case 'deletion_guard_tripped':
      return 'bad';
    case 'ingest_applied':
      return e.failed ? 'warn' : 'ok';
    case 'retrying':
    case 'failed_items_added':
    case 'conflict_settled':
      return 'warn';
    case 'forwarded':
      return e.error || e.failed ? 'warn' : 'plain';
    case 'circuit_closed':
      return 'ok';
    default:
      return 'plain';
  }
}

export function describeEvent(e: Event): string {
  switch (e.type) {
    case 'cycle_started':
      return `${e.kind} cycle from checkpoint ${e.from}`;
    case 'ingest_applied':
      return `pushed batch ${e.batch} applied: ${count(e.records)} ${e.records === 1 ? 'record' : 'records'}${e.failed ? `, ${count(e.failed)} failed` : ''}`;
    case 'page_applied':
      return `page applied: ${count(e.records)} records${e.failed ? `, ${count(e.failed)} failed` : ''}, checkpoint ${e.checkpoint}`;
    case 'retrying':
      return `retry ${e.attempt} in ${ms(e.wait_ms)}: ${plainWords(e.reason)}${e.http_status ? ` (HTTP ${e.http_status})` : ''}`;
    case 'cycle_finished':
      return e.outcome === OUTCOME.CaughtUp
        ? `caught up, ${count(e.records)} records`
        : `${e.outcome.replaceAll('_', ' ')}${e.error ? `: ${plainWords(e.error)}` : ''}`;
    case 'failed_items_added':
      return `${count(e.count)} failed ${e.count === 1 ? 'item' : 'items'} added`;
    case 'resync_progress':
      return `full resync: ${resyncText(e.seen, e.expected || null, e.would_delete)}`;
    case 'verify_progress':
      return `verify: ${count(e.records)} records read in ${count(e.pages)} ${e.pages === 1 ? 'page' : 'pages'}, ${count(e.missing)} missing, ${count(e.stale)} stale so far`;
    case 'deletion_guard_tripped':
      return `full resync stopped: it would delete ${count(e.would_delete)} of ${count(e.live)} rows`;
    case 'circuit_opened':
      return `circuit opened until ${timestamp(e.until).slice(11)} (${duration(Math.max(0, (e.until - e.at) / 1000))}): ${plainWords(e.error)}`;
    case 'circuit_closed':
      return 'circuit closed, calls resume';
    case 'nudged':
      return 'nudged: poll now';
    case 'lease_taken':
      return `held by agent ${e.agent} from now on`;
    case 'forwarded':
      return `forwarded ${count(e.delivered)} to ${e.target}${e.failed ? `, ${count(e.failed)} failed` : ''}${e.pending ? `, ${count(e.pending)} waiting` : ''}${e.error ? `: ${plainWords(e.error)}` : ''}`;
    case 'conflict_settled':
      return `${e.record_id} changed on both systems: kept \`${e.kept}\`'s version (${e.policy})`;
    case 'replay_progress':
      return `replay: ${count(e.done)} of ${count(e.total)} (${count(e.replayed)} replayed, ${count(e.superseded)} superseded, ${count(e.still_failing)} still failing)`;
    default:
      return JSON.stringify(e);
  }
}
