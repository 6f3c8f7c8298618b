// The failed-items filter form → the `FailedFilter` params of docs/api.md, and the URL form of it
// (`#/failed?entity=conn/items&state=pending`) so Overview can link to a filtered list.
import type { FailedFilter, FailedStage, FailedState } from './types';
import { FAILED_STAGES, FAILED_STATE, FAILED_STATES } from './generated/enums';

export interface FilterForm {
  entity: string;
  /** '' is any stage. */
  stage: '' | FailedStage;
  error_kind: string;
  /** '' is all states. */
  state: '' | FailedState;
  text: string;
}

export const EMPTY_FORM: FilterForm = { entity: '', stage: '', error_kind: '', state: FAILED_STATE.Pending, text: '' };

/** Only the fields that are set, trimmed; the engine reads a missing `state` as pending. */
export function toFilter(f: FilterForm): FailedFilter {
  const out: FailedFilter = {};
  const entity = f.entity.trim();
  const kind = f.error_kind.trim();
  const text = f.text.trim();
  if (entity) out.entity = entity;
  if (f.stage) out.stage = f.stage;
  if (kind) out.error_kind = kind;
  if (f.state) out.state = f.state;
  if (text) out.text = text;
  return out;
}

export function formFromQuery(q: URLSearchParams): FilterForm {
  const state = q.get('state') ?? FAILED_STATE.Pending;
  const stage = q.get('stage') ?? '';
  return {
    entity: q.get('entity') ?? '',
    stage: FAILED_STAGES.find((s) => s === stage) ?? '',
    error_kind: q.get('error_kind') ?? '',
    state: FAILED_STATES.find((s) => s === state) ?? (state === '' || state === 'all' ? '' : FAILED_STATE.Pending),
    text: q.get('text') ?? '',
  };
}

export function queryFromForm(f: FilterForm): string {
  const q = new URLSearchParams();
  if (f.entity) q.set('entity', f.entity);
  if (f.stage) q.set('stage', f.stage);
  if (f.error_kind) q.set('error_kind', f.error_kind);
  if (f.state !== FAILED_STATE.Pending) q.set('state', f.state || 'all');
  if (f.text.trim()) q.set('text', f.text.trim());
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A stable key for "same query?" comparisons. */
export function filterKey(f: FailedFilter): string {
  return JSON.stringify([f.entity ?? '', f.stage ?? '', f.error_kind ?? '', f.state ?? '', f.text ?? '']);
}

export function failedLink(entity?: string): string {
  return `#/failed${entity ? `?entity=${encodeURIComponent(entity)}` : ''}`;
}
