//! Flag write-back (flag-based one-way sync): once a record is synced — in the replica, and
//! delivered when the entity forwards — the source is told so with the entity's `write_back`
//! call, e.g. `PATCH /items/{id}` with `{"synced": true}`. With `extra_query = "synced=false"` the
//! source's feed then shrinks to what still needs syncing.
//!
//! The marks wait in a durable queue written with the replica change or the delivery
//! (`store/write_back.rs`), so a crash between the two loses none. A record whose replica row
//! already holds the body's fields is not marked again: the mark's own new version, served back
//! by the feed, ends there. A mark the source refuses (4xx at once, 408/429/5xx after the retry
//! budget) becomes a failed item of stage `write_back`; credentials refused or a cancelled pass
//! leave the queue as it is for the next pass.

use crate::config::WriteBackConfig;
use crate::context::EngineCtx;
use crate::engine::EntityRt;
use crate::events::EventKind;
use crate::forward::blocking;
use crate::record::Rejected;
use crate::retry::FailureClass;
use crate::source::SourceClient;
use crate::store::WriteBackItem;
use futures::StreamExt;
use reqwest::Method;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use url::Url;

/// Queue rows read per step of a pass.
const BATCH: u32 = 256;

/// An entity's write-back call.
pub struct WriteBack {
    pub method: Method,
    /// The path under the connection's base URL, `{id}` where the record id goes.
    pub path: String,
    pub body: bytes::Bytes,
    /// The body's fields: a record holding all of them is marked already.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// One pass at a time per entity.
    pub busy: tokio::sync::Mutex<()>,
}

impl WriteBack {
    pub fn new(cfg: &WriteBackConfig) -> Result<WriteBack, String> {
        let method = Method::from_bytes(cfg.method.as_bytes()).map_err(|e| format!("write_back method `{}`: {e}", cfg.method))?;
        Ok(WriteBack { method, path: cfg.path.clone(), body: bytes::Bytes::from(cfg.body.clone()), fields: cfg.fields(), busy: Default::default() })
    }

    /// `{base_url}{path}` with the id percent-encoded as one path segment.
    pub fn url(&self, source: &SourceClient, id: &str) -> Result<Url, String> {
        let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20");
        let text = format!("{}{}", source.cfg.base_url.trim_end_matches('/'), self.path.replace("{id}", &encoded));
        Url::parse(&text).map_err(|e| format!("write_back: `{text}` is not a URL ({e})"))
    }

    /// Whether the record already holds every field the mark sets.
    pub fn already_marked(&self, data: &str) -> bool {
        match serde_json::from_str::<serde_json::Value>(data) {
            Ok(serde_json::Value::Object(obj)) => self.fields.iter().all(|(k, v)| obj.get(k) == Some(v)),
            _ => false,
        }
    }
}

/// What one write-back pass did.
#[derive(Debug, Clone, Default, Serialize, ts_rs::TS)]
pub struct WriteBackReport {
    /// Records marked at the source.
    pub marked: u64,
    /// Records that needed no call (already marked, or gone from the replica).
    pub skipped: u64,
    /// New failed items of stage `write_back`.
    pub failed_new: u64,
    /// Marks still queued after the pass.
    pub pending: i64,
    /// Why the pass stopped with marks left.
    pub error: Option<String>,
}

impl WriteBackReport {
    pub fn summary(&self) -> String {
        let mut s = format!("marked {} at the source", crate::engine::counted(self.marked, "record"));
        if self.failed_new > 0 {
            s.push_str(&format!(", {}", crate::engine::counted(self.failed_new, "new failed item")));
        }
        if self.pending > 0 {
            s.push_str(&format!(", {} waiting", self.pending));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        s
    }
}

pub(crate) enum Mark {
    Set,
    Skipped,
    Failed { new: bool },
    Stop(Option<String>),
}

/// Sends the entity's queued marks, oldest first, until the queue is empty or the pass must stop.
pub async fn mark_pending(ctx: &EngineCtx, e: &EntityRt, wb: &WriteBack, cancel: &CancellationToken) -> WriteBackReport {
    let _one_at_a_time = wb.busy.lock().await;
    let mut report = WriteBackReport::default();
    let (mut after, mut stop) = (0i64, None::<Option<String>>);
    while stop.is_none() && !cancel.is_cancelled() {
        let batch = match blocking(&ctx.store, {
            let key = e.key.clone();
            move |s| s.write_back_batch(&key, after, BATCH)
        })
        .await
        {
            Ok(b) => b,
            Err(err) => {
                stop = Some(Some(format!("cannot read the write-back queue: {err}")));
                break;
            }
        };
        let Some(last) = batch.last() else { break };
        after = last.id;
        let mut sends = futures::stream::iter(batch).map(|item| mark_one(ctx, e, wb, item, None, cancel)).buffer_unordered(e.source.cfg.max_concurrency.max(1));
        while let Some(m) = sends.next().await {
            match m {
                Mark::Set => report.marked += 1,
                Mark::Skipped => report.skipped += 1,
                Mark::Failed { new } => report.failed_new += u64::from(new),
                Mark::Stop(why) => {
                    if stop.is_none() {
                        stop = Some(why);
                    }
                }
            }
        }
    }
    report.error = stop.flatten();
    report.pending = ctx.store.write_back_count(&e.key).unwrap_or(0);
    if report.failed_new > 0 {
        ctx.events.emit(EventKind::FailedItemsAdded { connection: e.key.connection.clone(), entity: e.key.entity.clone(), count: report.failed_new as usize });
    }
    if report.marked > 0 || report.failed_new > 0 || report.error.is_some() {
        match &report.error {
            Some(_) => tracing::warn!("{}: {}", e.key, report.summary()),
            None => tracing::info!("{}: {}", e.key, report.summary()),
        }
    }
    report
}

/// Marks one record (or finds it needs no mark) and records the result. `replayed` is the
/// failed item being replayed.
pub(crate) async fn mark_one(ctx: &EngineCtx, e: &EntityRt, wb: &WriteBack, item: WriteBackItem, replayed: Option<i64>, cancel: &CancellationToken) -> Mark {
    let key = &e.key;
    let done = |item: &WriteBackItem| {
        let (store, key, id, version, now) = (ctx.store.clone(), key.clone(), item.record_id.clone(), item.row_version.clone(), ctx.clock.now_ms());
        async move { blocking(&store, move |s| s.write_back_done(&key, &id, &version, replayed, now)).await }
    };
    let needed = item.data.as_deref().is_some_and(|d| !wb.already_marked(d));
    if !needed {
        return match done(&item).await {
            Ok(()) => Mark::Skipped,
            Err(err) => Mark::Stop(Some(format!("cannot update the write-back queue: {err}"))),
        };
    }
    let url = match wb.url(&e.source, &item.record_id) {
        Ok(u) => u,
        Err(msg) => return Mark::Stop(Some(msg)),
    };
    let on_retry = |attempt: u32, fail: &crate::retry::Failure, wait: std::time::Duration| {
        ctx.emit_retrying(key, attempt, wait, format!("marking {} at the source: {}", item.record_id, fail.message), fail)
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::CONTENT_TYPE, reqwest::header::HeaderValue::from_static("application/json"));
    let for_entity = key.entity.clone();
    let result = e.source.send_with(&wb.method, &url, Some(&wb.body), &headers, Some(&for_entity), cancel, |_| Ok(()), on_retry).await;
    let fail = match result {
        Ok(_) => {
            return match done(&item).await {
                Ok(()) => Mark::Set,
                Err(err) => Mark::Stop(Some(format!("cannot update the write-back queue: {err}"))),
            }
        }
        Err(fail) => fail,
    };
    let kind = match fail.class {
        FailureClass::Cancelled => return Mark::Stop(None),
        FailureClass::Auth if replayed.is_none() => return Mark::Stop(Some(format!("write-back: {fail}"))),
        FailureClass::Auth => "write_back_auth",
        FailureClass::Config if fail.http_status == Some(404) => "write_back_not_found",
        FailureClass::Config => "write_back_rejected",
        FailureClass::RateLimited | FailureClass::Transient => "write_back_unavailable",
    };
    let message = format!("the source did not take the mark ({} {}): {}", wb.method, url.path(), fail.message);
    let (k, it, tid, status, now) = (key.clone(), item.clone(), fail.tracking_id.clone(), fail.http_status, ctx.clock.now_ms());
    let payload = String::from_utf8_lossy(&wb.body).into_owned();
    match blocking(&ctx.store, move |s| {
        s.write_back_failed(&k, &it, &Rejected::of_record(&it.record_id, &it.row_version, &payload, kind, &message), status, tid.as_deref(), now)
    })
    .await
    {
        Ok(new) => Mark::Failed { new },
        Err(err) => Mark::Stop(Some(format!("cannot record the failed item: {err}"))),
    }
}
