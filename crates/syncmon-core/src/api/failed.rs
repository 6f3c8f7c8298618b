//! The failed-items actions: the UI's filter checked and resolved, a selection by ids or by
//! filter, and a bulk replay that reports progress.

use super::{ApiError, FailedFilter, FailedSelection};
use crate::events::EventKind;
use crate::state::{FailedStage, FailedState, UnknownState};
use crate::{ErrorCode, ReplayReport, Syncmon};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Items replayed between two `replay_progress` events.
const REPLAY_CHUNK: usize = 100;

/// The RPC's filter with its empty fields dropped and its entity resolved by the façade; a bad
/// entity is an error on that field of the form (bad stage or state words never get this far:
/// [`check_words`]).
pub(super) fn checked_filter(sm: &Syncmon, f: &FailedFilter) -> Result<FailedFilter, ApiError> {
    let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let resolved = sm
        .failed_filter(FailedFilter { entity: nonempty(&f.entity), ..FailedFilter::default() })
        .map_err(|e| ApiError::field(e.error_code(), "entity", e.to_string()))?;
    Ok(FailedFilter {
        entity: resolved.entity,
        stage: f.stage,
        error_kind: nonempty(&f.error_kind),
        state: f.state,
        any_state: f.any_state,
        text: nonempty(&f.text),
        rule: nonempty(&f.rule),
    })
}

/// Checks the stage and state words of a request's `params.filter` before it is parsed, so that an
/// unknown one is refused on its field of the form; an empty one is dropped (any stage, pending).
pub(super) fn check_words(params: &mut Value) -> Result<(), ApiError> {
    let Some(filter) = params.get_mut("filter").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (field, check) in [("stage", word::<FailedStage> as fn(&str) -> Result<(), UnknownState>), ("state", word::<FailedState>)] {
        match filter.get(field).and_then(Value::as_str) {
            Some("") => {
                filter.remove(field);
            }
            Some(s) => check(s).map_err(|e| ApiError::field(ErrorCode::Usage, field, e.to_string()))?,
            None => {}
        }
    }
    Ok(())
}

fn word<T: std::str::FromStr<Err = UnknownState>>(s: &str) -> Result<(), UnknownState> {
    s.parse::<T>().map(|_| ())
}

pub(super) fn selection(sm: &Syncmon, selection: FailedSelection) -> Result<Vec<i64>, ApiError> {
    match (selection.ids, selection.filter) {
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
