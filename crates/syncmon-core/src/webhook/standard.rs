//! Standard Webhooks (<https://www.standardwebhooks.com/>): the signature verifier (public, so
//! the fuzz target and the demo can call it) and the handler for verified calls.

use super::{accepted, find_entity, header_str, refuse, shown, Shared, WebhookConnection};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// How far `webhook-timestamp` may be from our clock, either way (Standard Webhooks).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 5 * 60;

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
            VerifyError::Stale => write!(f, "webhook-timestamp is more than {} minutes away from the receiver's clock", TIMESTAMP_TOLERANCE_SECS / 60),
            VerifyError::BadSecret => {
                write!(f, "the signing secret configured for this connection is not valid base64 (expected \"whsec_...\" or bare base64)")
            }
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
pub fn verify_standard_signature(secret: &str, msg_id: &str, timestamp: &str, body: &[u8], signature_header: &str, now_unix: i64) -> Result<(), VerifyError> {
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

/// Answers a call that is not a Business Central notification: verify, find the entity, nudge.
pub(super) fn handle(st: &Shared, conn: &WebhookConnection, headers: &HeaderMap, body: &[u8], parsed: Option<&Value>) -> Response {
    let Some(secret) = conn.signing_secret.as_deref() else {
        return refuse(StatusCode::UNAUTHORIZED, "webhooks_not_configured", "this connection has no webhook signing secret configured", &conn.id);
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
        return refuse(StatusCode::NOT_FOUND, "unknown_entity", format!("the connection has no entity named \"{}\"", shown(name)), &conn.id);
    };

    let key = format!("{}\u{0}{}", conn.id, msg_id);
    let ticket = st.replay.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone(), st.clock.now_unix());
    let Some(ticket) = ticket else {
        tracing::info!(connection = %conn.id, entity, webhook_id = %shown(msg_id), "repeated webhook-id acknowledged, not nudged again");
        return accepted(json!({ "status": "duplicate", "nudged": [] }));
    };
    if !st.target.nudge(&conn.id, entity) {
        st.replay.lock().unwrap_or_else(|p| p.into_inner()).forget(&key, ticket);
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "not_accepting", "the engine is not taking nudges right now (shutting down); retry later", &conn.id);
    }
    tracing::debug!(connection = %conn.id, entity, "webhook nudge (Standard Webhooks)");
    accepted(json!({ "status": "accepted", "nudged": [entity] }))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::MAX_BODY_BYTES;
    use super::*;
    use serde_json::Value;
    use std::sync::atomic::Ordering;

    // --- signature primitives -------------------------------------------------------------

    #[test]
    fn known_answer() {
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(verify_standard_signature(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, sig, 1614265330), Ok(()));
        assert_eq!(sign_standard(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), sig);
        // Bare base64 (no whsec_ prefix) is the same key.
        let bare = SECRET.strip_prefix("whsec_").unwrap();
        assert_eq!(verify_standard_signature(bare, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, sig, 1614265330), Ok(()));
        // Any one of several signatures is enough; other versions are ignored.
        let several = format!("v1,AAAA v2,{} v1,notbase64!! {sig}", &sig[3..]);
        assert_eq!(verify_standard_signature(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, &several, 1614265330), Ok(()));
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
        s.assert_refused("bare", "msg_1", NOW, body, 401, "webhooks_not_configured").await;
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
        s.assert_refused("erp", "msg_old", NOW - 360, body, 401, "stale_timestamp").await;
        s.assert_refused("erp", "msg_future", NOW + 360, body, 401, "stale_timestamp").await;
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
        s.assert_refused("nope", "msg_1", NOW, r#"{"entity":"items"}"#, 404, "unknown_connection").await;
        s.assert_refused("erp", "msg_2", NOW, r#"{"entity":"vendors"}"#, 404, "unknown_entity").await;
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn standard_bad_bodies() {
        let s = default_server().await;
        s.assert_refused("erp", "msg_1", NOW, "entity=items", 400, "invalid_json").await;
        s.assert_refused("erp", "msg_2", NOW, r#"{"other":"items"}"#, 400, "no_entity").await;
        let (st, _) = s.standard("erp", "msg_3", NOW, r#"{"entity":7}"#, None).await;
        assert_eq!(st, 400);
        // Over 1 MiB.
        let big = format!(r#"{{"entity":"items","pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        s.assert_refused("erp", "msg_4", NOW, &big, 413, "body_too_large").await;
        assert!(s.rec.calls().is_empty());
    }

    #[tokio::test]
    async fn standard_engine_not_taking_nudges_is_503_and_retry_works() {
        let s = default_server().await;
        s.rec.refuse.store(true, Ordering::SeqCst);
        let body = r#"{"entity":"items"}"#;
        s.assert_refused("erp", "msg_1", NOW, body, 503, "not_accepting").await;
        s.rec.refuse.store(false, Ordering::SeqCst);
        let (st, _) = s.standard("erp", "msg_1", NOW, body, None).await;
        assert_eq!(st, 202);
        assert_eq!(s.rec.calls(), vec![nudge("erp", "items")]);
    }
}
