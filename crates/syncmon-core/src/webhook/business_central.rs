//! The Business Central dialect: the subscription handshake (`?validationToken=`) and change
//! notifications authenticated by the subscription's `clientState`.

use super::{accepted, find_entity, refuse, shown, Shared, WebhookConnection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The subscription handshake on creation and renewal: echo the token, as plain text, with 200.
pub(super) fn handle_validation(conn: &WebhookConnection, token: &str) -> Response {
    if conn.client_state.is_none() {
        return refuse(
            StatusCode::NOT_FOUND,
            "subscriptions_not_configured",
            "this connection has no clientState configured, so it takes no Business Central subscriptions",
            &conn.id,
        );
    }
    tracing::info!(connection = %conn.id, "answered a Business Central subscription validation");
    let mut resp = (StatusCode::OK, token.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

/// Constant-time equality of two secrets (compares SHA-256 digests, so lengths do not leak either).
fn secret_eq(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
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
pub(super) fn handle_notification(st: &Shared, conn: &WebhookConnection, entries: &[Value]) -> Response {
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
        return refuse(StatusCode::UNAUTHORIZED, "bad_client_state", format!("notification entry {i} does not carry this connection's clientState"), &conn.id);
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
    use super::super::test_support::*;
    use super::*;
    use std::sync::atomic::Ordering;

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
    fn secrets_compare() {
        assert!(secret_eq("abc", "abc"));
        assert!(!secret_eq("abd", "abc"));
        assert!(!secret_eq("", "abc"));
        let dbg = format!("{:?}", conn("x"));
        assert!(!dbg.contains(CLIENT_STATE) && !dbg.contains("MfKQ9r8"));
    }

    // --- Business Central dialect over HTTP -----------------------------------------------

    #[tokio::test]
    async fn bc_validation_token_is_echoed() {
        let s = default_server().await;
        let token = "Bc-Validation 9f2a/+=&x";
        let r = s.client.post(format!("{}/webhooks/erp", s.base)).query(&[("validationToken", token)]).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        assert_eq!(r.text().await.unwrap(), token);
        // Without a clientState configured, or for an unknown connection: 404.
        for c in ["bare", "nope"] {
            let r = s.client.post(format!("{}/webhooks/{c}?validationToken=abc", s.base)).send().await.unwrap();
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
