//! Records pushed to Syncmon: the agent's side. The HTTP handler (`webhook/ingest.rs`) verifies
//! a call and stores its body as a batch (`store/ingest.rs`) before answering 202; the worker
//! here applies queued batches through the same write path as a polled page: the entity's
//! profile parses each record (id, version, required fields), `Store::apply_pages` compares
//! versions, and records that fail become failed items of stage `ingest`.
//!
//! The worker runs in the agent (`scheduler.rs`), never in the HTTP handler: at start it applies
//! whatever an earlier agent left queued (a crash between the 202 and the apply loses nothing),
//! then it wakes for each new batch. Batches of a paused entity wait until it is resumed.

use crate::context::EngineCtx;
use crate::engine::EntityRt;
use crate::events::EventKind;
use crate::profile::Profile;
use crate::record::{Record, Rejected};
use crate::store::{IngestApplied, PageBatch, QueuedBatch, StoreError};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often batches held by a paused entity are looked at again (resuming wakes nobody).
const HELD_RECHECK: Duration = Duration::from_secs(5);

/// Parses a stored body (one record, or an array of records) with the entity's profile.
pub fn parse_batch(profile: &Profile, body: &str) -> (Vec<Record>, Vec<Rejected>) {
    let items: Vec<&RawValue> = match serde_json::from_str::<Vec<&RawValue>>(body) {
        Ok(items) => items,
        Err(_) => match serde_json::from_str::<&RawValue>(body) {
            Ok(one) => vec![one],
            // Checked when it was received; kept whole as one failed record if it is not JSON.
            Err(_) => {
                return match profile.validate_text(body) {
                    Ok(r) => (vec![r], Vec::new()),
                    Err(rej) => (Vec::new(), vec![*rej]),
                }
            }
        },
    };
    let (mut records, mut rejected) = (Vec::with_capacity(items.len()), Vec::new());
    for raw in items {
        match profile.validate_text(raw.get()) {
            Ok(r) => records.push(r),
            Err(rej) => rejected.push(*rej),
        }
    }
    (records, rejected)
}

/// Applies one batch to its entity `e` (the batch's own).
pub fn apply_batch(ctx: &EngineCtx, e: &EntityRt, batch: &QueuedBatch) -> Result<IngestApplied, StoreError> {
    let (mut records, mut rejected) = parse_batch(&e.profile, &batch.body);
    if e.profile.is_snapshot() {
        // A snapshot entity's versions are the store's own change numbers, given during a pass:
        // a pushed record has none to compare, so none is written rather than one guessed.
        rejected.extend(records.drain(..).map(|r| Rejected {
            id: Some(r.id),
            version: None,
            payload: r.data,
            kind: "unversioned_entity",
            message:
                "records cannot be pushed to an entity of the snapshot profile (it has no version to compare); push to an entity with a version field".into(),
            rule: None,
        }));
    }
    let now_ms = ctx.clock.now_ms();
    let page = PageBatch {
        records: &records,
        rejected: &rejected,
        tracking_id: Some(&batch.id),
        http_status: None,
        max_version: None,
        resync_cursor: None,
        run_id: 0,
        now_ms,
        // A timestamp entity's pushed record at the time held is compared by content, as a re-read is.
        rereads_checkpoint: e.profile.rereads_checkpoint(),
    };
    let out = ctx.store.ingest_apply(batch, &page, now_ms)?;
    let (connection, entity) = (batch.key.connection.clone(), batch.key.entity.clone());
    tracing::info!(%connection, %entity, batch = %batch.id, state = out.state.as_str(), written = out.written, failed = out.failed, "pushed batch applied");
    ctx.events.emit(EventKind::IngestApplied {
        connection: connection.clone(),
        entity: entity.clone(),
        batch: batch.id.clone(),
        records: records.len() + rejected.len(),
        failed: rejected.len(),
        state: out.state.as_str().to_string(),
    });
    if out.failed_new > 0 {
        ctx.events.emit(EventKind::FailedItemsAdded { connection, entity, count: out.failed_new });
    }
    Ok(out)
}

/// Applies every queued batch whose entity is configured and not paused, oldest first.
/// Returns whether any batch was held back (paused entity).
fn apply_queued(ctx: &EngineCtx, entities: &[Arc<EntityRt>]) -> bool {
    let mut after = 0;
    let mut held = false;
    loop {
        let batch = match ctx.store.ingest_next_queued(after) {
            Ok(Some(b)) => b,
            Ok(None) => return held,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the queued pushed batches; retrying later");
                return true;
            }
        };
        after = batch.seq;
        let Some(e) = entities.iter().find(|e| e.key == batch.key) else {
            tracing::warn!(batch = %batch.id, entity = %batch.key, "a pushed batch waits for an entity that is not configured");
            continue;
        };
        // Paused, or another agent's entity (its ingest worker applies the batch).
        if !ctx.holds(&e.key) || ctx.store.entity(&e.key).is_ok_and(|r| r.paused) {
            held = true;
            continue;
        }
        if let Err(err) = apply_batch(ctx, e, &batch) {
            tracing::error!(error = %err, batch = %batch.id, entity = %batch.key, "a pushed batch could not be applied; it stays queued");
            held = true;
        }
    }
}

/// The agent's ingest worker: applies what is queued at start, then whenever `wake` is notified
/// (a batch was stored), until cancelled.
pub async fn worker(ctx: Arc<EngineCtx>, entities: Vec<Arc<EntityRt>>, wake: Arc<Notify>, cancel: CancellationToken) {
    loop {
        let (c, es) = (ctx.clone(), entities.clone());
        let held = tokio::task::spawn_blocking(move || apply_queued(&c, &es)).await.unwrap_or(true);
        // With other agents, a batch another agent's receiver stored wakes nothing here: look again.
        let recheck = async {
            if held || ctx.leasing.is_some() {
                tokio::time::sleep(HELD_RECHECK).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = wake.notified() => {}
            _ = recheck => {}
            _ = cancel.cancelled() => return,
        }
    }
}
