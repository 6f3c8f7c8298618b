//! The failed-items actions: the UI's filter checked and resolved, a selection by ids or by
//! filter, and a bulk replay that reports progress.

use super::{ApiError, FailedFilter};
use crate::events::EventKind;
use crate::{ErrorCode, ReplayReport, Syncmon};
use tokio_util::sync::CancellationToken;

/// Items replayed between two `replay_progress` events.
const REPLAY_CHUNK: usize = 100;

/// The RPC's filter checked (state), its empty fields dropped and its entity resolved by the
/// façade; a bad entity or state is an error on that field of the form.
pub(super) fn checked_filter(sm: &Syncmon, f: &FailedFilter) -> Result<FailedFilter, ApiError> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let resolved = sm
        .failed_filter(FailedFilter { entity: nonempty(&f.entity), ..FailedFilter::default() })
        .map_err(|e| ApiError::field(e.error_code(), "entity", e.to_string()))?;
    if let Some(state) = f.state.as_deref() {
        if !matches!(state, "pending" | "resolved" | "discarded") {
            return Err(ApiError::field(ErrorCode::Usage, "state", format!("state `{state}` is none of pending, resolved, discarded")));
        }
    }
    Ok(FailedFilter {
        entity: resolved.entity,
        stage: nonempty(&f.stage),
        error_kind: nonempty(&f.error_kind),
        state: nonempty(&f.state),
        text: nonempty(&f.text),
        rule: nonempty(&f.rule),
    })
}

pub(super) fn selection(sm: &Syncmon, ids: Option<Vec<i64>>, filter: Option<FailedFilter>) -> Result<Vec<i64>, ApiError> {
    match (ids, filter) {
        (Some(ids), None) => Ok(ids),
        (None, Some(f)) => Ok(sm.failed_ids(&checked_filter(sm, &f)?)?),
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
