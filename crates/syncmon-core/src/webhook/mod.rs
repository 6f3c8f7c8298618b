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
//!   so the answers here are chosen with that in mind (see `business_central.rs`).
//!
//! Secrets and signatures are never logged nor returned in answers.
//!
//! Layout: this module holds the router, the connection types and the answers both dialects
//! share; `standard` verifies and handles Standard Webhooks, `business_central` the Business
//! Central dialect, and `replay` remembers the `webhook-id`s already acted on. `ingest` takes
//! pushed records (`POST /ingest/{connection}/{entity}`), signed like a Standard Webhook: unlike a
//! nudge, it stores what it receives (a batch the agent applies later).

mod business_central;
mod ingest;
mod replay;
mod standard;
#[cfg(test)]
mod test_support;

pub use business_central::verify_bc_client_state;
pub use ingest::{IngestOptions, IngestTarget};
pub use standard::{sign_standard, verify_standard_signature, VerifyError, TIMESTAMP_TOLERANCE_SECS};

use crate::clock::Clock;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use replay::ReplayCache;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Largest request body accepted; bigger bodies get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
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

struct Shared {
    connections: HashMap<String, WebhookConnection>,
    target: Arc<dyn NudgeTarget>,
    /// The engine's clock: timestamp tolerance and the replay window.
    clock: Arc<dyn Clock>,
    replay: Mutex<ReplayCache>,
    /// Pushed records (`POST /ingest/...`); None: that route answers 404.
    ingest: Option<IngestOptions>,
}

/// The webhook receiver: `POST /webhooks/{connection_id}`, and `POST /ingest/{connection_id}/{entity}`
/// for pushed records (`webhook/ingest.rs`).
pub fn router(connections: Vec<WebhookConnection>, target: Arc<dyn NudgeTarget>, ingest: Option<IngestOptions>, clock: Arc<dyn Clock>) -> Router {
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
    let shared = Arc::new(Shared { connections: map, target, clock, replay: Mutex::new(ReplayCache::default()), ingest });
    Router::new().route("/webhooks/{connection_id}", post(receive)).route("/ingest/{connection_id}/{entity}", post(ingest::receive)).with_state(shared)
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

    // Business Central subscription handshake.
    if let Some(token) = query.as_ref().ok().and_then(|q| q.0.get("validationToken")) {
        return business_central::handle_validation(conn, token);
    }

    let too_large = || refuse(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is larger than {MAX_BODY_BYTES} bytes"), &conn.id);
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
        business_central::handle_notification(&st, conn, parsed.as_ref().and_then(|v| v.get("value")).and_then(Value::as_array).unwrap())
    } else {
        standard::handle(&st, conn, &headers, &bytes, parsed.as_ref())
    }
}

/// The configured entity whose name equals `name`, ignoring case.
fn find_entity<'a>(entities: &'a [String], name: &str) -> Option<&'a str> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    entities.iter().find(|e| e.eq_ignore_ascii_case(name) || e.to_lowercase() == name.to_lowercase()).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

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
}
