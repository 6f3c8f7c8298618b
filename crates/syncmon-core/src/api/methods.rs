//! One handler per RPC method, named after it, taking the method's params in the order of the
//! table in `mod.rs` and returning its result type (the dispatch `api::call` is generated from
//! that table, so a handler that answers another type does not compile).

use super::{
    config_edit, connections, failed, targets as target_views, views, ActivityResult, ApiError, ConnectionView, Empty, EntityDetailResult, FailedDiscardResult,
    FailedFilter, FailedPageResult, FailedSelection, OverviewResult, SaveConnectionResult, SetPausedResult, Settings, SyncNowResult, TargetView,
    TestConnectionResult, MAX_PAGE,
};
use crate::engine::CycleReport;
use crate::store::{self, FailedItem, Found, RequestRow};
use crate::{ErrorCode, ReplayReport, Syncmon};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

type Answer<T> = Result<T, ApiError>;

pub(super) async fn overview(sm: &Arc<Syncmon>) -> Answer<OverviewResult> {
    views::overview(sm)
}

pub(super) async fn sync_now(sm: &Arc<Syncmon>, entity: Option<String>) -> Answer<SyncNowResult> {
    Ok(SyncNowResult { nudged: sm.nudge_where(entity.as_deref())? })
}

pub(super) async fn resync_preview(sm: &Arc<Syncmon>, entity: String) -> Answer<crate::ResyncPreview> {
    Ok(sm.resync_preview(&entity)?)
}

pub(super) async fn resync(sm: &Arc<Syncmon>, entity: String, allow_deletions: bool) -> Answer<CycleReport> {
    Ok(sm.resync(&entity, allow_deletions, &CancellationToken::new()).await?)
}

pub(super) async fn set_paused(sm: &Arc<Syncmon>, entity: Option<String>, paused: bool) -> Answer<SetPausedResult> {
    Ok(SetPausedResult { changed: sm.set_paused_where(entity.as_deref(), paused)? })
}

pub(super) async fn reset_checkpoint(sm: &Arc<Syncmon>, entity: String) -> Answer<Empty> {
    sm.reset_checkpoint(&entity).await?;
    Ok(Empty {})
}

pub(super) async fn entity_detail(sm: &Arc<Syncmon>, entity: String) -> Answer<EntityDetailResult> {
    views::entity_detail(sm, &entity)
}

pub(super) async fn requests(sm: &Arc<Syncmon>, entity: Option<String>, failed_only: bool, tracking_id: Option<String>, limit: u32) -> Answer<Vec<RequestRow>> {
    Ok(sm.requests(entity.as_deref(), failed_only, tracking_id.as_deref(), limit.min(1000))?)
}

pub(super) async fn diagnostics(sm: &Arc<Syncmon>, include_payloads: bool) -> Answer<crate::SavedDiagnostics> {
    let sm = sm.clone();
    tokio::task::spawn_blocking(move || sm.save_diagnostics(&crate::DiagnosticsOptions { include_payloads }))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Io, format!("the diagnostics bundle failed: {e}")))?
        .map_err(Into::into)
}

/// Reads the whole entity from the source, writing nothing, and compares it with the replica
/// (`verify_progress` events while it reads); the result is kept as the entity's last verify.
pub(super) async fn verify(sm: &Arc<Syncmon>, entity: String) -> Answer<crate::engine::VerifyResult> {
    let report = sm.verify(&entity, &CancellationToken::new()).await?;
    Ok(crate::engine::VerifyResult { finished_at: sm.now_ms(), equal: report.equal(), report })
}

pub(super) async fn find(sm: &Arc<Syncmon>, query: String) -> Answer<Found> {
    if query.trim().is_empty() {
        return Err(ApiError::field(ErrorCode::Usage, "query", "type a Trackingid, a pushed batch's id or a record id"));
    }
    Ok(sm.find(&query)?)
}

pub(super) async fn failed_page(sm: &Arc<Syncmon>, filter: FailedFilter, offset: u32, limit: u32) -> Answer<FailedPageResult> {
    if limit > MAX_PAGE {
        return Err(ApiError::field(ErrorCode::Usage, "limit", format!("a page holds at most {MAX_PAGE} items; ask for the next page with offset")));
    }
    let f = failed::checked_filter(sm, &filter)?;
    let (total, items) = sm.failed_page(&f, offset, limit)?;
    let rules = if offset == 0 { Some(sm.failed_rule_counts(&f)?) } else { None };
    let kinds = if offset == 0 { Some(sm.failed_kind_counts(&f)?) } else { None };
    Ok(FailedPageResult { total, items, rules, kinds })
}

pub(super) async fn failed_item(sm: &Arc<Syncmon>, id: i64) -> Answer<FailedItem> {
    Ok(sm.failed_item(id)?)
}

pub(super) async fn ingest_batch(sm: &Arc<Syncmon>, id: String) -> Answer<store::IngestBatch> {
    Ok(sm.ingest_batch(&id)?)
}

pub(super) async fn failed_replay(sm: &Arc<Syncmon>, selection: FailedSelection) -> Answer<ReplayReport> {
    let ids = failed::selection(sm, selection)?;
    failed::replay(sm, &ids).await
}

pub(super) async fn failed_discard(sm: &Arc<Syncmon>, selection: FailedSelection) -> Answer<FailedDiscardResult> {
    let ids = failed::selection(sm, selection)?;
    Ok(FailedDiscardResult { discarded: sm.discard(&ids)? })
}

pub(super) async fn failed_resolve(sm: &Arc<Syncmon>, id: i64, keep: String) -> Answer<crate::forward::ForwardReport> {
    Ok(sm.resolve_conflict(id, &keep, &CancellationToken::new()).await?)
}

pub(super) async fn targets(sm: &Arc<Syncmon>) -> Answer<Vec<crate::TargetStatus>> {
    Ok(sm.targets()?)
}

pub(super) async fn connections(sm: &Arc<Syncmon>) -> Answer<Vec<ConnectionView>> {
    connections::list(sm).await
}

pub(super) async fn save_connection(sm: &Arc<Syncmon>, connection: Box<ConnectionView>) -> Answer<SaveConnectionResult> {
    config_edit::save_connection(sm, &connection)
}

pub(super) async fn test_connection(sm: &Arc<Syncmon>, id: String) -> Answer<TestConnectionResult> {
    connections::test_connection(sm, &id).await
}

pub(super) async fn targets_config(sm: &Arc<Syncmon>) -> Answer<Vec<TargetView>> {
    target_views::list(sm).await
}

pub(super) async fn save_target(sm: &Arc<Syncmon>, target: Box<TargetView>) -> Answer<SaveConnectionResult> {
    config_edit::save_target(sm, &target)
}

pub(super) async fn test_target(sm: &Arc<Syncmon>, id: String, path: Option<String>) -> Answer<TestConnectionResult> {
    target_views::test_target(sm, &id, path.as_deref()).await
}

pub(super) async fn set_secret(sm: &Arc<Syncmon>, connection: String, webhook: bool, secret: String) -> Answer<Empty> {
    connections::set_secret(sm, &connection, webhook, secret).await?;
    Ok(Empty {})
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn activity(
    sm: &Arc<Syncmon>,
    entity: Option<String>,
    kind: Option<String>,
    text: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    before_seq: Option<i64>,
    limit: u32,
) -> Answer<ActivityResult> {
    let typed = store::EventQuery { connection: None, entity, kind, text, since, until, before_seq, limit: limit as usize };
    let q = views::activity_query(sm, typed);
    let (events, more) = sm.search_events(&q);
    Ok(ActivityResult { events, more })
}

pub(super) async fn settings(sm: &Arc<Syncmon>) -> Answer<Settings> {
    views::settings(sm)
}

pub(super) async fn save_settings(sm: &Arc<Syncmon>, notifications: bool, failing_after_seconds: u64) -> Answer<Settings> {
    views::save_settings(sm, Settings { notifications, failing_after_seconds })
}
