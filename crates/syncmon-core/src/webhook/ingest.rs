//! `POST /ingest/{connection}/{entity}`: records pushed to Syncmon, signed like a Standard
//! Webhook with the connection's webhook secret. The body is one record or an array of them.
//! The answer is 202 `{"id": "<correlation id>"}` once the batch is stored (the receiver writes
//! nothing else: the agent's ingest worker applies the batch later, see `crate::ingest`).
//!
//! Refusals: unknown connection or entity 404, a body over the limit 413 (the rest of it is not
//! read), a bad or missing signature 401, a body that is not a JSON object or array 400. A
//! repeated `webhook-id` of the same connection is the same batch: 202 with its first id.

use super::{find_entity, header_str, refuse, shown, standard, Shared};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// Where verified batches go (the agent: the store, then the ingest worker's wake-up).
pub trait IngestTarget: Send + Sync + 'static {
    /// Stores the batch durably (blocking); returns its correlation id and whether this
    /// `webhook_id` was stored before (the same call repeated). Err: nothing was stored.
    fn store(&self, connection: &str, entity: &str, webhook_id: &str, body: &str) -> Result<(String, bool), String>;
}

/// The ingest endpoint's part of the receiver.
#[derive(Clone)]
pub struct IngestOptions {
    pub target: Arc<dyn IngestTarget>,
    /// Largest body accepted, in bytes (`[webhooks] ingest_max_bytes`).
    pub max_body_bytes: usize,
}

pub(super) async fn receive(
    State(st): State<Arc<Shared>>,
    Path((connection_id, entity_name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(ingest) = st.ingest.clone() else {
        return refuse(StatusCode::NOT_FOUND, "ingest_not_configured", "this receiver takes no pushed records", &connection_id);
    };
    let Some(conn) = st.connections.get(&connection_id) else {
        return refuse(StatusCode::NOT_FOUND, "unknown_connection", "no connection with this id", &connection_id);
    };
    let limit = ingest.max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than {limit} bytes ([webhooks] ingest_max_bytes); send the records in smaller batches"),
            &conn.id,
        )
    };
    // Refused on the declared length before reading, and never read past the limit.
    if header_str(&headers, header::CONTENT_LENGTH.as_str()).parse::<u64>().ok().is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    let webhook_id = match standard::verify_call(&st, conn, &headers, &bytes) {
        Ok(id) => id.to_string(),
        Err(refusal) => return *refusal,
    };
    let Some(entity) = find_entity(&conn.entities, &entity_name).map(str::to_string) else {
        return refuse(StatusCode::NOT_FOUND, "unknown_entity", format!("the connection has no entity named \"{}\"", shown(&entity_name)), &conn.id);
    };
    let text = match json_records_text(&bytes) {
        Ok(t) => t,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, "invalid_json", message, &conn.id),
    };
    let (target, connection) = (ingest.target.clone(), conn.id.clone());
    let stored = {
        let (connection, entity) = (connection.clone(), entity.clone());
        tokio::task::spawn_blocking(move || target.store(&connection, &entity, &webhook_id, &text)).await
    };
    match stored {
        Ok(Ok((id, repeated))) => {
            tracing::debug!(%connection, %entity, batch = %id, repeated, "pushed batch stored");
            let body = if repeated { json!({ "id": id, "duplicate": true }) } else { json!({ "id": id }) };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(Err(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, "not_stored", format!("the batch could not be stored ({e}); retry later"), &connection),
        Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "not_stored", "the batch could not be stored; retry later", &connection),
    }
}

/// The body as text when it is a JSON object (one record) or array (records); else why not.
fn json_records_text(bytes: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the body is not UTF-8 text (invalid byte at offset {})", e.valid_up_to()))?;
    // serde_json's messages give a line and column, never the text itself.
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| format!("the body is not JSON: {e}"))?;
    match text.trim_start().as_bytes().first() {
        Some(b'{') | Some(b'[') => Ok(text.to_string()),
        _ => Err("the body must be one record (a JSON object) or an array of records".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::json_records_text;

    #[test]
    fn only_objects_and_arrays_are_records() {
        assert!(json_records_text(br#"{"id":"1"}"#).is_ok());
        assert!(json_records_text(b" [] ").is_ok());
        assert!(json_records_text(b"42").unwrap_err().contains("one record"));
        assert!(json_records_text(b"{\"id\": ").unwrap_err().starts_with("the body is not JSON: "));
        assert!(json_records_text(b"\xff").unwrap_err().contains("UTF-8"));
    }
}
