//! The failed-items actions: the UI's filter in the store's terms, a selection by ids or by
//! filter, and a bulk replay that reports progress.

use super::{ApiError, FailedFilter};
use crate::events::EventKind;
use crate::state::UnknownState;
use crate::store;
use crate::{ReplayReport, Syncmon};
use tokio_util::sync::CancellationToken;

/// Items replayed between two `replay_progress` events.
const REPLAY_CHUNK: usize = 100;

pub(super) fn store_filter(sm: &Syncmon, f: &FailedFilter) -> Result<store::FailedFilter, ApiError> {
    let entity = f.entity.as_deref().filter(|n| !n.is_empty());
    let mut out = sm.failed_filter_for(entity).map_err(|e| ApiError::field(e.code(), "entity", e.to_string()))?;
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    out.stage = parsed(&f.stage, "stage")?;
    out.error_kind = nonempty(&f.error_kind);
    out.state = parsed(&f.state, "state")?;
    out.text = nonempty(&f.text);
    Ok(out)
}

/// A state word of the filter (empty is none); an unknown one is refused on its field.
fn parsed<T: std::str::FromStr<Err = UnknownState>>(v: &Option<String>, field: &str) -> Result<Option<T>, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.parse().map(Some).map_err(|e: UnknownState| ApiError::field("usage", field, e.to_string())),
        None => Ok(None),
    }
}

pub(super) fn selection(sm: &Syncmon, ids: Option<Vec<i64>>, filter: Option<FailedFilter>) -> Result<Vec<i64>, ApiError> {
    match (ids, filter) {
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
