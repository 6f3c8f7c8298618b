//! Webhook receiver: verified calls to `POST /webhooks/{connection_id}` "nudge" an entity (ask the
//! engine to poll it now). The receiver never writes data itself; a nudge only brings the next
//! poll forward, so the worst a replayed or duplicated call can do is cause one extra poll.
//!
//! Two dialects share the endpoint:
//!
//! * **Standard Webhooks** (<https://www.standardwebhooks.com/>): headers `webhook-id`,
//!   `webhook-timestamp` and `webhook-signature`; HMAC-SHA256 over `{id}.{timestamp}.{body}`
//!   with the base64-decoded secret (optional `whsec_` prefix); 5 minutes of clock tolerance;
//!   a repeated `webhook-id` is acknowledged but not nudged again. The entity name is read from
//!   the JSON body at the connection's JSON pointer (default `/entity`).
//! * **Business Central subscriptions**: `?validationToken=` is echoed back as `text/plain`
//!   (handshake on creation and renewal); notifications are `{"value": [...]}` where every entry
//!   carries the `clientState` secret chosen at subscription and a `resource` path naming the
//!   entity. The sender deletes the subscription on any answer other than 2xx, 408, 429 or 5xx,
//!   so the answers here are chosen with that in mind (see [`bc_notification`]).
//!
//! Secrets and signatures are never logged nor returned in answers.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

type HmacSha256 = Hmac<Sha256>;

/// Largest request body accepted; bigger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How far `webhook-timestamp` may be from our clock, either way (Standard Webhooks).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;
/// How long a seen `webhook-id` is remembered. Longer than the two-sided tolerance window, so a
/// message cannot be replayed once forgotten: by then its timestamp is stale.
const REPLAY_WINDOW_SECS: i64 = 10 * 60;
/// Upper bound on remembered `webhook-id`s (only verified calls are remembered).
const REPLAY_CAPACITY: usize = 10_000;
/// JSON pointer used when a connection configures none.
pub const DEFAULT_ENTITY_POINTER: &str = "/entity";

/// One connection as the webhook receiver sees it.
#[derive(Clone)]
pub struct WebhookConnection {
    pub id: String,
    /// Entity names of this connection.
    pub entities: Vec<String>,
    /// JSON pointer for the Standard dialect, default "/entity". An empty string means the
    /// default; a pointer without a leading `/` gets one.
    pub entity_pointer: String,
    /// Standard Webhooks secret ("whsec_..." or bare base64); None = Standard dialect refused (401).
    pub signing_secret: Option<String>,
    /// Business Central clientState; None = BC dialect refused (401 / 404 for validation).
    pub client_state: Option<String>,
}

// Manual Debug so that a stray `{:?}` can never print a secret.
impl fmt::Debug for WebhookConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConnection")
            .field("id", &self.id)
            .field("entities", &self.entities)
            .field("entity_pointer", &self.entity_pointer)
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "<redacted>"))
            .field("client_state", &self.client_state.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where nudges go (the engine).
pub trait NudgeTarget: Send + Sync + 'static {
    /// Asks for a cycle of this entity now. Returns false if the engine cannot take it (shutting down).
    fn nudge(&self, connection: &str, entity: &str) -> bool;
}

/// Time source for timestamp checks and the replay window.
pub trait Clock: Send + Sync + 'static {
    fn now_unix(&self) -> i64;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

/// Why a Standard Webhooks signature was refused. The Display text is safe to return to the
/// caller: it never contains the secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The named header is missing or empty.
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not an integer number of seconds.
    BadTimestamp,
    /// `webhook-timestamp` is more than [`TIMESTAMP_TOLERANCE_SECS`] away from our clock.
    Stale,
    /// The configured secret is not base64 (after an optional `whsec_` prefix): our problem.
    BadSecret,
    /// No `v1,` signature in the header matches.
    NoMatch,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MissingHeader(h) => write!(f, "the {h} header is missing"),
            VerifyError::BadTimestamp => write!(f, "webhook-timestamp is not a unix time in seconds"),
            VerifyError::Stale => write!(
                f,
                "webhook-timestamp is more than {} minutes away from the receiver's clock",
                TIMESTAMP_TOLERANCE_SECS / 60
            ),
            VerifyError::BadSecret => write!(
                f,
                "the signing secret configured for this connection is not valid base64 (expected \"whsec_...\" or bare base64)"
            ),
            VerifyError::NoMatch => write!(f, "no v1 signature in webhook-signature matches"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl VerifyError {
    fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::BadTimestamp => "bad_timestamp",
            VerifyError::Stale => "stale_timestamp",
            VerifyError::BadSecret => "secret_misconfigured",
            VerifyError::NoMatch => "bad_signature",
        }
    }
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let s = secret.trim();
    let s = s.strip_prefix("whsec_").unwrap_or(s);
    match B64.decode(s) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(VerifyError::BadSecret),
    }
}

fn standard_mac(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Verifies a Standard Webhooks call. `signature_header` is the raw `webhook-signature` value:
/// space-separated `v1,<base64>` entries, any one of which matching is enough (entries of other
/// versions are ignored). Empty arguments count as missing headers.
pub fn verify_standard_signature(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    body: &[u8],
    signature_header: &str,
    now_unix: i64,
) -> Result<(), VerifyError> {
    if msg_id.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-id"));
    }
    if timestamp.is_empty() {
        return Err(VerifyError::MissingHeader("webhook-timestamp"));
    }
    if signature_header.trim().is_empty() {
        return Err(VerifyError::MissingHeader("webhook-signature"));
    }
    let ts: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now_unix.abs_diff(ts) > TIMESTAMP_TOLERANCE_SECS as u64 {
        return Err(VerifyError::Stale);
    }
    let key = decode_secret(secret)?;
    let mac = standard_mac(&key, msg_id, timestamp, body);
    for candidate in signature_header.split_ascii_whitespace() {
        let Some(sig) = candidate.strip_prefix("v1,") else { continue };
        let Ok(sig) = B64.decode(sig) else { continue };
        // verify_slice compares in constant time.
        if mac.clone().verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

/// Signs a Standard Webhooks message: returns `"v1,<base64>"` for the `webhook-signature` header.
/// Used by tests and the demo.
///
/// # Panics
/// If `secret` is not base64 after an optional `whsec_` prefix.
pub fn sign_standard(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = decode_secret(secret).expect("the signing secret must be base64, optionally prefixed with whsec_");
    let mac = standard_mac(&key, msg_id, &timestamp.to_string(), body);
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Verifies a Business Central notification: every entry of `value` must carry the connection's
/// `clientState` (compared in constant time). `Err(i)`: entry `i` does not.
pub fn verify_bc_client_state(entries: &[Value], expected: &str) -> Result<(), usize> {
    for (i, entry) in entries.iter().enumerate() {
        let given = entry.get("clientState").and_then(Value::as_str);
        // Compare even when missing, so both paths cost the same.
        let ok = secret_eq(given.unwrap_or(""), expected) && given.is_some();
        if !ok {
            return Err(i);
        }
    }
    Ok(())
}

/// Constant-time equality of two secrets (compares SHA-256 digests, so lengths do not leak either).
fn secret_eq(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Remembers verified `webhook-id`s for [`REPLAY_WINDOW_SECS`], at most [`REPLAY_CAPACITY`].
#[derive(Default)]
struct ReplayCache {
    seen: HashMap<String, u64>,
    order: VecDeque<(i64, u64, String)>,
    next_seq: u64,
}

impl ReplayCache {
    fn pop_oldest(&mut self) {
        if let Some((_, seq, key)) = self.order.pop_front() {
            if self.seen.get(&key) == Some(&seq) {
                self.seen.remove(&key);
            }
        }
    }

    /// Records `key`; returns its ticket, or None if it was already seen.
    fn insert(&mut self, key: String, now: i64) -> Option<u64> {
        while self.order.front().is_some_and(|(t, _, _)| *t < now - REPLAY_WINDOW_SECS) {
            self.pop_oldest();
        }
        if self.seen.contains_key(&key) {
            return None;
        }
        while !self.order.is_empty() && (self.seen.len() >= REPLAY_CAPACITY || self.order.len() >= 2 * REPLAY_CAPACITY) {
            self.pop_oldest();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.seen.insert(key.clone(), seq);
        self.order.push_back((now, seq, key));
        Some(seq)
    }

    /// Forgets `key` (the call was not acted on, so the sender's retry must go through).
    fn forget(&mut self, key: &str, seq: u64) {
        if self.seen.get(key) == Some(&seq) {
            self.seen.remove(key);
        }
    }
}

struct Shared {
    connections: HashMap<String, WebhookConnection>,
    target: Arc<dyn NudgeTarget>,
    clock: Arc<dyn Clock>,
    replay: Mutex<ReplayCache>,
}

/// The webhook receiver: `POST /webhooks/{connection_id}`.
pub fn router(connections: Vec<WebhookConnection>, target: Arc<dyn NudgeTarget>, clock: Arc<dyn Clock>) -> Router {
    let mut map = HashMap::new();
    for mut c in connections {
        let pointer = c.entity_pointer.trim();
        c.entity_pointer = if pointer.is_empty() {
            DEFAULT_ENTITY_POINTER.to_string()
        } else if pointer.starts_with('/') {
            pointer.to_string()
        } else {
            format!("/{pointer}")
        };
        if map.contains_key(&c.id) {
            tracing::warn!(connection = %c.id, "two connections share this id; webhooks use the last one");
        }
        map.insert(c.id.clone(), c);
    }
    let shared = Arc::new(Shared { connections: map, target, clock, replay: Mutex::new(ReplayCache::default()) });
    Router::new().route("/webhooks/{connection_id}", post(receive)).with_state(shared)
}

/// Shortens and escapes caller-supplied text before it goes into a log line or an answer.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// A refusal: logs a warning (with the reason and connection) and answers `{"code","message"}`.
fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>, connection: &str) -> Response {
    let message = message.into();
    if status.is_server_error() {
        tracing::error!(connection = %shown(connection), status = status.as_u16(), code, "webhook not processed: {message}");
    } else {
        tracing::warn!(connection = %shown(connection), status = status.as_u16(), code, "webhook refused: {message}");
    }
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn accepted(body: Value) -> Response {
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").trim()
}

async fn receive(
    State(st): State<Arc<Shared>>,
    Path(connection_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(conn) = st.connections.get(&connection_id) else {
        return refuse(StatusCode::NOT_FOUND, "unknown_connection", "no connection with this id", &connection_id);
    };

    // Business Central subscription handshake: echo the token, as plain text, with 200.
    if let Some(token) = query.as_ref().ok().and_then(|q| q.0.get("validationToken")) {
        if conn.client_state.is_none() {
            return refuse(
                StatusCode::NOT_FOUND,
                "subscriptions_not_configured",
                "this connection has no clientState configured, so it takes no Business Central subscriptions",
                &conn.id,
            );
        }
        tracing::info!(connection = %conn.id, "answered a Business Central subscription validation");
        let mut resp = (StatusCode::OK, token.clone()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        return resp;
    }

    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            &conn.id,
        )
    };
    let declared_len = header_str(&headers, header::CONTENT_LENGTH.as_str()).parse::<u64>().ok();
    if declared_len.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        // The limit is the usual reason; otherwise the caller went away mid-body.
        Err(_) => return too_large(),
    };
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();

    let has_signature = headers.contains_key("webhook-signature");
    let bc_shaped = parsed.as_ref().is_some_and(|v| v.get("value").is_some_and(Value::is_array));
    if bc_shaped && !has_signature {
        bc_notification(&st, conn, parsed.as_ref().and_then(|v| v.get("value")).and_then(Value::as_array).unwrap())
    } else {
        standard(&st, conn, &headers, &bytes, parsed.as_ref())
    }
}

fn standard(st: &Shared, conn: &WebhookConnection, headers: &HeaderMap, body: &[u8], parsed: Option<&Value>) -> Response {
    let Some(secret) = conn.signing_secret.as_deref() else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "webhooks_not_configured",
            "this connection has no webhook signing secret configured",
            &conn.id,
        );
    };
    let msg_id = header_str(headers, "webhook-id");
    let timestamp = header_str(headers, "webhook-timestamp");
    let signature = header_str(headers, "webhook-signature");
    if let Err(e) = verify_standard_signature(secret, msg_id, timestamp, body, signature, st.clock.now_unix()) {
        let status = match e {
            // Our configuration is wrong, not the caller: a 5xx makes the sender retry later.
            VerifyError::BadSecret => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        };
        return refuse(status, e.code(), e.to_string(), &conn.id);
    }

    let Some(doc) = parsed else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_json", "the body is not JSON", &conn.id);
    };
    let Some(name) = doc.pointer(&conn.entity_pointer).and_then(Value::as_str) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "no_entity",
            format!("the body has no entity name (a string) at JSON pointer {}", conn.entity_pointer),
            &conn.id,
        );
    };
    let Some(entity) = find_entity(&conn.entities, name) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "unknown_entity",
            format!("the connection has no entity named \"{}\"", shown(name)),
            &conn.id,
        );
    };

    let key = format!("{}\u{0}{}", conn.id, msg_id);
    let ticket = st.replay.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), st.clock.now_unix());
    let Some(ticket) = ticket else {
        tracing::info!(connection = %conn.id, entity, webhook_id = %shown(msg_id), "repeated webhook-id acknowledged, not nudged again");
        return accepted(json!({ "status": "duplicate", "nudged": [] }));
    };
    if !st.target.nudge(&conn.id, entity) {
        st.replay.lock().unwrap_or_else(|p| p.into_inner()).forget(&key, ticket);
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_accepting",
            "the engine is not taking nudges right now (shutting down); retry later",
            &conn.id,
        );
    }
    tracing::debug!(connection = %conn.id, entity, "webhook nudge (Standard Webhooks)");
    accepted(json!({ "status": "accepted", "nudged": [entity] }))
}

/// Business Central notifications.
///
/// The sender deletes the subscription on any answer other than 2xx, 408, 429 or 5xx, so:
/// - a verified notification gets 202, even when some entries name entities this connection
///   does not replicate (they are logged and ignored): refusing them would cost the subscription;
/// - an internal problem (the engine not taking nudges) gets 503, so the sender retries;
/// - a wrong or missing `clientState` in any entry gets 401 and nothing is nudged. This is a
///   deliberate choice: the real subscription always sends the clientState it was created with,
///   so a mismatch means the call did not come from our subscription (a forgery, or a stale
///   subscription from an earlier secret). Whatever the sender does with that subscription in
///   response, it is not one we want; a 2xx would tell a forger the guess was fine.
fn bc_notification(st: &Shared, conn: &WebhookConnection, entries: &[Value]) -> Response {
    let Some(expected) = conn.client_state.as_deref() else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "subscriptions_not_configured",
            "this connection has no clientState configured, so it takes no Business Central notifications",
            &conn.id,
        );
    };
    // Authenticate every entry before acting on any.
    if let Err(i) = verify_bc_client_state(entries, expected) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_client_state",
            format!("notification entry {i} does not carry this connection's clientState"),
            &conn.id,
        );
    }

    let mut nudged: Vec<&str> = Vec::new();
    let mut ignored = 0usize;
    for entry in entries {
        let resource = entry.get("resource").and_then(Value::as_str).unwrap_or("");
        let change = entry.get("changeType").and_then(Value::as_str).unwrap_or("");
        // A "collection" entry stands for many changes to the collection named in `resource`;
        // the entity is found the same way and nudged once like any other.
        match entity_from_resource(&conn.entities, resource) {
            Some(entity) => {
                if !nudged.contains(&entity) {
                    nudged.push(entity);
                }
            }
            None => {
                ignored += 1;
                tracing::warn!(
                    connection = %conn.id,
                    resource = %shown(resource),
                    change_type = %shown(change),
                    "Business Central notification for an entity this connection does not replicate; ignored"
                );
            }
        }
    }
    for entity in &nudged {
        if !st.target.nudge(&conn.id, entity) {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_accepting",
                "the engine is not taking nudges right now (shutting down); retry later",
                &conn.id,
            );
        }
        tracing::debug!(connection = %conn.id, entity, "webhook nudge (Business Central)");
    }
    accepted(json!({ "status": "accepted", "nudged": nudged, "ignored": ignored }))
}

/// The configured entity whose name equals `name`, ignoring case.
fn find_entity<'a>(entities: &'a [String], name: &str) -> Option<&'a str> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    entities
        .iter()
        .find(|e| e.eq_ignore_ascii_case(name) || e.to_lowercase() == name.to_lowercase())
        .map(String::as_str)
}

/// Finds the entity a Business Central `resource` names, e.g.
/// `api/v2.0/companies(<uuid>)/items(<uuid>)` or `.../items`: splits the path into segments
/// (slashes inside parentheses do not split), strips each segment's `(...)` key, and returns the
/// first configured entity matched from the end.
fn entity_from_resource<'a>(entities: &'a [String], resource: &str) -> Option<&'a str> {
    let mut path = resource.trim();
    if let Some(i) = path.find("://") {
        // Absolute URL: drop scheme and host.
        path = &path[i + 3..];
        path = path.find('/').map_or("", |j| &path[j..]);
    }
    let mut segments = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in path.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                segments.push(&path[start..i]);
                start = i + 1;
            }
            '?' | '#' if depth == 0 => {
                path = &path[..i];
                break;
            }
            _ => {}
        }
    }
    segments.push(&path[start.min(path.len())..]);
    segments.iter().rev().find_map(|seg| {
        let name = seg.find('(').map_or(*seg, |i| &seg[..i]);
        find_entity(entities, name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const CLIENT_STATE: &str = "bc-client-state-3f1c9a";
    const NOW: i64 = 1_700_000_000;

    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<(String, String)>>,
        refuse: AtomicBool,
    }

    impl NudgeTarget for Recorder {
        fn nudge(&self, connection: &str, entity: &str) -> bool {
            if self.refuse.load(Ordering::SeqCst) {
                return false;
            }
            self.calls.lock().unwrap().push((connection.to_string(), entity.to_string()));
            true
        }
    }

    impl Recorder {
        fn calls(&self) -> Vec<(String, String)> {
            self.calls.lock().unwrap().clone()
        }
    }

    struct FixedClock(AtomicI64);

    impl Clock for FixedClock {
        fn now_unix(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    struct Server {
        base: String,
        rec: Arc<Recorder>,
        client: reqwest::Client,
    }

    fn conn(id: &str) -> WebhookConnection {
        WebhookConnection {
            id: id.into(),
            entities: vec!["items".into(), "customers".into(), "salesOrders".into()],
            entity_pointer: "/entity".into(),
            signing_secret: Some(SECRET.into()),
            client_state: Some(CLIENT_STATE.into()),
        }
    }

    async fn serve(connections: Vec<WebhookConnection>) -> Server {
        let rec = Arc::new(Recorder::default());
        let clock = Arc::new(FixedClock(AtomicI64::new(NOW)));
        let app = router(connections, rec.clone(), clock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { base: format!("http://{addr}"), rec, client: reqwest::Client::new() }
    }

    async fn default_server() -> Server {
        let mut bare = conn("bare");
        bare.signing_secret = None;
        bare.client_state = None;
        let mut custom = conn("custom");
        custom.entity_pointer = "data/type".into();
        serve(vec![conn("erp"), bare, custom]).await
    }

    impl Server {
        async fn standard(&self, connection: &str, msg_id: &str, ts: i64, body: &str, signature: Option<String>) -> (u16, Value) {
            let sig = signature.unwrap_or_else(|| sign_standard(SECRET, msg_id, ts, body.as_bytes()));
            let r = self
                .client
                .post(format!("{}/webhooks/{connection}", self.base))
                .header("content-type", "application/json")
                .header("webhook-id", msg_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(!text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "secret echoed: {text}");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }

        async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
            let r = self.client.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(!text.contains(CLIENT_STATE), "clientState echoed: {text}");
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    }

    fn nudge(c: &str, e: &str) -> (String, String) {
        (c.to_string(), e.to_string())
    }

    fn bc_entry(client_state: &str, resource: &str, change: &str) -> Value {
        json!({
            "subscriptionId": "webhook-items-1",
            "clientState": client_state,
            "expirationDateTime": "2024-03-01T10:00:00Z",
            "resource": resource,
            "changeType": change,
            "lastModifiedDateTime": "2024-02-27T09:59:58.123Z"
        })
    }

    const CO: &str = "api/v2.0/companies(5d115c9c-44e3-ea11-bb43-000d3a2feca1)";

    // --- signature primitives -------------------------------------------------------------

    #[test]
    fn known_answer() {
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            verify_standard_signature(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, sig, 1614265330),
            Ok(())
        );
        assert_eq!(sign_standard(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), sig);
        // Bare base64 (no whsec_ prefix) is the same key.
        let bare = SECRET.strip_prefix("whsec_").unwrap();
        assert_eq!(
            verify_standard_signature(bare, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, sig, 1614265330),
            Ok(())
        );
        // Any one of several signatures is enough; other versions are ignored.
        let several = format!("v1,AAAA v2,{} v1,notbase64!! {sig}", &sig[3..]);
        assert_eq!(
            verify_standard_signature(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, &several, 1614265330),
            Ok(())
        );
    }

    #[test]
    fn verify_errors() {
        let body = b"{}";
        let good = sign_standard(SECRET, "m1", NOW, body);
        let ts = NOW.to_string();
        assert_eq!(verify_standard_signature(SECRET, "", &ts, body, &good, NOW), Err(VerifyError::MissingHeader("webhook-id")));
        assert_eq!(verify_standard_signature(SECRET, "m1", "", body, &good, NOW), Err(VerifyError::MissingHeader("webhook-timestamp")));
        assert_eq!(verify_standard_signature(SECRET, "m1", &ts, body, " ", NOW), Err(VerifyError::MissingHeader("webhook-signature")));
        assert_eq!(verify_standard_signature(SECRET, "m1", "12.5", body, &good, NOW), Err(VerifyError::BadTimestamp));
        assert_eq!(verify_standard_signature(SECRET, "m1", &ts, body, &good, NOW + 301), Err(VerifyError::Stale));
        assert_eq!(verify_standard_signature(SECRET, "m1", &ts, body, &good, NOW - 301), Err(VerifyError::Stale));
        assert_eq!(verify_standard_signature(SECRET, "m1", &ts, body, &good, NOW + 300), Ok(()));
        assert_eq!(verify_standard_signature("whsec_!!notbase64", "m1", &ts, body, &good, NOW), Err(VerifyError::BadSecret));
        assert_eq!(verify_standard_signature(SECRET, "m2", &ts, body, &good, NOW), Err(VerifyError::NoMatch));
        assert_eq!(verify_standard_signature(SECRET, "m1", &ts, b"{ }", &good, NOW), Err(VerifyError::NoMatch));
        let other = sign_standard("whsec_c2VjcmV0LW90aGVy", "m1", NOW, body);
        assert_eq!(verify_standard_signature(SECRET, "m1", &ts, body, &other, NOW), Err(VerifyError::NoMatch));
        // Error texts never carry the secret or the signature.
        for e in [VerifyError::BadSecret, VerifyError::NoMatch, VerifyError::Stale] {
            let t = e.to_string();
            assert!(!t.contains("MfKQ9r8") && !t.contains(&good[3..]));
        }
    }

    #[test]
    fn resource_parsing() {
        let ents: Vec<String> = vec!["items".into(), "customers".into(), "salesOrderLines".into(), "companies".into()];
        let f = |r: &str| entity_from_resource(&ents, r);
        assert_eq!(f("api/v2.0/companies(5d115c9c-44e3-ea11-bb43-000d3a2feca1)/items(aa-bb)"), Some("items"));
        assert_eq!(f("api/v2.0/companies(5d115c9c)/Items"), Some("items"));
        assert_eq!(f("/api/v2.0/companies(x)/customers?$filter=a/b"), Some("customers"));
        assert_eq!(f("https://api.businesscentral.dynamics.com/v2.0/tenant/prod/api/v2.0/companies(x)/salesorderlines"), Some("salesOrderLines"));
        assert_eq!(f("api/contoso/app/v1.0/companies(x)/items('a/b')"), Some("items"));
        // Scanning from the end: an unknown last segment falls back to a known parent.
        assert_eq!(f("api/v2.0/companies(x)/vendors"), Some("companies"));
        assert_eq!(f("api/v2.0/vendors(x)"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn replay_cache_bounds() {
        let mut c = ReplayCache::default();
        let t = c.insert("a".into(), 0).unwrap();
        assert!(c.insert("a".into(), 10).is_none());
        c.forget("a", t);
        assert!(c.insert("a".into(), 20).is_some());
        // Evicted after the window.
        assert!(c.insert("a".into(), 20 + REPLAY_WINDOW_SECS + 1).is_some());
        for i in 0..(REPLAY_CAPACITY + 50) {
            c.insert(format!("k{i}"), 1000);
        }
        assert!(c.seen.len() <= REPLAY_CAPACITY);
        assert!(c.order.len() <= 2 * REPLAY_CAPACITY);
    }

    #[test]
    fn secrets_compare() {
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abd", "abc"));
        assert!(!secret_eq("", "abc"));
        let dbg = format!("{:?}", conn("x"));
        assert!(!dbg.contains(CLIENT_STATE) && !dbg.contains("MfKQ9r8"));
    }

    // --- Standard Webhooks over HTTP ------------------------------------------------------

    #[tokio::test]
    async fn standard_valid_call_nudges_once() {
        let s = default_server().await;
        let (st, body) = s.standard("erp", "msg_1", NOW, r#"{"entity":"items","id":"42"}"#, None).await;
        assert_eq!(st, 202, "{body}");
        assert_eq!(s.rec.calls(), vec![nudge("erp", "items")]);
        // Case-insensitive entity names; the configured spelling is nudged.
        let (st, _) = s.standard("erp", "msg_2", NOW - 200, r#"{"entity":"SALESORDERS"}"#, None).await;
        assert_eq!(st, 202);
        assert_eq!(s.rec.calls()[1], nudge("erp", "salesOrders"));
        // Custom pointer (configured without its leading slash).
        let (st, _) = s.standard("custom", "msg_3", NOW, r#"{"data":{"type":"customers"}}"#, None).await;
        assert_eq!(st, 202);
        assert_eq!(s.rec.calls()[2], nudge("custom", "customers"));
        assert_eq!(s.rec.calls().len(), 3);
    }

    #[tokio::test]
    async fn standard_forged_signature_is_401() {
        let s = default_server().await;
        let body = r#"{"entity":"items"}"#;
        let forged = sign_standard("whsec_Zm9yZ2VkLXNlY3JldA==", "msg_1", NOW, body.as_bytes());
        let (st, b) = s.standard("erp", "msg_1", NOW, body, Some(forged.clone())).await;
        assert_eq!(st, 401);
        assert_eq!(b["code"], "bad_signature");
        assert!(!b.to_string().contains(&forged[3..]));
        // Signature over a different body.
        let other = sign_standard(SECRET, "msg_1", NOW, br#"{"entity":"customers"}"#);
        let (st, _) = s.standard("erp", "msg_1", NOW, body, Some(other)).await;
        assert_eq!(st, 401);
        // Missing headers.
        let r = s.client.post(format!("{}/webhooks/erp", s.base)).body(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["code"], "missing_header");
        // A connection without a signing secret refuses the dialect.
        let (st, b) = s.standard("bare", "msg_1", NOW, body, None).await;
        assert_eq!(st, 401);
        assert_eq!(b["code"], "webhooks_not_configured");
        assert!(s.rec.calls().is_empty());
        // The forged attempts did not poison the id: the genuine call still goes through.
        let (st, _) = s.standard("erp", "msg_1", NOW, body, None).await;
        assert_eq!(st, 202);
        assert_eq!(s.rec.calls().len(), 1);
    }

    #[tokio::test]
    async fn standard_stale_timestamp_is_401() {
        let s = default_server().await;
        let body = r#"{"entity":"items"}"#;
        let (st, b) = s.standard("erp", "msg_old", NOW - 360, body, None).await;
        assert_eq!(st, 401);
        assert_eq!(b["code"], "stale_timestamp");
        let (st, b) = s.standard("erp", "msg_future", NOW + 360, body, None).await;
        assert_eq!(st, 401);
        assert_eq!(b["code"], "stale_timestamp");
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn standard_replay_is_acknowledged_not_nudged() {
        let s = default_server().await;
        let body = r#"{"entity":"items"}"#;
        for _ in 0..3 {
            let (st, _) = s.standard("erp", "msg_same", NOW, body, None).await;
            assert_eq!(st, 202);
        }
        assert_eq!(s.rec.calls(), vec![nudge("erp", "items")]);
        // The same id on another connection is another message.
        let s2 = serve(vec![conn("erp"), conn("erp2")]).await;
        assert_eq!(s2.standard("erp", "msg_same", NOW, body, None).await.0, 202);
        assert_eq!(s2.standard("erp2", "msg_same", NOW, body, None).await.0, 202);
        assert_eq!(s2.rec.calls().len(), 2);
    }

    #[tokio::test]
    async fn standard_unknown_connection_or_entity_is_404() {
        let s = default_server().await;
        let (st, b) = s.standard("nope", "msg_1", NOW, r#"{"entity":"items"}"#, None).await;
        assert_eq!(st, 404);
        assert_eq!(b["code"], "unknown_connection");
        let (st, b) = s.standard("erp", "msg_2", NOW, r#"{"entity":"vendors"}"#, None).await;
        assert_eq!(st, 404);
        assert_eq!(b["code"], "unknown_entity");
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn standard_bad_bodies() {
        let s = default_server().await;
        let (st, b) = s.standard("erp", "msg_1", NOW, "entity=items", None).await;
        assert_eq!(st, 400);
        assert_eq!(b["code"], "invalid_json");
        let (st, b) = s.standard("erp", "msg_2", NOW, r#"{"other":"items"}"#, None).await;
        assert_eq!(st, 400);
        assert_eq!(b["code"], "no_entity");
        let (st, _) = s.standard("erp", "msg_3", NOW, r#"{"entity":7}"#, None).await;
        assert_eq!(st, 400);
        // Over 1 MiB.
        let big = format!(r#"{{"entity":"items","pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        let (st, b) = s.standard("erp", "msg_4", NOW, &big, None).await;
        assert_eq!(st, 413);
        assert_eq!(b["code"], "body_too_large");
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn chunked_body_over_limit_is_413() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let s = default_server().await;
        let addr = s.base.trim_start_matches("http://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("POST /webhooks/erp HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..20 {
            let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
            frame.extend_from_slice(&chunk);
            frame.extend_from_slice(b"\r\n");
            if tcp.write_all(&frame).await.is_err() {
                break; // the server may stop reading once over the limit
            }
        }
        let _ = tcp.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn standard_engine_not_taking_nudges_is_503_and_retry_works() {
        let s = default_server().await;
        s.rec.refuse.store(true, Ordering::SeqCst);
        let body = r#"{"entity":"items"}"#;
        let (st, b) = s.standard("erp", "msg_1", NOW, body, None).await;
        assert_eq!(st, 503);
        assert_eq!(b["code"], "not_accepting");
        s.rec.refuse.store(false, Ordering::SeqCst);
        let (st, _) = s.standard("erp", "msg_1", NOW, body, None).await;
        assert_eq!(st, 202);
        assert_eq!(s.rec.calls(), vec![nudge("erp", "items")]);
    }

    // --- Business Central dialect ---------------------------------------------------------

    #[tokio::test]
    async fn bc_validation_token_is_echoed() {
        let s = default_server().await;
        let token = "Bc-Validation 9f2a/+=&x";
        let r = s
            .client
            .post(format!("{}/webhooks/erp", s.base))
            .query(&[("validationToken", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(r.text().await.unwrap(), token);
        // Without a clientState configured, or for an unknown connection: 404.
        for c in ["bare", "nope"] {
            let r = s
                .client
                .post(format!("{}/webhooks/{c}?validationToken=abc", s.base))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 404);
            assert_ne!(r.text().await.unwrap(), "abc");
        }
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn bc_notification_nudges_each_entity_once() {
        let s = default_server().await;
        let body = json!({ "value": [
            bc_entry(CLIENT_STATE, &format!("{CO}/items(0a1b2c3d-0000-4000-8000-000000000001)"), "updated"),
            bc_entry(CLIENT_STATE, &format!("{CO}/items(0a1b2c3d-0000-4000-8000-000000000002)"), "created"),
            bc_entry(CLIENT_STATE, &format!("{CO}/customers"), "collection"),
            bc_entry(CLIENT_STATE, &format!("{CO}/items(0a1b2c3d-0000-4000-8000-000000000003)"), "deleted"),
        ]});
        let (st, b) = s.post_json("/webhooks/erp", &body).await;
        assert_eq!(st, 202, "{b}");
        assert_eq!(s.rec.calls(), vec![nudge("erp", "items"), nudge("erp", "customers")]);
    }

    #[tokio::test]
    async fn bc_collection_only() {
        let s = default_server().await;
        let body = json!({ "value": [ bc_entry(CLIENT_STATE, &format!("{CO}/salesOrders"), "collection") ]});
        let (st, _) = s.post_json("/webhooks/erp", &body).await;
        assert_eq!(st, 202);
        assert_eq!(s.rec.calls(), vec![nudge("erp", "salesOrders")]);
    }

    #[tokio::test]
    async fn bc_wrong_client_state_is_401() {
        let s = default_server().await;
        let body = json!({ "value": [
            bc_entry(CLIENT_STATE, &format!("{CO}/items(1)"), "updated"),
            bc_entry("guessed-state", &format!("{CO}/customers(2)"), "updated"),
        ]});
        let (st, b) = s.post_json("/webhooks/erp", &body).await;
        assert_eq!(st, 401);
        assert_eq!(b["code"], "bad_client_state");
        // Missing clientState.
        let body = json!({ "value": [ { "resource": format!("{CO}/items(1)"), "changeType": "updated" } ]});
        assert_eq!(s.post_json("/webhooks/erp", &body).await.0, 401);
        // A connection without a clientState configured.
        let body = json!({ "value": [ bc_entry(CLIENT_STATE, &format!("{CO}/items(1)"), "updated") ]});
        assert_eq!(s.post_json("/webhooks/bare", &body).await.0, 401);
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn bc_unknown_entity_is_202_without_nudge() {
        let s = default_server().await;
        let body = json!({ "value": [ bc_entry(CLIENT_STATE, "api/v2.0/vendors(4a2b)", "updated") ]});
        let (st, b) = s.post_json("/webhooks/erp", &body).await;
        assert_eq!(st, 202);
        assert_eq!(b["ignored"], 1);
        assert!(s.rec.calls().is_empty());
        // Unknown connection is still 404.
        assert_eq!(s.post_json("/webhooks/nope", &body).await.0, 404);
    }

    #[tokio::test]
    async fn bc_engine_not_taking_nudges_is_503() {
        let s = default_server().await;
        s.rec.refuse.store(true, Ordering::SeqCst);
        let body = json!({ "value": [ bc_entry(CLIENT_STATE, &format!("{CO}/items(1)"), "updated") ]});
        let (st, _) = s.post_json("/webhooks/erp", &body).await;
        assert_eq!(st, 503);
    }
}
