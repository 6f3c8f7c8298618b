//! Replay of a failed item, whichever stage failed: `validate` (and `apply`) fetch the record
//! again where the profile knows its URL, else take the stored payload, and write it to the
//! replica; `deliver` sends the record to the target again. `Syncmon::replay` picks the items
//! and counts the outcomes; this module is what one replay does.

use crate::context::EngineCtx;
use crate::engine::EntityRt;
use crate::error::Result;
use crate::forward::{self, Forwarder, Sent};
use crate::record::Rejected;
use crate::retry::FailureClass;
use crate::rowversion::RowVersion;
use crate::state::FailedStage;
use crate::store::{EntityKey, FailedItem, OutboxItem};
use tokio_util::sync::CancellationToken;

/// What replaying one failed item came to.
pub enum Replayed {
    Replayed,
    Superseded,
    StillFailing,
}

/// Re-runs the failed stage of one pending item of entity `e`.
pub async fn replay_item(ctx: &EngineCtx, e: &EntityRt, item: &FailedItem, cancel: &CancellationToken) -> Result<Replayed> {
    // Sending either side again would only meet the other: a conflict is settled by keeping one
    // (`Syncmon::resolve_conflict`).
    if item.stage == FailedStage::Conflict {
        return Ok(Replayed::StillFailing);
    }
    if item.stage == FailedStage::WriteBack {
        return write_back(ctx, e, item, cancel).await;
    }
    if item.stage == FailedStage::Deliver {
        return match &e.forward {
            Some(f) => deliver(ctx, &e.key, f, item, cancel).await,
            None => {
                let rej = Rejected {
                    id: item.record_id.clone(),
                    version: None,
                    payload: item.payload.clone(),
                    kind: "not_forwarded",
                    message: format!("{} forwards to no target any more (no forward_to in the config); discard the item", e.key),
                    rule: None,
                };
                ctx.store.replay_failed_again(item.id, &rej, None, ctx.clock.now_ms())?;
                Ok(Replayed::StillFailing)
            }
        };
    }
    validate(ctx, e, item, cancel).await
}

/// Re-runs the `validate` (or `ingest`) stage: with the current record re-fetched by id where the
/// profile knows its URL and the record came from the source, else with the stored payload; an item whose record the replica already holds
/// in a newer version is resolved as superseded.
async fn validate(ctx: &EngineCtx, e: &EntityRt, item: &FailedItem, cancel: &CancellationToken) -> Result<Replayed> {
    let id = item.id;
    let now = ctx.clock.now_ms();
    // A pushed record (stage `ingest`) never came from the source: its stored payload is the record.
    let source_url = item.record_id.as_deref().filter(|_| item.stage != FailedStage::Ingest).and_then(|rid| e.profile.record_url(rid));
    let (payload, tracking) = match source_url {
        Some(url) => match e.source.fetch(&url, Some(&e.key.entity), cancel, |f| Ok(String::from_utf8_lossy(&f.body).into_owned()), |_, _, _| {}).await {
            Ok((body, f)) => (body, f.tracking_id),
            Err(f) => {
                let (kind, message) = if f.class == FailureClass::Config && f.http_status == Some(404) {
                    // Gone at the source: nothing left to replay.
                    ("not_found", format!("the record no longer exists at the source ({f}); discard the item"))
                } else {
                    ("fetch_failed", f.to_string())
                };
                let rejected = Rejected { id: item.record_id.clone(), version: None, payload: item.payload.clone(), kind, message, rule: None };
                ctx.store.replay_failed_again(id, &rejected, f.tracking_id.as_deref(), now)?;
                return Ok(Replayed::StillFailing);
            }
        },
        None => (item.payload.clone(), None),
    };
    match e.profile.validate_text(&payload) {
        Ok(record) if e.profile.is_snapshot() => {
            // No version to compare: written as a snapshot pass writes it (content hash, change number).
            ctx.store.apply_snapshot_replayed(&e.key, &record, id, now)?;
            Ok(Replayed::Replayed)
        }
        Ok(record) => {
            if ctx.store.apply_replayed(&e.key, &record, id, now)? {
                Ok(Replayed::Superseded)
            } else {
                Ok(Replayed::Replayed)
            }
        }
        Err(rej) => {
            ctx.store.replay_failed_again(id, &rej, tracking.as_deref(), now)?;
            Ok(Replayed::StillFailing)
        }
    }
}

/// Re-runs the `deliver` stage of a failed item: sends the replica's current state of the record
/// when it is at least as new as the stored payload (a newer version, or its deletion), else the
/// stored payload. Success resolves the item (superseded when a newer version went out).
async fn deliver(ctx: &EngineCtx, key: &EntityKey, f: &Forwarder, item: &FailedItem, cancel: &CancellationToken) -> Result<Replayed> {
    let Some(record_id) = item.record_id.clone() else {
        return Ok(Replayed::StillFailing);
    };
    let stored = item.row_version.as_deref().and_then(RowVersion::parse).unwrap_or_default();
    let current = ctx.store.replica_row(key, &record_id)?;
    let out = match current {
        Some((v, data, deleted)) if RowVersion::parse(&v).unwrap_or_default() >= stored => {
            OutboxItem { id: 0, record_id, row_version: v, kind: if deleted { "delete" } else { "upsert" }.into(), data: Some(data) }
        }
        _ => OutboxItem { id: 0, record_id, row_version: stored.to_string(), kind: "upsert".into(), data: Some(item.payload.clone()) },
    };
    let newer = RowVersion::parse(&out.row_version).unwrap_or_default() > stored;
    // Sending a newer version resolves the item as superseded (by the version ≤ sent rule);
    // sending its own version resolves it as replayed.
    Ok(match forward::send_one(ctx, key, f, out, if newer { None } else { Some(item.id) }, cancel).await {
        Sent::Delivered if newer => Replayed::Superseded,
        Sent::HandedOver => Replayed::Superseded,
        Sent::Unchanged => Replayed::Replayed,
        Sent::Delivered => Replayed::Replayed,
        Sent::Failed { .. } => Replayed::StillFailing,
        Sent::Stop(why) => {
            if let Some(why) = why {
                tracing::warn!(item = item.id, "replay of a delivery stopped: {why}");
            }
            Replayed::StillFailing
        }
    })
}

/// Re-runs the `write_back` stage: marks the record at the source again (its replica row as it
/// is now; a record gone from the replica needs no mark and resolves the item).
async fn write_back(ctx: &EngineCtx, e: &EntityRt, item: &FailedItem, cancel: &CancellationToken) -> Result<Replayed> {
    let (Some(wb), Some(record_id)) = (e.write_back.as_ref(), item.record_id.clone()) else {
        return Ok(Replayed::StillFailing);
    };
    let current = ctx.store.replica_row(&e.key, &record_id)?;
    let (row_version, data) = match current {
        Some((v, data, false)) => (v, Some(data)),
        _ => (item.row_version.clone().unwrap_or_default(), None),
    };
    let queued = crate::store::WriteBackItem { id: 0, record_id, row_version, data };
    Ok(match crate::write_back::mark_one(ctx, e, wb, queued, Some(item.id), cancel).await {
        crate::write_back::Mark::Set | crate::write_back::Mark::Skipped => Replayed::Replayed,
        crate::write_back::Mark::Failed { .. } | crate::write_back::Mark::Stop(_) => Replayed::StillFailing,
    })
}
