//! The HTTP side: routing, the reference and alternative page shapes, auth, faults, the control
//! API, and a connection wrapper that lets a handler reset its own connection.

use crate::store::{self, Damage, Row, Shape, Store, Style};
use crate::{record_of, Fault, FaultKind, MockAuth, MockConfig, MockRecord, RequestInfo};
use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::serve::IncomingStream;
use axum::Router;
use base64::Engine;
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
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
    /// Queued faults with the responses they still affect (0 = until cleared).
    pub faults: Mutex<Vec<(Fault, u32)>>,
    pub log: Mutex<Log>,
    /// Valid OAuth tokens and when they expire.
    pub tokens: Mutex<HashMap<String, Instant>>,
    pub tokens_issued: AtomicUsize,
    /// Records served in pages (feed reads, not single-record calls), faulty responses included.
    pub records_served: AtomicUsize,
    cache_id: String,
    /// The simulated target: entity → id → the last body PUT.
    pub target: Mutex<HashMap<String, BTreeMap<String, serde_json::Value>>>,
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

fn gateway_reply(status: u16) -> Reply {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    if status >= 500 {
        Reply {
            status,
            content_type: "text/html",
            headers: Vec::new(),
            body: format!(
                "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>gateway</center>\r\n</body>\r\n</html>\r\n"
            ),
        }
    } else {
        let message = match status {
            400 => "The request is invalid (injected fault).".to_string(),
            401 => "Authentication is required (injected fault).".to_string(),
            403 => "The caller may not read this resource (injected fault).".to_string(),
            404 => "The resource does not exist (injected fault).".to_string(),
            _ => format!("{reason} (injected fault)."),
        };
        Reply::error(status, error_code(status), &message)
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

/// The opaque continuation key: the entity, the last version served and the page size.
fn encode_key(entity: &str, after: Option<u64>, size: usize) -> String {
    let after = after.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1\n{entity}\n{after}\n{size}"))
}

fn decode_key(key: &str) -> Option<(String, Option<u64>, usize)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(key.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.split('\n');
    if parts.next()? != "v1" {
        return None;
    }
    let entity = parts.next()?.to_string();
    let after = match parts.next()? {
        "-" => None,
        v => Some(v.parse().ok()?),
    };
    let size = parts.next()?.parse().ok()?;
    Some((entity, after, size))
}

fn parse_version(name: &str, v: Option<&str>) -> Result<Option<u64>, Reply> {
    match v {
        None | Some("") => Ok(None),
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 19 => Ok(s.parse().ok()),
        Some(s) => Err(Reply::error(400, "invalid_parameter", &format!("{name} must be a string of decimal digits, got {s:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Connections a handler can reset

struct ConnState {
    /// Reset: fail every read and write, close with RST.
    kill: AtomicBool,
    /// Truncate: let the next response's head and this many body bytes through, then close.
    truncate_at: AtomicUsize,
}

const NO_TRUNCATION: usize = usize::MAX;

/// Per-connection control, handed to handlers as connect info.
#[derive(Clone)]
pub struct ConnCtl(Arc<ConnState>);

impl ConnCtl {
    fn kill(&self) {
        self.0.kill.store(true, Ordering::SeqCst);
    }

    fn truncate_body_at(&self, n: usize) {
        self.0.truncate_at.store(n, Ordering::SeqCst);
    }
}

pub struct CtlStream {
    inner: TcpStream,
    st: Arc<ConnState>,
    /// While truncating: body bytes still allowed (None until the end of the head was written).
    body_left: Option<usize>,
    /// After a truncation: every further write fails (a plain close, so the sent bytes arrive).
    cut: bool,
}

impl CtlStream {
    fn check(&self) -> io::Result<()> {
        if self.st.kill.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset by fault injection"));
        }
        if self.cut {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "truncated by fault injection"));
        }
        Ok(())
    }

    /// A write while truncating: the head passes, then `at` body bytes, then the stream is cut.
    fn poll_write_truncating(&mut self, cx: &mut Context<'_>, buf: &[u8], at: usize) -> Poll<io::Result<usize>> {
        let n = match self.body_left {
            Some(left) => {
                let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..left.min(buf.len())]))?;
                self.body_left = Some(left - n);
                n
            }
            None => match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(p) => {
                    let head = p + 4;
                    let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..(head + at).min(buf.len())]))?;
                    if n >= head {
                        self.body_left = Some(at - (n - head));
                    }
                    n
                }
                None => std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?,
            },
        };
        if self.body_left == Some(0) {
            self.cut = true;
            self.st.truncate_at.store(NO_TRUNCATION, Ordering::SeqCst);
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for CtlStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CtlStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        match self.st.truncate_at.load(Ordering::SeqCst) {
            NO_TRUNCATION => Pin::new(&mut self.inner).poll_write(cx, buf),
            at => self.poll_write_truncating(cx, buf, at),
        }
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        self.check()?;
        if self.st.truncate_at.load(Ordering::SeqCst) == NO_TRUNCATION {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &**b).unwrap_or(&[]);
        self.poll_write(cx, first)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub struct CtlListener(TcpListener);

impl axum::serve::Listener for CtlListener {
    type Io = CtlStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((s, addr)) => {
                    let _ = s.set_nodelay(true);
                    let st = Arc::new(ConnState { kill: AtomicBool::new(false), truncate_at: AtomicUsize::new(NO_TRUNCATION) });
                    return (CtlStream { inner: s, st, body_left: None, cut: false }, addr);
                }
                // Out of file descriptors and the like: wait a little and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, CtlListener>> for ConnCtl {
    fn connect_info(stream: IncomingStream<'_, CtlListener>) -> Self {
        ConnCtl(stream.io().st.clone())
    }
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
        let cache_id = format!("mock-{:012x}", crate::gen::splitmix(cfg.seed) >> 16);
        Shared {
            cfg,
            base_url,
            store: Mutex::new(store),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Log { entries: Vec::new(), dropped: 0 }),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicUsize::new(0),
            records_served: AtomicUsize::new(0),
            cache_id,
            target: Mutex::new(HashMap::new()),
        }
    }

    pub fn inject(&self, fault: Fault) {
        let times = fault.times;
        self.faults.lock().unwrap().push((fault, times));
    }

    /// Takes one use of the first queued fault of the wanted class that matches the entity
    /// (`target:{entity}` for target calls, which only faults aimed at the target match).
    fn take_fault(&self, entity: &str, record_level: bool) -> Option<FaultKind> {
        let at_target = entity.starts_with(TARGET_PREFIX);
        let matches = |f: &Fault| match f.entity.as_deref() {
            None => !at_target,
            Some("target:*") => at_target,
            Some(e) => e == entity,
        };
        let mut faults = self.faults.lock().unwrap();
        let pos = faults.iter().position(|(f, _)| f.kind.is_record_fault() == record_level && matches(f))?;
        let kind = faults[pos].0.kind.clone();
        if faults[pos].1 > 0 {
            faults[pos].1 -= 1;
            if faults[pos].1 == 0 {
                faults.remove(pos);
            }
        }
        Some(kind)
    }

    fn log_start(&self, info: RequestInfo) -> usize {
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

    pub fn dataset(&self, entity: &str) -> Vec<MockRecord> {
        let (shape, mut rows) = {
            let s = self.store.lock().unwrap();
            let Some(e) = s.entity_index(entity) else { return Vec::new() };
            (s.entities[e].shape, s.live_rows(e))
        };
        rows.sort_by_key(|r| shape.keys.id(r.idx));
        rows.iter().map(|r| record_of(&shape, r)).collect()
    }

    pub fn target_dataset(&self, entity: &str) -> Vec<MockRecord> {
        let t = self.target.lock().unwrap();
        let Some(records) = t.get(entity) else { return Vec::new() };
        records
            .iter()
            .map(|(id, body)| MockRecord {
                id: id.clone(),
                row_version: body.get("rowVersion").and_then(|v| v.as_str()).unwrap_or("").to_string(),
                data: body.clone(),
            })
            .collect()
    }

    pub fn change(&self, entity: &str, f: impl FnOnce(&mut Store, usize) -> Vec<u32>) -> Vec<String> {
        let mut s = self.store.lock().unwrap();
        let Some(e) = s.entity_index(entity) else { return Vec::new() };
        let keys = s.entities[e].shape.keys;
        f(&mut s, e).into_iter().map(|idx| crate::gen::uuid_string(keys.id(idx))).collect()
    }

    pub fn late_commit(&self, entity: &str) -> Option<MockRecord> {
        let (shape, row) = {
            let mut s = self.store.lock().unwrap();
            let e = s.entity_index(entity)?;
            (s.entities[e].shape, s.late_commit(e))
        };
        Some(record_of(&shape, &row))
    }

    fn check_auth(&self, headers: &HeaderMap) -> Option<Reply> {
        match &self.cfg.auth {
            MockAuth::None => None,
            MockAuth::ApiKey { header, key } => {
                let given = headers.get(header.to_ascii_lowercase().as_str()).and_then(|v| v.to_str().ok());
                match given {
                    Some(g) if g == key => None,
                    Some(_) => Some(Reply::error(401, "unauthorized", &format!("The API key in {header} is not valid."))),
                    None => Some(Reply::error(401, "unauthorized", &format!("The {header} header is missing."))),
                }
            }
            MockAuth::OAuth { .. } => {
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                    .map(str::trim);
                let valid = bearer.is_some_and(|t| self.tokens.lock().unwrap().get(t).is_some_and(|exp| *exp > Instant::now()));
                if valid {
                    None
                } else {
                    let mut r = Reply::error(401, "unauthorized", if bearer.is_some() { "The access token is invalid or expired." } else { "A bearer token is required." });
                    r.headers.push(("www-authenticate", "Bearer error=\"invalid_token\"".into()));
                    Some(r)
                }
            }
        }
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
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
        let now = Instant::now();
        credit = (credit + rate * (now - last).as_secs_f64()).min(rate.max(1.0) * 2.0);
        last = now;
        let n = credit.floor();
        credit -= n;
        let mut s = shared.store.lock().unwrap();
        for _ in 0..n as u64 {
            shared.random_change(&mut s);
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
        ["_mock", rest @ ..] => control(&sh, req.method().clone(), rest, &query, req).await,
        ["oauth", "token"] => token(&sh, req).await,
        ["target", entity, id] => match target(&sh, &conn, entity, id, &path, &query, &tracking, req).await {
            Some(r) => r,
            None => return Response::new(Body::empty()),
        },
        _ => match data(&sh, &conn, &segs, &path, &query, &tracking, req).await {
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

/// A data call. None = the connection was reset.
async fn data(sh: &Arc<Shared>, conn: &ConnCtl, segs: &[&str], path: &str, query: &str, tracking: &str, req: Request) -> Option<Reply> {
    let route = match segs {
        ["alt", shape, entity] => Some(Route::Alt { shape, entity, id: None }),
        ["alt", shape, entity, id] => Some(Route::Alt { shape, entity, id: Some(id) }),
        [entity] => Some(Route::Main { entity, id: None }),
        [entity, id] => Some(Route::Main { entity, id: Some(id) }),
        _ => None,
    };
    let entity = match &route {
        Some(Route::Main { entity, .. }) | Some(Route::Alt { entity, .. }) => entity.to_string(),
        None => String::new(),
    };
    let headers: Vec<(String, String)> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let seq = sh.log_start(RequestInfo {
        method: req.method().to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        status: 0,
        tracking_id: tracking.to_string(),
    });

    let fault = sh.take_fault(&entity, false);
    let reply = match fault {
        Some(FaultKind::Reset) => {
            conn.kill();
            return None;
        }
        Some(FaultKind::RateLimit { retry_after_secs }) => rate_limited(retry_after_secs),
        Some(FaultKind::Status(s)) => gateway_reply(s),
        Some(FaultKind::InvalidJson) => Reply::json(200, "{\"morePages\":true,\"nextPageKey\":\"\",\"data\":[{\"id\":\"<html><body>Internal error</body></html>".into()),
        _ => {
            let host = req.headers().get("host").and_then(|h| h.to_str().ok()).map(str::to_string);
            let r = if req.method() != Method::GET {
                Reply::error(405, "method_not_allowed", "Only GET is supported here.")
            } else if let Some(denied) = sh.check_auth(req.headers()) {
                denied
            } else {
                match &route {
                    None => Reply::error(404, "resource_not_found", &format!("No resource at {path}.")),
                    Some(route) => serve_data(sh, route, query, host.as_deref()),
                }
            };
            match fault {
                Some(FaultKind::Slow { millis }) => {
                    sh.log_status(seq, r.status);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    r
                }
                Some(FaultKind::Truncated) if r.status == 200 => {
                    // The response goes out with its true Content-Length; the connection stops
                    // after half the body and closes.
                    conn.truncate_body_at(r.body.len() / 2);
                    r
                }
                _ => r,
            }
        }
    };
    sh.log_status(seq, reply.status);
    Some(reply)
}

fn rate_limited(retry_after_secs: u64) -> Reply {
    let mut r = Reply::error(429, "too_many_requests", "Rate limit exceeded; retry later.");
    r.headers.push(("retry-after", retry_after_secs.to_string()));
    r.headers.push(("x-ratelimit-limit", "100".into()));
    r.headers.push(("x-ratelimit-remaining", "0".into()));
    r.headers.push(("x-ratelimit-reset", retry_after_secs.to_string()));
    r
}

/// A call to the simulated target. None = the connection was reset.
#[allow(clippy::too_many_arguments)]
async fn target(sh: &Arc<Shared>, conn: &ConnCtl, entity: &str, id: &str, path: &str, query: &str, tracking: &str, req: Request) -> Option<Reply> {
    let headers: Vec<(String, String)> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let method = req.method().clone();
    let seq = sh.log_start(RequestInfo {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        status: 0,
        tracking_id: tracking.to_string(),
    });
    let fault = sh.take_fault(&format!("{TARGET_PREFIX}{entity}"), false);
    let reply = match fault {
        Some(FaultKind::Reset) => {
            conn.kill();
            return None;
        }
        Some(FaultKind::RateLimit { retry_after_secs }) => rate_limited(retry_after_secs),
        Some(FaultKind::Status(s)) => gateway_reply(s),
        _ => {
            let r = match sh.check_auth(req.headers()) {
                Some(denied) => denied,
                None => target_call(sh, &method, entity, id, req).await,
            };
            if let Some(FaultKind::Slow { millis }) = fault {
                sh.log_status(seq, r.status);
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            r
        }
    };
    sh.log_status(seq, reply.status);
    Some(reply)
}

async fn target_call(sh: &Shared, method: &Method, entity: &str, id: &str, req: Request) -> Reply {
    match *method {
        Method::PUT => {
            let body = match axum::body::to_bytes(req.into_body(), 16 * 1024 * 1024).await {
                Ok(b) => b,
                Err(_) => return Reply::error(400, "invalid_body", "The body could not be read."),
            };
            let value: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                Ok(_) => return Reply::error(400, "invalid_body", "The body must be a JSON object."),
                Err(e) => return Reply::error(400, "invalid_body", &format!("The body is not JSON: {e}")),
            };
            if let Some(body_id) = value.get("id").and_then(|v| v.as_str()).filter(|b| *b != id) {
                return Reply::error(400, "id_mismatch", &format!("The body's id {body_id:?} is not the id in the URL {id:?}."));
            }
            let previous = sh.target.lock().unwrap().entry(entity.to_string()).or_default().insert(id.to_string(), value.clone());
            Reply::json(if previous.is_some() { 200 } else { 201 }, value.to_string())
        }
        Method::DELETE => match sh.target.lock().unwrap().get_mut(entity).and_then(|m| m.remove(id)) {
            Some(_) => Reply::empty(204),
            None => Reply::error(404, "resource_not_found", &format!("No {entity} record with id {id} at the target.")),
        },
        Method::GET => match sh.target.lock().unwrap().get(entity).and_then(|m| m.get(id)) {
            Some(v) => Reply::json(200, v.to_string()),
            None => Reply::error(404, "resource_not_found", &format!("No {entity} record with id {id} at the target.")),
        },
        _ => Reply::error(405, "method_not_allowed", "The target takes PUT, DELETE and GET."),
    }
}

fn serve_data(sh: &Shared, route: &Route<'_>, query: &str, host: Option<&str>) -> Reply {
    let base = host.map(|h| format!("http://{h}")).unwrap_or_else(|| sh.base_url.clone());
    let q = parse_query(query);
    let (entity, id) = match route {
        Route::Main { entity, id } | Route::Alt { entity, id, .. } => (*entity, *id),
    };
    let style = match route {
        Route::Main { .. } => Style::RowVersion,
        Route::Alt { shape, .. } => {
            if !matches!(*shape, "token" | "link" | "short") {
                return Reply::error(404, "resource_not_found", &format!("Unknown alternative shape {shape:?}."));
            }
            Style::Alt
        }
    };
    let e = match sh.store.lock().unwrap().entity_index(entity) {
        Some(e) => e,
        None => return Reply::error(404, "resource_not_found", &format!("The resource '{entity}' does not exist.")),
    };
    if let Some(id) = id {
        let found = uuid::Uuid::parse_str(id).ok().and_then(|u| {
            let s = sh.store.lock().unwrap();
            s.get(e, u.as_u128()).map(|row| (s.entities[e].shape, row))
        });
        return match found {
            Some((shape, row)) => {
                let mut body = String::with_capacity(1024);
                store::render(&mut body, &shape, &row, style, Damage::default());
                Reply::json(200, body)
            }
            None => Reply::error(404, "resource_not_found", &format!("No {entity} record with id {id}.")),
        };
    }

    // Page parameters.
    let size_param = match param(&q, if style == Style::RowVersion { "pageSize" } else { "limit" }) {
        None | Some("") => None,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Reply::error(400, "invalid_parameter", &format!("The page size must be a positive integer, got {s:?}.")),
        },
    };
    let clamp = |n: usize| n.clamp(1, sh.cfg.max_page_size.max(1));
    let (after, size) = match route {
        Route::Main { .. } => match param(&q, "pageKey").filter(|k| !k.is_empty()) {
            Some(key) => match decode_key(key) {
                Some((ent, after, size)) if ent == entity => (after, clamp(size_param.unwrap_or(size))),
                _ => return Reply::error(400, "invalid_parameter", "The pageKey is not valid for this resource."),
            },
            None => match parse_version("lastRowVersion", param(&q, "lastRowVersion")) {
                Ok(after) => (after, clamp(size_param.unwrap_or(sh.cfg.default_page_size))),
                Err(r) => return r,
            },
        },
        Route::Alt { .. } => {
            let since = match parse_version("since", param(&q, "since")) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let size = clamp(size_param.unwrap_or(sh.cfg.default_page_size));
            match param(&q, "token").filter(|t| !t.is_empty()) {
                Some(t) => match decode_key(t) {
                    Some((ent, after, _)) if ent == entity => (after.max(since), size),
                    _ => return Reply::error(400, "invalid_parameter", "The token is not valid for this resource."),
                },
                None => (since, size),
            }
        }
    };

    let (rows, more, shape) = {
        let mut s = sh.store.lock().unwrap();
        let (rows, more) = s.page(e, after, size);
        (rows, more, s.entities[e].shape)
    };
    sh.records_served.fetch_add(rows.len(), Ordering::Relaxed);
    let fault = if rows.is_empty() { None } else { sh.take_fault(entity, true) };
    let last = rows.last().map(|r| r.version);
    let next_key = if more { encode_key(entity, last.or(after), size) } else { String::new() };

    let mut body = String::with_capacity(rows.len() * 900 + 512);
    let mut headers = Vec::new();
    match route {
        Route::Main { .. } => {
            let _ = write!(body, "{{\"morePages\":{more},\"nextPageKey\":\"{next_key}\",\"nextPageURL\":\"");
            if more {
                let _ = write!(body, "{base}/{}?pageKey={next_key}", percent_encode(entity));
            }
            body.push_str("\",\"data\":");
            render_rows(&mut body, &shape, &rows, style, fault.as_ref());
            body.push('}');
        }
        Route::Alt { shape: "token", .. } => {
            body.push_str("{\"result\":{\"items\":");
            render_rows(&mut body, &shape, &rows, style, fault.as_ref());
            let _ = write!(body, "}},\"paging\":{{\"next\":\"{next_key}\"}}}}");
        }
        Route::Alt { shape: kind, .. } => {
            render_rows(&mut body, &shape, &rows, style, fault.as_ref());
            if *kind == "link" && more {
                let since = last.or(after).map(|v| v.to_string()).unwrap_or_default();
                headers.push(("link", format!("<{base}/alt/link/{}?since={since}&limit={size}>; rel=\"next\"", percent_encode(entity))));
            }
        }
    }
    let mut r = Reply::json(200, body);
    r.headers = headers;
    r
}

fn render_rows(out: &mut String, shape: &Shape, rows: &[Row], style: Style, fault: Option<&FaultKind>) {
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let damage = Damage {
            no_id: matches!(fault, Some(FaultKind::MissingId { records }) if i < *records),
            no_version: matches!(fault, Some(FaultKind::MissingRowVersion { records }) if i < *records),
        };
        store::render(out, shape, row, style, damage);
        if i == 0 && matches!(fault, Some(FaultKind::DuplicateId)) {
            // The same record again, as it was one change earlier: an older version after the newer.
            let older = Row { idx: row.idx, version: row.version.saturating_sub(1), rev: row.rev.saturating_sub(1), poisoned: row.poisoned };
            out.push(',');
            store::render(out, shape, &older, style, Damage::default());
        }
    }
    out.push(']');
}

// ---------------------------------------------------------------------------------------------
// OAuth token endpoint

async fn token(sh: &Shared, req: Request) -> Reply {
    if req.method() != Method::POST {
        return Reply::error(405, "method_not_allowed", "POST the client credentials here.");
    }
    let basic = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(a, b)| (percent_decode(a, true), percent_decode(b, true))));
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(_) => return oauth_error(400, "invalid_request", "The body could not be read."),
    };
    let form = parse_query(&String::from_utf8_lossy(&body));
    if param(&form, "grant_type") != Some("client_credentials") {
        return oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported.");
    }
    let (id, secret) = match (basic, param(&form, "client_id"), param(&form, "client_secret")) {
        (Some(b), _, _) => b,
        (None, Some(i), Some(s)) => (i.to_string(), s.to_string()),
        _ => return oauth_error(401, "invalid_client", "Client credentials are missing."),
    };
    let ttl = match &sh.cfg.auth {
        MockAuth::OAuth { client_id, client_secret, token_ttl_secs } => {
            if &id != client_id || &secret != client_secret {
                return oauth_error(401, "invalid_client", "The client id or secret is wrong.");
            }
            *token_ttl_secs
        }
        _ => 3600,
    };
    let token = format!("mock_{}", uuid::Uuid::new_v4().simple());
    sh.tokens.lock().unwrap().insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
    sh.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let mut body = serde_json::json!({ "access_token": token, "token_type": "Bearer", "expires_in": ttl });
    if let Some(scope) = param(&form, "scope") {
        body["scope"] = scope.into();
    }
    let mut r = Reply::json(200, body.to_string());
    r.headers.push(("cache-control", "no-store".into()));
    r
}

fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
    Reply::json(status, serde_json::json!({ "error": error, "error_description": description }).to_string())
}

// ---------------------------------------------------------------------------------------------
// Control API (no auth, no faults, not logged)

fn records_json(records: &[MockRecord]) -> String {
    let v: Vec<serde_json::Value> =
        records.iter().map(|r| serde_json::json!({ "id": r.id, "rowVersion": r.row_version, "data": r.data })).collect();
    serde_json::Value::Array(v).to_string()
}

async fn control(sh: &Shared, method: Method, rest: &[&str], query: &str, req: Request) -> Reply {
    let q = parse_query(query);
    let n = || param(&q, "n").and_then(|n| n.parse::<usize>().ok()).unwrap_or(1);
    let known = |entity: &str| sh.store.lock().unwrap().entity_index(entity).is_some();
    let unknown = |entity: &str| Reply::error(404, "resource_not_found", &format!("The resource '{entity}' does not exist."));
    match (method.as_str(), rest) {
        ("POST", ["faults"]) => {
            let body = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
                Ok(b) => b,
                Err(_) => return Reply::error(400, "invalid_body", "The body could not be read."),
            };
            let faults: Vec<Fault> = match serde_json::from_slice::<Fault>(&body) {
                Ok(f) => vec![f],
                Err(e) => match serde_json::from_slice::<Vec<Fault>>(&body) {
                    Ok(fs) => fs,
                    Err(_) => return Reply::error(400, "invalid_body", &format!("Not a fault: {e}")),
                },
            };
            for f in faults {
                sh.inject(f);
            }
            Reply::empty(204)
        }
        ("DELETE", ["faults"]) => {
            sh.faults.lock().unwrap().clear();
            Reply::empty(204)
        }
        ("GET", ["faults"]) => {
            let faults: Vec<serde_json::Value> = sh
                .faults
                .lock()
                .unwrap()
                .iter()
                .map(|(f, left)| {
                    let mut v = serde_json::to_value(f).unwrap_or_default();
                    v["remaining"] = (*left).into();
                    v
                })
                .collect();
            Reply::json(200, serde_json::Value::Array(faults).to_string())
        }
        ("GET", ["entities"]) => {
            let s = sh.store.lock().unwrap();
            let list: Vec<serde_json::Value> = s
                .entities
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    serde_json::json!({
                        "name": e.name,
                        "records": s.live_count(i),
                        "maxRowVersion": s.max_version(i).map(|v| v.to_string()),
                    })
                })
                .collect();
            Reply::json(200, serde_json::Value::Array(list).to_string())
        }
        ("GET", ["dataset", entity]) if known(entity) => Reply::json(200, records_json(&sh.dataset(entity))),
        // The target takes any entity name (the forward path decides it), so no `known` check.
        ("GET", ["target", entity]) => Reply::json(200, records_json(&sh.target_dataset(entity))),
        ("POST", [op @ ("mutate" | "insert" | "insert-poisoned" | "delete"), entity]) if known(entity) => {
            let n = n();
            let ids = match *op {
                "mutate" => sh.change(entity, |s, e| s.mutate(e, n)),
                "insert" => sh.change(entity, |s, e| s.insert(e, n)),
                "insert-poisoned" => sh.change(entity, |s, e| s.insert_poisoned(e, n)),
                _ => sh.change(entity, |s, e| s.delete(e, n)),
            };
            Reply::json(200, serde_json::to_string(&ids).unwrap_or_default())
        }
        ("POST", ["delete-all", entity]) if known(entity) => {
            let mut s = sh.store.lock().unwrap();
            if let Some(e) = s.entity_index(entity) {
                s.delete_all(e);
            }
            Reply::empty(204)
        }
        ("POST", ["late-commit", entity]) if known(entity) => match sh.late_commit(entity) {
            Some(r) => Reply::json(200, records_json(&[r]).trim_start_matches('[').trim_end_matches(']').to_string()),
            None => unknown(entity),
        },
        ("POST", ["expire-tokens"]) => {
            sh.tokens.lock().unwrap().clear();
            Reply::empty(204)
        }
        ("GET", ["requests"]) => {
            let log = sh.log.lock().unwrap();
            let list: Vec<serde_json::Value> = log
                .entries
                .iter()
                .map(|r| serde_json::json!({ "path": r.path, "query": r.query, "status": r.status, "trackingId": r.tracking_id, "headers": r.headers }))
                .collect();
            Reply::json(200, serde_json::Value::Array(list).to_string())
        }
        (_, [_, entity]) if !known(entity) => unknown(entity),
        _ => Reply::error(404, "resource_not_found", "Unknown control endpoint."),
    }
}
