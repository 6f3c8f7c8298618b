//! The optional second sink: every change an entity writes to its replica is also sent to a
//! target HTTP API (`forward_to`), `PUT {target}{forward_path}/{id}` with the record as the body
//! (the method is `forward_method`; a `forward_path` holding `{id}` places the id itself),
//! `DELETE` for a deletion found by a full resync.
//!
//! Changes reach the target through the outbox (`store/outbox.rs`), written in the same
//! transaction as the replica, so a crash loses none. Delivery never holds up the entity: its
//! checkpoint moves with the replica, and a record the target will not take becomes a failed item
//! of stage `deliver` (at once for a 4xx rejection, after the retry budget for 408/429/5xx,
//! timeouts and resets) while the others go on. When record after record runs out of retries,
//! the target's circuit opens and the changes wait in the outbox until it half-opens, instead of
//! all becoming failed items while the target is down. Missing or refused credentials stop a
//! pass the same way: they are not the record's fault.

use crate::context::EngineCtx;
use crate::events::EventKind;
use crate::record::Rejected;
use crate::retry::{Failure, FailureClass};
use crate::source::SourceClient;
use crate::store::{EntityKey, OutboxItem, Store};
use crate::two_way::Check;
use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Outbox rows read per step of a delivery pass.
const BATCH: u32 = 256;

/// An entity's link to its target.
pub struct Forwarder {
    /// Shared by every entity forwarding to the same target: one set of limits and one breaker.
    pub target: Arc<SourceClient>,
    /// `{target base_url}{forward_path}`; the record id is appended as one path segment.
    pub base: Url,
    /// Wakes the delivery worker when a write queued changes.
    pub nudge: Notify,
    /// One delivery pass at a time per entity, whoever asks.
    pub busy: tokio::sync::Mutex<()>,
    /// Why the last pass stopped with changes left (credentials, circuit open); None after a
    /// pass that got through.
    pub last_error: Mutex<Option<String>>,
    /// The header the idempotency key goes in (the target's `idempotency_header`).
    pub idempotency_header: reqwest::header::HeaderName,
    /// How an upsert is sent (`forward_method`, default PUT; deletions are DELETE).
    pub method: Method,
    /// `forward_path` when it places the id itself (`/items/{id}/full`); else the id is appended.
    pub template: Option<String>,
    /// The entity's `forward_rename` and `forward_drop`: applied to the body on the way out.
    pub rename: std::collections::BTreeMap<String, String>,
    pub drop: Vec<String>,
    /// Set when the target is the system of a connection forwarding the same entity back.
    pub pair: Option<crate::two_way::Pair>,
}

impl Forwarder {
    pub fn new(target: Arc<SourceClient>, forward_path: &str, idempotency_header: &str) -> Result<Forwarder, String> {
        let idempotency_header = reqwest::header::HeaderName::from_bytes(idempotency_header.as_bytes())
            .map_err(|e| format!("target `{}`: idempotency_header `{idempotency_header}` is not a header name ({e})", target.cfg.id))?;
        // A path template (`/v2/items/{id}/full`) is checked with a stand-in id.
        let template = forward_path.contains("{id}").then(|| forward_path.to_string());
        let probe = forward_path.replace("{id}", "x");
        let text = format!("{}{}", target.cfg.base_url.trim_end_matches('/'), probe);
        let base = Url::parse(&text).map_err(|e| format!("target `{}`: `{text}` is not a URL ({e})", target.cfg.id))?;
        if base.cannot_be_a_base() {
            return Err(format!("target `{}`: `{text}` cannot take a record id below it", target.cfg.id));
        }
        Ok(Forwarder {
            target,
            base,
            nudge: Notify::new(),
            busy: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
            idempotency_header,
            method: Method::PUT,
            template,
            rename: Default::default(),
            drop: Vec::new(),
            pair: None,
        })
    }

    /// `{base}/{id}` (or the template with `{id}` filled in), the id percent-encoded as one path segment.
    pub fn record_url(&self, id: &str) -> Url {
        if let Some(t) = &self.template {
            let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20");
            let text = format!("{}{}", self.target.cfg.base_url.trim_end_matches('/'), t.replace("{id}", &encoded));
            if let Ok(u) = Url::parse(&text) {
                return u;
            }
        }
        let mut u = self.base.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty().push(id);
        }
        u
    }

    /// The body the target gets for a record: dropped fields left out, renamed ones under their
    /// new name (top level only). A body that is not an object goes out as it is.
    pub fn map_body(&self, record: &str) -> String {
        if self.rename.is_empty() && self.drop.is_empty() {
            return record.to_string();
        }
        let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_str::<serde_json::Value>(record) else { return record.to_string() };
        for d in &self.drop {
            obj.remove(d);
        }
        for (from, to) in &self.rename {
            if let Some(v) = obj.remove(from) {
                obj.insert(to.clone(), v);
            }
        }
        serde_json::Value::Object(obj).to_string()
    }

    /// `<connection>/<entity>/<id>/<rowVersion>`: the same change always carries the same key,
    /// retries and replays included, so a target that remembers keys applies it once.
    pub fn idempotency_key(key: &EntityKey, record_id: &str, row_version: &str) -> String {
        format!("{}/{}/{record_id}/{row_version}", key.connection, key.entity)
    }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Default, Serialize, ts_rs::TS)]
pub struct ForwardReport {
    pub target: String,
    /// Upserts and deletions the target accepted.
    pub delivered: u64,
    /// New failed items of stage `deliver` (and `conflict`, in a two-way pair).
    pub failed_new: u64,
    /// Two-way pair: changes not sent because the other system already held that content.
    pub unchanged: u64,
    /// Two-way pair: changes dropped because the other system's change of the record won a
    /// conflict; that version is queued for delivery the other way.
    pub handed_over: u64,
    /// Changes still in the outbox after the pass.
    pub pending: i64,
    /// Why the pass stopped with changes left.
    pub error: Option<String>,
    /// When delivery may try again (the target's circuit is open).
    pub next_attempt_at: Option<i64>,
}

impl ForwardReport {
    /// `forwarded 250 to erp, 1 failed, 3 pending: ...`
    pub fn summary(&self) -> String {
        let mut s = format!("forwarded {} to {}", self.delivered, self.target);
        if self.failed_new > 0 {
            s.push_str(&format!(", {}", crate::engine::counted(self.failed_new, "new failed item")));
        }
        if self.pending > 0 {
            s.push_str(&format!(", {} pending", self.pending));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        s
    }
}

pub(crate) enum Sent {
    Delivered,
    /// Not sent: the other system already holds it (two-way pair).
    Unchanged,
    /// Dropped for the other side's winning change (two-way pair).
    HandedOver,
    Failed {
        new: bool,
    },
    /// Left in the outbox: the pass stops (credentials, circuit open, cancelled).
    Stop(Option<String>),
}

/// Delivers the entity's outbox, oldest change first, until it is empty or the pass has to stop.
pub async fn deliver_pending(ctx: &EngineCtx, key: &EntityKey, f: &Forwarder, cancel: &CancellationToken) -> ForwardReport {
    let _one_at_a_time = f.busy.lock().await;
    let mut report = ForwardReport { target: f.target.cfg.id.clone(), ..Default::default() };
    let mut after = 0i64;
    let mut stop: Option<Option<String>> = None;
    while stop.is_none() && !cancel.is_cancelled() {
        let batch = match blocking(&ctx.store, {
            let key = key.clone();
            move |s| s.outbox_batch(&key, after, BATCH)
        })
        .await
        {
            Ok(b) => b,
            Err(e) => {
                stop = Some(Some(format!("cannot read the outbox: {e}")));
                break;
            }
        };
        let Some(last) = batch.last() else { break };
        after = last.id;
        // Different records in parallel (up to the target's max_concurrency); each id is in the
        // outbox once, so no two requests race for the same record.
        let mut sends =
            futures::stream::iter(batch).map(|item| send_one(ctx, key, f, item, None, cancel)).buffer_unordered(f.target.cfg.max_concurrency.max(1));
        while let Some(sent) = sends.next().await {
            match sent {
                Sent::Delivered => report.delivered += 1,
                Sent::HandedOver => report.handed_over += 1,
                Sent::Unchanged => report.unchanged += 1,
                Sent::Failed { new } => report.failed_new += u64::from(new),
                Sent::Stop(why) => {
                    if stop.is_none() {
                        stop = Some(why);
                    }
                }
            }
        }
    }
    let now = ctx.clock.now_ms();
    report.next_attempt_at = f.target.breaker.lock().unwrap().open_until(now);
    report.error = stop.flatten();
    report.pending = ctx.store.outbox_count(key).unwrap_or(0);
    *f.last_error.lock().unwrap() = if report.pending > 0 { report.error.clone() } else { None };
    if report.failed_new > 0 {
        ctx.events.emit(EventKind::FailedItemsAdded { connection: key.connection.clone(), entity: key.entity.clone(), count: report.failed_new as usize });
    }
    if report.delivered > 0 || report.failed_new > 0 || report.error.is_some() {
        ctx.events.emit(EventKind::Forwarded {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            target: report.target.clone(),
            delivered: report.delivered,
            failed: report.failed_new,
            pending: report.pending,
            error: report.error.clone(),
        });
        match &report.error {
            Some(_) => tracing::warn!("{key}: {}", report.summary()),
            None => tracing::info!("{key}: {}", report.summary()),
        }
    }
    report
}

/// Sends one change and records the result. `replayed` is the failed item being replayed
/// (`replay.rs` sends a failed delivery again through here).
pub(crate) async fn send_one(ctx: &EngineCtx, key: &EntityKey, f: &Forwarder, item: OutboxItem, replayed: Option<i64>, cancel: &CancellationToken) -> Sent {
    let target = &f.target;
    if let Some(until) = target.breaker.lock().unwrap().open_until(ctx.clock.now_ms()) {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(until.max(0) as u64);
        return Sent::Stop(Some(format!(
            "target `{}` keeps failing; delivery pauses until {} (the changes wait in the outbox)",
            target.cfg.id,
            humantime::format_rfc3339_seconds(at)
        )));
    }
    let delete = item.is_delete();
    let payload = item.data.clone().unwrap_or_else(|| serde_json::json!({ "id": item.record_id }).to_string());
    if !delete && item.data.is_none() {
        // The replica no longer has the row (it was reset): there is nothing to send.
        let r = blocking(&ctx.store, {
            let (key, item) = (key.clone(), item.clone());
            move |s| s.delivery_succeeded(&key, &item.record_id, &item.row_version, &item.kind, None, 0)
        })
        .await;
        return match r {
            Ok(_) => Sent::Delivered,
            Err(e) => Sent::Stop(Some(format!("cannot update the outbox: {e}"))),
        };
    }
    if let Some(pair) = &f.pair {
        let done = match crate::two_way::before_send(ctx, key, f, pair, &item).await {
            Ok(Check::Send) => None,
            Ok(Check::Done) => Some(Sent::Unchanged),
            Ok(Check::Handed) => Some(Sent::HandedOver),
            Ok(Check::Conflict { new }) => return Sent::Failed { new },
            Err(e) => return Sent::Stop(Some(e)),
        };
        if let Some(sent) = done {
            let r = blocking(&ctx.store, {
                let (key, item, now) = (key.clone(), item.clone(), ctx.clock.now_ms());
                move |s| s.delivery_succeeded(&key, &item.record_id, &item.row_version, &item.kind, replayed, now)
            })
            .await;
            return match r {
                Ok(_) => sent,
                Err(e) => Sent::Stop(Some(format!("cannot update the outbox: {e}"))),
            };
        }
    }
    let mapped = (!delete).then(|| f.map_body(&payload));
    let (method, body) = match &mapped {
        None => (Method::DELETE, None),
        Some(m) => (f.method.clone(), Some(bytes::Bytes::from(m.clone()))),
    };
    let url = f.record_url(&item.record_id);
    let on_retry = |attempt: u32, fail: &Failure, wait: std::time::Duration| {
        ctx.emit_retrying(key, attempt, wait, format!("forwarding {} to `{}`: {}", item.record_id, target.cfg.id, fail.message), fail)
    };
    // Logged as the target's call for `connection/entity`, so `requests --entity` shows it with the
    // entity's own calls (and two sources' entities of one name stay apart).
    let for_entity = format!("{}/{}", key.connection, key.entity);
    let mut extra = reqwest::header::HeaderMap::new();
    if let Ok(v) = reqwest::header::HeaderValue::from_str(&Forwarder::idempotency_key(key, &item.record_id, &item.row_version)) {
        extra.insert(f.idempotency_header.clone(), v);
    }
    let result = target.send_with(&method, &url, body.as_ref(), &extra, Some(&for_entity), cancel, |_| Ok(()), on_retry).await;
    let now = ctx.clock.now_ms();
    let failure = match result {
        Ok(_) => None,
        // Already gone at the target is what a deletion wants.
        Err(fail) if delete && matches!(fail.http_status, Some(404 | 410)) => None,
        Err(fail) => Some(fail),
    };
    let error_kind = match &failure {
        None => {
            target.breaker.lock().unwrap().record_success();
            if let (Some(pair), Some(sent)) = (&f.pair, &mapped) {
                if let Err(e) = crate::two_way::level(ctx, key, pair, &item, sent).await {
                    return Sent::Stop(Some(e));
                }
            }
            let r = blocking(&ctx.store, {
                let (key, item) = (key.clone(), item.clone());
                move |s| s.delivery_succeeded(&key, &item.record_id, &item.row_version, &item.kind, replayed, now)
            })
            .await;
            return match r {
                Ok(_) => Sent::Delivered,
                Err(e) => Sent::Stop(Some(format!("cannot update the outbox: {e}"))),
            };
        }
        Some(fail) => match fail.class {
            FailureClass::Cancelled => return Sent::Stop(None),
            // Not the record's fault: the change stays queued (or the replayed item pending).
            FailureClass::Auth if replayed.is_none() => return Sent::Stop(Some(format!("target `{}`: {fail}", target.cfg.id))),
            FailureClass::Auth => "target_auth",
            // A wait longer than a call may block: the change stays queued for a later pass.
            FailureClass::RateLimited if replayed.is_none() && fail.retry_after.is_some_and(|w| w > crate::retry::LONGEST_WAIT_IN_CYCLE) => {
                return Sent::Stop(Some(format!("target `{}`: {fail}", target.cfg.id)))
            }
            FailureClass::Config => "target_rejected",
            FailureClass::RateLimited | FailureClass::Transient => {
                if let Some(until) = target.breaker.lock().unwrap().record_failure(now) {
                    ctx.events.emit(EventKind::CircuitOpened { connection: target.cfg.id.clone(), until, error: fail.to_string() });
                }
                if fail.class == FailureClass::RateLimited {
                    "target_rate_limited"
                } else {
                    "target_unavailable"
                }
            }
        },
    };
    let fail = failure.expect("a failure has an error kind");
    let what = if delete { "deletion" } else { "upsert" };
    let message = format!("{what} of rowVersion {} not delivered to `{}`: {}", item.row_version, target.cfg.id, fail.message);
    let r = blocking(&ctx.store, {
        let (key, item) = (key.clone(), item.clone());
        let tid = fail.tracking_id.clone();
        let status = fail.http_status;
        let rej = Rejected::of_record(&item.record_id, &item.row_version, &payload, error_kind, &message);
        move |s| s.delivery_failed(&key, &item, &rej, status, tid.as_deref(), now)
    })
    .await;
    match r {
        Ok(new) => Sent::Failed { new },
        Err(e) => Sent::Stop(Some(format!("cannot record the failed item: {e}"))),
    }
}

/// Runs a store call on the blocking pool: the writer may be busy with a large page transaction,
/// and an async worker thread must not wait for it.
pub(crate) async fn blocking<T: Send + 'static>(store: &Arc<Store>, f: impl FnOnce(&Store) -> T + Send + 'static) -> T {
    let s = store.clone();
    tokio::task::spawn_blocking(move || f(&s)).await.expect("store calls do not panic")
}
