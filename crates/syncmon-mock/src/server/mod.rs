//! The HTTP side: the router and the state every route shares. The routes live in their own
//! modules: `source` (the reference and alternative page shapes), `feeds` (the timestamp and
//! snapshot feeds), `target` (the simulated target),
//! `auth` (API key, bearer check and the OAuth token endpoint), `control` (the `/_mock` API) and
//! `faults` (injected faults and a connection wrapper that lets a handler reset its own connection).

mod auth;
mod control;
mod faults;
mod feeds;
mod source;
mod target;

use crate::feeds::{FeedOp, Feeds};
use crate::store::Store;
use crate::{record_of, Fault, MockConfig, MockRecord, RequestInfo};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::Engine;
use faults::{ConnCtl, CtlListener};
use rand::Rng;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

const LOG_CAP: usize = 200_000;

pub struct Log {
    pub entries: Vec<RequestInfo>,
    dropped: usize,
}

pub struct Shared {
    pub cfg: MockConfig,
    pub base_url: String,
    pub store: Mutex<Store>,
    /// The feeds without a rowVersion and their clock (never locked together with `store`).
    pub feeds: Mutex<Feeds>,
    /// Queued faults with the responses they still affect (0 = until cleared).
    pub faults: Mutex<Vec<(Fault, u32)>>,
    pub log: Mutex<Log>,
    /// Valid OAuth tokens and when they expire.
    pub tokens: Mutex<HashMap<String, Instant>>,
    pub tokens_issued: AtomicUsize,
    /// Records served in pages (feed reads, not single-record calls), faulty responses included.
    pub records_served: AtomicUsize,
    cache_id: String,
    /// The simulated target: what it holds, with its own versions.
    pub target: Mutex<crate::target_store::TargetStore>,
    /// Target calls being answered now, and the most there ever were at once.
    pub target_in_flight: AtomicUsize,
    pub target_peak_in_flight: AtomicUsize,
    /// How long the target takes to answer each call, in milliseconds (0 = at once).
    pub target_delay_ms: AtomicU64,
}

/// Fault entities that aim at the simulated target start with this.
const TARGET_PREFIX: &str = "target:";

struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply { status, content_type: "application/json; charset=utf-8", headers: Vec::new(), body }
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(status, serde_json::json!({ "code": code, "message": message }).to_string())
    }

    fn empty(status: u16) -> Reply {
        Reply { status, content_type: "", headers: Vec::new(), body: String::new() }
    }

    fn into_response(self) -> Response {
        let mut b = Response::builder().status(StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if !self.content_type.is_empty() {
            b = b.header("content-type", self.content_type);
        }
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(Body::from(self.body)).expect("a valid response")
    }
}

fn error_code(status: u16) -> &'static str {
    match status {
        400 => "invalid_parameter",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "resource_not_found",
        405 => "method_not_allowed",
        408 => "server_timeout",
        409 => "conflict",
        422 => "unprocessable_entity",
        429 => "too_many_requests",
        _ => "error",
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding helpers

pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An opaque continuation token: a format tag and the fields, one a line, in base64url without
/// padding (clients pass it back as it is; the mock reads it again with `decode_token`).
pub(super) fn encode_token(tag: &str, fields: &[&str]) -> String {
    let mut text = String::from(tag);
    for field in fields {
        text.push('\n');
        text.push_str(field);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// The fields of a token `encode_token` made with `tag`; `None` for anything else.
pub(super) fn decode_token(token: &str, tag: &str) -> Option<Vec<String>> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\n');
    if parts.next()? != tag {
        return None;
    }
    Some(parts.map(str::to_string).collect())
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let app = Router::new().fallback(handle).with_state(shared);
    let _ = axum::serve(CtlListener(listener), app.into_make_service_with_connect_info::<ConnCtl>())
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
}

// ---------------------------------------------------------------------------------------------
// Shared state

impl Shared {
    pub fn new(cfg: MockConfig, base_url: String) -> Shared {
        let specs: Vec<(String, usize)> = cfg.entities.iter().map(|e| (e.name.clone(), e.records)).collect();
        let store = Store::new(cfg.seed, cfg.start_version, &specs);
        let feeds = Feeds::new(cfg.seed, &cfg.feeds, cfg.clock_ms);
        let cache_id = format!("mock-{:012x}", crate::gen::splitmix(cfg.seed) >> 16);
        Shared {
            cfg,
            base_url,
            store: Mutex::new(store),
            feeds: Mutex::new(feeds),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Log { entries: Vec::new(), dropped: 0 }),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicUsize::new(0),
            records_served: AtomicUsize::new(0),
            cache_id,
            target: Mutex::new(Default::default()),
            target_in_flight: AtomicUsize::new(0),
            target_peak_in_flight: AtomicUsize::new(0),
            target_delay_ms: AtomicU64::new(0),
        }
    }

    pub fn inject(&self, fault: Fault) {
        let times = fault.times;
        self.faults.lock().unwrap().push((fault, times));
    }

    /// Notes a call as it arrives (its status comes later, `log_status`); returns its number.
    fn log_start(&self, req: &Request, path: &str, query: &str, tracking: &str) -> usize {
        let headers: Vec<(String, String)> =
            req.headers().iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
        let info = RequestInfo {
            method: req.method().to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers,
            status: 0,
            tracking_id: tracking.to_string(),
        };
        let mut log = self.log.lock().unwrap();
        if log.entries.len() >= LOG_CAP {
            let half = LOG_CAP / 2;
            log.entries.drain(..half);
            log.dropped += half;
        }
        log.entries.push(info);
        log.dropped + log.entries.len() - 1
    }

    fn log_status(&self, seq: usize, status: u16) {
        let mut log = self.log.lock().unwrap();
        if let Some(i) = seq.checked_sub(log.dropped) {
            if let Some(e) = log.entries.get_mut(i) {
                e.status = status;
            }
        }
    }

    pub fn is_feed(&self, name: &str) -> bool {
        self.cfg.feeds.iter().any(|f| f.name == name)
    }

    pub fn dataset(&self, entity: &str) -> Vec<MockRecord> {
        if self.is_feed(entity) {
            return self.feed_dataset(entity);
        }
        let (shape, mut rows) = {
            let s = self.store.lock().unwrap();
            let Some(e) = s.entity_index(entity) else { return Vec::new() };
            (s.entities[e].shape, s.live_rows(e))
        };
        rows.sort_by_key(|r| shape.keys.id(r.idx));
        rows.iter().map(|r| record_of(&shape, r)).collect()
    }

    pub fn change(&self, entity: &str, f: impl FnOnce(&mut Store, usize) -> Vec<u32>) -> Vec<String> {
        let mut s = self.store.lock().unwrap();
        let Some(e) = s.entity_index(entity) else { return Vec::new() };
        let keys = s.entities[e].shape.keys;
        f(&mut s, e).into_iter().map(|idx| crate::gen::uuid_string(keys.id(idx))).collect()
    }

    /// Applies a change to a feed and returns the ids it touched; None when `name` is no feed.
    pub fn feed_op(&self, name: &str, op: FeedOp) -> Option<Vec<String>> {
        let mut f = self.feeds.lock().unwrap();
        let i = f.index(name)?;
        let keys = f.feeds[i].keys;
        Some(f.apply(i, op).into_iter().map(|idx| crate::gen::uuid_string(keys.id(idx))).collect())
    }

    pub fn late_commit(&self, entity: &str) -> Option<MockRecord> {
        let (shape, row) = {
            let mut s = self.store.lock().unwrap();
            let e = s.entity_index(entity)?;
            (s.entities[e].shape, s.late_commit(e))
        };
        Some(record_of(&shape, &row))
    }

    fn random_change(&self, s: &mut Store) {
        if s.entities.is_empty() {
            return;
        }
        let e = s.rng.gen_range(0..s.entities.len());
        let r: f64 = s.rng.gen();
        if r < 0.03 && s.live_count(e) > 1 {
            s.delete(e, 1);
        } else if r < 0.13 {
            s.insert(e, 1);
        } else {
            s.mutate(e, 1);
        }
    }
}

pub async fn background_mutations(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let rate = shared.cfg.mutations_per_sec;
    if !(rate > 0.0 && rate.is_finite()) {
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_secs_f64((1.0 / rate).clamp(0.01, 3600.0)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    let mut last = Instant::now();
    let mut credit = 0.0f64;
    // Each feed changes as often as an average entity, on top of the entities' own rate.
    let feed_rate = rate * shared.cfg.feeds.len() as f64 / shared.cfg.entities.len().max(1) as f64;
    let mut feed_credit = 0.0f64;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
        let now = Instant::now();
        credit = (credit + rate * (now - last).as_secs_f64()).min(rate.max(1.0) * 2.0);
        let n = credit.floor();
        credit -= n;
        feed_credit = (feed_credit + feed_rate * (now - last).as_secs_f64()).min(feed_rate.max(1.0) * 2.0);
        let feed_n = feed_credit.floor();
        feed_credit -= feed_n;
        last = now;
        {
            let mut s = shared.store.lock().unwrap();
            for _ in 0..n as u64 {
                shared.random_change(&mut s);
            }
        }
        let mut f = shared.feeds.lock().unwrap();
        for _ in 0..feed_n as u64 {
            f.random_change();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routing

enum Route<'a> {
    Main { entity: &'a str, id: Option<&'a str> },
    Alt { shape: &'a str, entity: &'a str, id: Option<&'a str> },
}

async fn handle(State(sh): State<Arc<Shared>>, ConnectInfo(conn): ConnectInfo<ConnCtl>, req: Request) -> Response {
    let tracking = uuid::Uuid::new_v4().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();

    let reply = match segs.as_slice() {
        ["_mock", rest @ ..] => control::control(&sh, req.method().clone(), rest, &query, req).await,
        ["oauth", "token"] => auth::token(&sh, req).await,
        ["target", entity] => match target::target(&sh, &conn, entity, None, &path, &query, &tracking, req).await {
            Some(r) => r,
            None => return Response::new(Body::empty()),
        },
        ["target", entity, id] => match target::target(&sh, &conn, entity, Some(id), &path, &query, &tracking, req).await {
            Some(r) => r,
            None => return Response::new(Body::empty()),
        },
        _ => match source::data(&sh, &conn, &segs, &path, &query, &tracking, req).await {
            Some(r) => r,
            // Reset: the connection is already marked; this response is never written.
            None => return Response::new(Body::empty()),
        },
    };
    let mut resp = reply.into_response();
    finish(&sh, &mut resp, &tracking);
    resp
}

fn finish(sh: &Shared, resp: &mut Response, tracking: &str) {
    let h = resp.headers_mut();
    h.insert("trackingid", HeaderValue::from_str(tracking).expect("a uuid is a header value"));
    h.insert("x-server-cache-id", HeaderValue::from_str(&sh.cache_id).expect("ascii"));
}
