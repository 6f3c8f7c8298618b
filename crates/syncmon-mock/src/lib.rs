//! A simulated source API speaking the "rowVersion" replication protocol (DESIGN §1), for tests,
//! benchmarks and the demo: a real HTTP server on loopback serving synthetic entities that are
//! deterministic from a seed, change over time, lose records, and misbehave on request.
//!
//! HTTP surface (every response carries `Trackingid` and `x-server-cache-id`):
//! - `GET /{entity}?sync=true&lastRowVersion=N&pageSize=M`, then `GET /{entity}?pageKey=K`:
//!   `{"morePages", "nextPageKey", "nextPageURL", "data": [...]}`, records sorted by `rowVersion`.
//! - `GET /{entity}/{id}`: one record.
//! - `GET /alt/token/{entity}?since=N&limit=M[&token=T]` → `{"result":{"items":[...]},"paging":{"next":"T2"}}`;
//!   `GET /alt/link/{entity}?since=N&limit=M` → array + `Link: <url>; rel="next"`;
//!   `GET /alt/short/{entity}?since=N&limit=M` → array, a short page ends the feed;
//!   `GET /alt/{shape}/{entity}/{id}`. These records carry `uid` and an integer `seq`.
//! - Feeds without a rowVersion ([`FeedSpec`], `MockConfig::feeds`), at `/{feed}` and
//!   `/{feed}/{id}`, pages `{"items": [...], "links": {"next": URL|null}}`, page size `limit`:
//!   a *timestamp* feed, `GET /{feed}?modifiedSince=T&orderBy=lastModified&limit=N` (records with
//!   a timestamp >= T, ordered by timestamp then id; the next URL carries an opaque `cursor`), and
//!   a *snapshot* feed, `GET /{feed}?limit=N` (every live record; `cursor`, or `page=1,2,...`).
//! - `POST /oauth/token` (client credentials, form or HTTP Basic).
//! - The simulated *target* (a forwarding sink): `PUT /target/{entity}/{id}` with a JSON object
//!   body stores it (201 new, 200 replaced; a body `id` other than the path's is 400),
//!   `DELETE /target/{entity}/{id}` removes it (204, or 404 when absent), `GET` reads it back.
//!   `GET /target/{entity}?lastRowVersion=…` serves what the target holds as a rowVersion feed
//!   (the target's own versions, `pageKey` paging), so a second connection can read it back.
//!   Same auth as the source. Faults reach target calls only when aimed at them: `entity` =
//!   `"target:{entity}"` (or `"target:*"` for every target call, `"target:{entity}:patch"` for its
//!   PATCH calls alone); a fault with no entity affects
//!   source calls only. Status, rate-limit, slow and reset faults apply to target calls.
//! - Control (no auth, no faults, not logged): `POST|GET|DELETE /_mock/faults`, `GET /_mock/entities`,
//!   `GET /_mock/dataset/{entity}`, `POST /_mock/{mutate,insert,insert-poisoned,delete}/{entity}?n=N` (→ ids),
//!   `POST /_mock/delete-all/{entity}`, `POST /_mock/late-commit/{entity}`, `POST /_mock/expire-tokens`,
//!   `GET /_mock/requests`, `GET /_mock/target/{entity}` (what the target holds, like `dataset`).
//!   Feeds: `mutate`, `insert`, `delete`, `delete-all` and `dataset` take a feed name too;
//!   `POST /_mock/mutate-served/{feed}?n=N` (or `&id=ID`, repeated) edits records at the newest
//!   timestamp already served; `GET /_mock/feeds`; `GET|POST /_mock/clock` (the feeds' clock:
//!   `{"unix_ms"}`, `{"unix"}`, `{"rfc3339"}`, `{"advance_ms"}` or `{"advance_secs"}`).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use syncmon_mock::{Fault, FaultKind, MockConfig, MockServer};
//! let mock = MockServer::start(MockConfig::default()).await?;
//! mock.inject(Fault { kind: FaultKind::Status(503), entity: Some("items".into()), times: 2 });
//! // The next upsert forwarded to the target's `items` is refused:
//! mock.inject(Fault { kind: FaultKind::Status(422), entity: Some("target:items".into()), times: 1 });
//! println!("{}/items?sync=true&lastRowVersion=0", mock.base_url());
//! mock.shutdown().await;
//! # Ok(()) }
//! ```

mod feeds;
mod gen;
mod server;
mod store;
mod target_store;
mod webhook;

use feeds::FeedOp;
pub use feeds::{FeedKind, FeedSpec, TimeFormat, TimestampFeed};
use serde::{Deserialize, Serialize};
use server::Shared;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::Style;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the simulated source is set up.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Where to listen; None = 127.0.0.1 on a free port.
    pub listen: Option<SocketAddr>,
    pub seed: u64,
    pub entities: Vec<EntitySpec>,
    /// The first rowVersion handed out; every write takes the shared counter += 2.
    pub start_version: u64,
    /// Background changes per second across all entities (0 = off).
    pub mutations_per_sec: f64,
    /// Larger page sizes are clamped, not refused.
    pub max_page_size: usize,
    pub default_page_size: usize,
    pub auth: MockAuth,
    /// Feeds without a rowVersion (a timestamp feed, a snapshot feed), served at `/{name}`.
    pub feeds: Vec<FeedSpec>,
    /// The clock that stamps the feeds' changes, in milliseconds since 1970: None follows the
    /// wall clock; Some stays at that time until `set_clock`/`advance_clock` move it.
    pub clock_ms: Option<i64>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: None,
            seed: 42,
            entities: vec![
                EntitySpec { name: "items".into(), records: 500 },
                EntitySpec { name: "customers".into(), records: 200 },
                EntitySpec { name: "salesorders".into(), records: 300 },
            ],
            start_version: 1000,
            mutations_per_sec: 0.0,
            max_page_size: 20_000,
            default_page_size: 1000,
            auth: MockAuth::None,
            feeds: vec![FeedSpec::timestamp("vendors", 300), FeedSpec::snapshot("prices", 150)],
            clock_ms: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntitySpec {
    pub name: String,
    pub records: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MockAuth {
    #[default]
    None,
    /// The header (any case) must carry the key.
    ApiKey { header: String, key: String },
    /// Client credentials at `POST /oauth/token`; data calls need `Authorization: Bearer <token>`.
    OAuth { client_id: String, client_secret: String, token_ttl_secs: u64 },
}

/// One record as the source serves it.
#[derive(Clone, Debug, PartialEq)]
pub struct MockRecord {
    pub id: String,
    pub row_version: String,
    /// The full record JSON as served, including `id` and `rowVersion`.
    pub data: serde_json::Value,
}

/// One data request the source (or the target) received (control and token calls are not logged).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// `GET`, or `PUT`/`DELETE` at the target.
    pub method: String,
    pub path: String,
    pub query: String,
    /// All request headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The status answered; 0 when the connection was reset without a response.
    pub status: u16,
    pub tracking_id: String,
}

/// A queued misbehaviour. The first queued fault matching a response's entity applies;
/// transport faults (rate limit, status, slow, reset, truncated, invalid JSON) to any data call,
/// record faults (missing id/rowVersion, duplicate id) to the next non-empty page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// None = any entity of the source; `"target:{entity}"` = target calls for that entity,
    /// `"target:*"` = every target call.
    #[serde(default)]
    pub entity: Option<String>,
    /// How many responses it affects; 0 = until cleared. Defaults to 1 in JSON.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

/// JSON form: `{"kind": "status", "status": 503}`, `{"kind": "rate_limit", "retry_after_secs": 2}`,
/// `{"kind": "slow", "millis": 500}`, `{"kind": "reset"}`, `{"kind": "truncated"}`,
/// `{"kind": "invalid_json"}`, `{"kind": "missing_id", "records": 1}`,
/// `{"kind": "missing_row_version", "records": 1}`, `{"kind": "duplicate_id"}`,
/// `{"kind": "fail_page", "page": 2, "status": 500}` (feeds; status defaults to 500).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultRepr", into = "FaultRepr")]
pub enum FaultKind {
    /// 429 with `Retry-After`.
    RateLimit { retry_after_secs: u64 },
    /// 5xx with an HTML gateway body; 4xx with a JSON `{"code", "message"}` body.
    Status(u16),
    /// Responds normally after a delay.
    Slow { millis: u64 },
    /// Closes the connection without a response.
    Reset,
    /// 200 with a Content-Length larger than the bytes sent, then closes.
    Truncated,
    /// 200 with a body that is not JSON.
    InvalidJson,
    /// The next page serves its first `records` records without `id`.
    MissingId { records: usize },
    /// The next page serves its first `records` records without `rowVersion`.
    MissingRowVersion { records: usize },
    /// The next page holds its first record twice: as is, then a copy with an older rowVersion.
    DuplicateId,
    /// Feeds only: the `page`-th page of a pass (1 = a request without a continuation) answers
    /// `status` instead (a gateway page for 5xx), so a pass can be cut in the middle.
    FailPage { page: u32, status: u16 },
}

impl FaultKind {
    pub(crate) fn is_record_fault(&self) -> bool {
        matches!(self, FaultKind::MissingId { .. } | FaultKind::MissingRowVersion { .. } | FaultKind::DuplicateId)
    }

    pub(crate) fn is_page_fault(&self) -> bool {
        matches!(self, FaultKind::FailPage { .. })
    }
}

#[derive(Serialize, Deserialize)]
struct FaultRepr {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    millis: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    records: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
}

impl TryFrom<FaultRepr> for FaultKind {
    type Error = String;
    fn try_from(r: FaultRepr) -> Result<Self, String> {
        Ok(match r.kind.as_str() {
            "rate_limit" => FaultKind::RateLimit { retry_after_secs: r.retry_after_secs.unwrap_or(1) },
            "status" => FaultKind::Status(r.status.ok_or("a status fault needs \"status\"")?),
            "slow" => FaultKind::Slow { millis: r.millis.unwrap_or(1000) },
            "reset" => FaultKind::Reset,
            "truncated" => FaultKind::Truncated,
            "invalid_json" => FaultKind::InvalidJson,
            "missing_id" => FaultKind::MissingId { records: r.records.unwrap_or(1) },
            "missing_row_version" => FaultKind::MissingRowVersion { records: r.records.unwrap_or(1) },
            "duplicate_id" => FaultKind::DuplicateId,
            "fail_page" => FaultKind::FailPage { page: r.page.ok_or("a fail_page fault needs \"page\"")?, status: r.status.unwrap_or(500) },
            other => return Err(format!("unknown fault kind {other:?}")),
        })
    }
}

impl From<FaultKind> for FaultRepr {
    fn from(k: FaultKind) -> Self {
        let none = FaultRepr { kind: String::new(), status: None, retry_after_secs: None, millis: None, records: None, page: None };
        let (kind, r) = match k {
            FaultKind::RateLimit { retry_after_secs } => ("rate_limit", FaultRepr { retry_after_secs: Some(retry_after_secs), ..none }),
            FaultKind::Status(s) => ("status", FaultRepr { status: Some(s), ..none }),
            FaultKind::Slow { millis } => ("slow", FaultRepr { millis: Some(millis), ..none }),
            FaultKind::Reset => ("reset", none),
            FaultKind::Truncated => ("truncated", none),
            FaultKind::InvalidJson => ("invalid_json", none),
            FaultKind::MissingId { records } => ("missing_id", FaultRepr { records: Some(records), ..none }),
            FaultKind::MissingRowVersion { records } => ("missing_row_version", FaultRepr { records: Some(records), ..none }),
            FaultKind::DuplicateId => ("duplicate_id", none),
            FaultKind::FailPage { page, status } => ("fail_page", FaultRepr { page: Some(page), status: Some(status), ..none }),
        };
        FaultRepr { kind: kind.to_string(), ..r }
    }
}

struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// A running simulated source; clones share it. It stops on `shutdown` or when the last clone drops.
#[derive(Clone)]
pub struct MockServer {
    h: Arc<Handle>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer").field("addr", &self.h.addr).finish()
    }
}

impl MockServer {
    /// Binds, builds the data set and starts serving (and mutating, when configured).
    pub async fn start(mut cfg: MockConfig) -> std::io::Result<MockServer> {
        // An entity wins over a feed of the same name (`syncmon mock --entity vendors` keeps working).
        cfg.feeds.retain(|f| {
            let clash = cfg.entities.iter().any(|e| e.name == f.name);
            if clash {
                tracing::warn!(feed = %f.name, "an entity has this name; the feed is not served");
            }
            !clash
        });
        let mut names = std::collections::HashSet::new();
        if let Some(dup) = cfg.feeds.iter().map(|f| &f.name).find(|n| !names.insert(n.as_str())) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("two feeds are named {dup:?}")));
        }
        let listen = cfg.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let base_url = if addr.ip().is_unspecified() { format!("http://127.0.0.1:{}", addr.port()) } else { format!("http://{addr}") };
        let shared = Arc::new(Shared::new(cfg, base_url));
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(server::serve(listener, shared.clone(), stop_rx.clone()))];
        if shared.cfg.mutations_per_sec > 0.0 {
            tasks.push(tokio::spawn(server::background_mutations(shared.clone(), stop_rx)));
        }
        tracing::debug!(%addr, "simulated source listening");
        Ok(MockServer { h: Arc::new(Handle { shared, addr, stop, tasks: Mutex::new(tasks) }) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.h.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.h.shared.base_url.clone()
    }

    pub fn inject(&self, fault: Fault) {
        self.h.shared.inject(fault);
    }

    /// Queued faults that still have responses to affect (a fault queued with `times: 0` counts).
    pub fn pending_faults(&self) -> usize {
        self.h.shared.faults.lock().unwrap().len()
    }

    pub fn clear_faults(&self) {
        self.h.shared.faults.lock().unwrap().clear();
    }

    /// The live records of an entity or feed, sorted by id (empty for an unknown name). A feed's
    /// `row_version` is its timestamp as text (`""` in a snapshot).
    pub fn dataset(&self, entity: &str) -> Vec<MockRecord> {
        self.h.shared.dataset(entity)
    }

    /// Updates `n` distinct random live records (each gets a new rowVersion; in a timestamp feed
    /// the clock's time, in a snapshot new content only); returns their ids.
    pub fn mutate(&self, entity: &str, n: usize) -> Vec<String> {
        self.h.shared.feed_op(entity, FeedOp::Mutate(n)).unwrap_or_else(|| self.h.shared.change(entity, |s, e| s.mutate(e, n)))
    }

    /// New records (in a timestamp feed stamped with the clock's time); returns their ids.
    pub fn insert(&self, entity: &str, n: usize) -> Vec<String> {
        self.h.shared.feed_op(entity, FeedOp::Insert(n)).unwrap_or_else(|| self.h.shared.change(entity, |s, e| s.insert(e, n)))
    }

    /// Timestamp feeds: `n` random live records change and take the newest timestamp already
    /// served (before any read: the newest in the data), the change a poll that has read that
    /// second cannot tell from its checkpoint. Returns their ids.
    pub fn mutate_at_served(&self, feed: &str, n: usize) -> Vec<String> {
        self.h.shared.feed_op(feed, FeedOp::MutateAtServed(n)).unwrap_or_default()
    }

    /// Timestamp feeds: these records change and take the newest timestamp already served
    /// (a record already at that timestamp keeps it, with new content). Returns the ids changed.
    pub fn edit_at_served(&self, feed: &str, ids: &[&str]) -> Vec<String> {
        let ids = ids.iter().filter_map(|id| uuid::Uuid::parse_str(id).ok()).map(|u| u.as_u128()).collect();
        self.h.shared.feed_op(feed, FeedOp::EditAtServed(ids)).unwrap_or_default()
    }

    /// Timestamp feeds: the newest timestamp served in a page so far, as the feed writes it.
    pub fn newest_served(&self, feed: &str) -> Option<String> {
        let f = self.h.shared.feeds.lock().unwrap();
        let feed = &f.feeds[f.index(feed)?];
        Some(feeds::time_text(feed.timestamp()?, feed.newest_served?))
    }

    /// The feeds' clock in milliseconds since 1970.
    pub fn clock_ms(&self) -> i64 {
        self.h.shared.feeds.lock().unwrap().clock.now_ms()
    }

    /// Stops the feeds' clock at this time (milliseconds since 1970): changes are stamped with it.
    pub fn set_clock_ms(&self, ms: i64) {
        self.h.shared.feeds.lock().unwrap().set_clock(ms);
    }

    /// Moves the feeds' clock on (or back, when negative) and stops it there.
    pub fn advance_clock_ms(&self, ms: i64) {
        let mut f = self.h.shared.feeds.lock().unwrap();
        let now = f.clock.now_ms();
        f.set_clock(now + ms);
    }

    /// Inserts `n` poison records: served without `rowVersion` in every version (a record that
    /// never passes validation, however often it is read or changed). Returns their ids.
    pub fn insert_poisoned(&self, entity: &str, n: usize) -> Vec<String> {
        self.h.shared.change(entity, |s, e| s.insert_poisoned(e, n))
    }

    /// The ids of the entity's live poison records.
    pub fn poisoned(&self, entity: &str) -> Vec<String> {
        self.h.shared.change(entity, |s, e| s.poisoned(e))
    }

    pub fn delete(&self, entity: &str, n: usize) -> Vec<String> {
        self.h.shared.feed_op(entity, FeedOp::Delete(n)).unwrap_or_else(|| self.h.shared.change(entity, |s, e| s.delete(e, n)))
    }

    /// Deletes every record: a source that suddenly returns nothing.
    pub fn delete_all(&self, entity: &str) {
        if self.h.shared.feed_op(entity, FeedOp::DeleteAll).is_some() {
            return;
        }
        let mut s = self.h.shared.store.lock().unwrap();
        if let Some(e) = s.entity_index(entity) {
            s.delete_all(e);
        }
    }

    /// Inserts a record whose rowVersion is unused and lower than the highest version already
    /// served for the entity (a transaction that committed late). Panics on an unknown entity.
    pub fn late_commit(&self, entity: &str) -> MockRecord {
        self.h.shared.late_commit(entity).unwrap_or_else(|| panic!("unknown entity {entity:?}"))
    }

    /// The highest rowVersion served in a page of the entity so far (0 before the first), the
    /// ceiling below which `late_commit` lands.
    pub fn max_served(&self, entity: &str) -> u64 {
        let s = self.h.shared.store.lock().unwrap();
        s.entity_index(entity).map_or(0, |e| s.entities[e].max_served)
    }

    /// What the simulated target holds for an entity, sorted by id; `row_version` is the body's
    /// `rowVersion` ("" when it had none), `data` the body as received.
    pub fn target_dataset(&self, entity: &str) -> Vec<MockRecord> {
        self.h.shared.target_dataset(entity)
    }

    /// Writes a record at the simulated target as one of its own users would (it gets the
    /// target's next version and shows in the target's feed).
    pub fn target_put(&self, entity: &str, id: &str, body: serde_json::Value) {
        self.h.shared.target.lock().unwrap().put(entity, id, body);
    }

    /// The record the simulated target holds for `id`, as received.
    pub fn target_get(&self, entity: &str, id: &str) -> Option<serde_json::Value> {
        self.h.shared.target.lock().unwrap().get(entity, id).cloned()
    }

    /// The most target calls (PUT, DELETE, GET under `/target`) ever answered at once.
    pub fn target_peak_in_flight(&self) -> usize {
        self.h.shared.target_peak_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every later target call takes `delay` before it is answered (a slow target).
    pub fn set_target_delay(&self, delay: std::time::Duration) {
        self.h.shared.target_delay_ms.store(delay.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }

    /// The data requests received so far, oldest first.
    pub fn requests(&self) -> Vec<RequestInfo> {
        self.h.shared.log.lock().unwrap().entries.clone()
    }

    /// Every OAuth token issued so far becomes invalid (401).
    pub fn expire_tokens(&self) {
        self.h.shared.tokens.lock().unwrap().clear();
    }

    /// Records served in feed pages so far (what a sync re-read costs the source).
    pub fn records_served(&self) -> usize {
        self.h.shared.records_served.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn tokens_issued(&self) -> usize {
        self.h.shared.tokens_issued.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// POSTs a Standard Webhooks `record.changed` event for the entity, signed with `secret`
    /// (`whsec_<base64 key>`).
    pub async fn send_standard_webhook(&self, url: &str, secret: &str, entity: &str) -> reqwest::Result<reqwest::StatusCode> {
        webhook::send_standard(url, secret, entity).await
    }

    /// POSTs a Business Central style change notification for the entity.
    pub async fn send_bc_webhook(&self, url: &str, client_state: &str, entity: &str) -> reqwest::Result<reqwest::StatusCode> {
        let record = {
            let s = self.h.shared.store.lock().unwrap();
            s.entity_index(entity).and_then(|e| s.newest(e).map(|r| s.entities[e].shape.keys.id(r.idx)))
        };
        webhook::send_bc(url, client_state, entity, record, self.h.shared.cfg.seed).await
    }

    /// The Business Central subscription handshake: POST `url?validationToken=<token>`, empty body.
    pub async fn bc_validate(&self, url: &str, token: &str) -> reqwest::Result<(reqwest::StatusCode, String)> {
        webhook::bc_validate(url, token).await
    }

    /// Stops serving (open connections get up to two seconds to finish) and the background changes.
    pub async fn shutdown(self) {
        let _ = self.h.stop.send(true);
        let tasks: Vec<_> = self.h.tasks.lock().unwrap().drain(..).collect();
        for mut t in tasks {
            if tokio::time::timeout(Duration::from_secs(2), &mut t).await.is_err() {
                t.abort();
            }
        }
    }
}

/// Runs a simulated source until `shutdown` completes (for `syncmon mock`).
pub async fn run_standalone(cfg: MockConfig, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let server = MockServer::start(cfg).await?;
    tracing::info!(url = %server.base_url(), "simulated source running");
    shutdown.await;
    server.shutdown().await;
    Ok(())
}

pub(crate) fn record_of(shape: &store::Shape, row: &store::Row) -> MockRecord {
    let mut out = String::with_capacity(1024);
    store::render(&mut out, shape, row, Style::RowVersion, Default::default());
    MockRecord {
        id: gen::uuid_string(shape.keys.id(row.idx)),
        row_version: row.version.to_string(),
        data: serde_json::from_str(&out).expect("rendered records are JSON"),
    }
}
