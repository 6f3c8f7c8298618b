//! The failed-items actions: the UI's filter in the store's terms, a selection by ids or by
//! filter, and a bulk replay that reports progress.

use super::{ApiError, FailedFilter, FailedSelection};
use crate::events::EventKind;
use crate::store;
use crate::{ReplayReport, Syncmon};
use tokio_util::sync::CancellationToken;

/// Items replayed between two `replay_progress` events.
const REPLAY_CHUNK: usize = 100;

pub(super) fn store_filter(sm: &Syncmon, f: &FailedFilter) -> Result<store::FailedFilter, ApiError> {
    let entity = f.entity.as_deref().filter(|n| !n.is_empty());
    let mut out = sm.failed_filter_for(entity).map_err(|e| ApiError::field(e.code(), "entity", e.to_string()))?;
    if let Some(state) = f.state.as_deref() {
        if !matches!(state, "pending" | "resolved" | "discarded") {
            return Err(ApiError::field("usage", "state", format!("state `{state}` is none of pending, resolved, discarded")));
        }
    }
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    out.stage = nonempty(&f.stage);
    out.error_kind = nonempty(&f.error_kind);
    out.state = nonempty(&f.state);
    out.text = nonempty(&f.text);
    Ok(out)
}

pub(super) fn selection(sm: &Syncmon, selection: FailedSelection) -> Result<Vec<i64>, ApiError> {
    match (selection.ids, selection.filter) {
        (Some(ids), None) => Ok(ids),
        (None, Some(f)) => Ok(sm.failed_ids(&store_filter(sm, &f)?)?),
        (Some(_), Some(_)) => Err(ApiError::usage("give either ids or a filter, not both")),
        (None, None) => Err(ApiError::usage("give the failed item ids, or a filter to act on every matching item")),
    }
}

/// Replays in chunks so a bulk replay reports progress (`replay_progress`) as it goes.
pub(super) async fn replay(sm: &Syncmon, ids: &[i64]) -> Result<ReplayReport, ApiError> {
    let cancel = CancellationToken::new();
    let mut total = ReplayReport { replayed: 0, superseded: 0, still_failing: 0 };
    let mut done = 0;
    for chunk in ids.chunks(REPLAY_CHUNK) {
        let r = sm.replay(chunk, &cancel).await?;
        total.replayed += r.replayed;
        total.superseded += r.superseded;
        total.still_failing += r.still_failing;
        done += chunk.len();
        sm.emit(EventKind::ReplayProgress {
            done,
            total: ids.len(),
            replayed: total.replayed,
            superseded: total.superseded,
            still_failing: total.still_failing,
        });
    }
    Ok(total)
}
