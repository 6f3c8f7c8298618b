// What the Failed items screen's Replay and Discard do and say, without Svelte: which items an
// action applies to, when a button is enabled, what the confirmation and the toasts say, and the
// two RPC calls. Failed.svelte holds the state; this module holds the rules (actions.test.ts).
import { toApiError } from '../../lib/api';
import { count, plural } from '../../lib/format';
import type { FailedFilter, FailedItem, ParamsOf, ReplayReport, ResultOf } from '../../lib/types';
import { FAILED_STATE } from '../../lib/generated/enums';

/** The actions that ask first. A plain Replay of chosen items does not. */
export type ConfirmKind = 'replay-all' | 'discard' | 'discard-all';

/** What Replay / Discard act on: the checked rows, else the one open in the detail pane. */
export function targetIds(selected: Iterable<number>, openId: number | null): number[] {
  const ids = [...selected];
  return ids.length ? ids : openId != null ? [openId] : [];
}

/** The params of `failed_replay` / `failed_discard`: these ids, or (null) all that match the filter. */
export function scope(ids: number[] | null, filter: FailedFilter): { ids: number[] } | { filter: FailedFilter } {
  return ids ? { ids } : { filter };
}

/** Whether the filter narrows the default view (pending items of every entity). */
export function isFiltered(f: FailedFilter): boolean {
  return !!(f.entity || f.stage || f.error_kind || f.rule || f.text || (f.state && f.state !== FAILED_STATE.Pending));
}

/** "All matching" actions only make sense on pending items (the engine's default state). */
export function isPendingView(f: FailedFilter): boolean {
  return !f.state || f.state === FAILED_STATE.Pending;
}

/** Only a pending item can be replayed or discarded from its detail pane. */
export function isActionable(item: FailedItem): boolean {
  return item.state === FAILED_STATE.Pending;
}

/** The total line under the title: "Loading…", "1 item", "1,204 items match". */
export function totalText(total: number | null, filtered: boolean): string {
  return total == null ? 'Loading…' : `${count(total)} ${plural(total, 'item')}${filtered ? ' match' : ''}`;
}

export function replayLabel(selectedCount: number): string {
  return selectedCount ? `Replay selected (${selectedCount})` : 'Replay';
}

export function discardLabel(selectedCount: number): string {
  return selectedCount ? `Discard selected (${selectedCount})` : 'Discard';
}

export function replayAllLabel(total: number | null): string {
  return `Replay all matching${total ? ` (${count(total)})` : ''}`;
}

/** Which buttons of the action bar are enabled. */
export function enabled(s: { targets: number; total: number | null; replaying: boolean; busy: boolean; pendingView: boolean }) {
  return {
    replay: s.targets > 0 && !s.replaying,
    replayAll: !!s.total && !s.replaying && s.pendingView,
    discard: s.targets > 0 && !s.busy,
    discardAll: !!s.total && !s.busy && s.pendingView,
  };
}

export function reportText(r: ReplayReport): string {
  return `${count(r.replayed)} replayed, ${count(r.superseded)} already superseded, ${count(r.still_failing)} still failing`;
}

export interface Confirmation {
  title: string;
  confirmLabel: string;
  danger: boolean;
  /** The first paragraph: `lead`, the count in bold, then `rest`. */
  lead: string;
  count: string;
  rest: string;
  note: string;
}

/** What the dialog says before a Replay all / Discard: `total` matching, `targets` chosen. */
export function confirmation(kind: ConfirmKind, total: number | null, targets: number): Confirmation {
  if (kind === 'replay-all') {
    return {
      title: 'Replay all matching items?',
      confirmLabel: `Replay ${count(total ?? 0)}`,
      danger: false,
      lead: 'This re-runs the failed stage for ',
      count: count(total ?? 0),
      rest: `${plural(total, 'item')} matching the current filter.`,
      note: 'Items whose record has since synced fine are resolved as superseded; the rest stay in the list with their new error.',
    };
  }
  const all = kind === 'discard-all';
  const n = all ? (total ?? 0) : targets;
  return {
    title: 'Discard failed items?',
    confirmLabel: `Discard ${count(n)}`,
    danger: true,
    lead: 'This discards ',
    count: count(n),
    rest: all
      ? `${plural(total, 'item')} matching the current filter. They will not be replayed.`
      : `${plural(targets, 'item')}. ${targets === 1 ? 'It' : 'They'} will not be replayed.`,
    note: 'Discarded items stay visible under State: Discarded.',
  };
}

/** After a replay of `ids` (null: all matching), whether the open item must be fetched again. */
export function replayTouchesOpen(ids: number[] | null, openId: number | null): boolean {
  return openId != null && (!ids || ids.includes(openId));
}

/** After a discard of `ids` (null: all matching), whether the detail pane closes. */
export function discardTouchesOpen(ids: number[] | null, openId: number | null): boolean {
  return openId != null && (!ids || ids.includes(openId));
}

export type Tone = 'ok' | 'bad';

/** What the actions need from the app: the two RPC calls and the toast area. */
export interface ActionHost {
  call<M extends 'failed_replay' | 'failed_discard'>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  toast(text: string, tone?: Tone): void;
}

/** Replays `ids` (null: all matching `filter`) and says how it went; null when the call failed. */
export async function replay(host: ActionHost, ids: number[] | null, filter: FailedFilter): Promise<ReplayReport | null> {
  try {
    const r = await host.call('failed_replay', scope(ids, filter));
    host.toast(`Replay finished: ${reportText(r)}`, r.still_failing ? 'bad' : 'ok');
    return r;
  } catch (e) {
    host.toast(`Replay failed: ${toApiError(e).message}`, 'bad');
    return null;
  }
}

/** Discards `ids` (null: all matching `filter`) and says how many; false when the call failed. */
export async function discard(host: ActionHost, ids: number[] | null, filter: FailedFilter): Promise<boolean> {
  try {
    const r = await host.call('failed_discard', scope(ids, filter));
    host.toast(`Discarded ${count(r.discarded)} ${plural(r.discarded, 'item')}`);
    return true;
  } catch (e) {
    host.toast(`Discard failed: ${toApiError(e).message}`, 'bad');
    return false;
  }
}
