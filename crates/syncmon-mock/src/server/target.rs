//! The simulated target: PUT, DELETE and GET of single records, and what it stored served as a
//! rowVersion feed (`GET /target/{entity}?lastRowVersion=…&pageKey=…`), with the same faults and
//! auth as the source.

use super::faults::{answered_by_fault, ConnCtl};
use super::{decode_token, encode_token, param, parse_query, percent_encode, Reply, Shared, TARGET_PREFIX};
use crate::{FaultKind, MockRecord};
use axum::extract::Request;
use axum::http::Method;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Shared {
    pub fn target_dataset(&self, entity: &str) -> Vec<MockRecord> {
        let records = self.target.lock().unwrap().dataset(entity);
        records
            .into_iter()
            .map(|(id, body)| MockRecord { id, row_version: body.get("rowVersion").and_then(|v| v.as_str()).unwrap_or("").to_string(), data: body })
            .collect()
    }
}

/// A call to the simulated target: a single record (`id`), or the feed. None = the connection
/// was reset.
#[allow(clippy::too_many_arguments)]
pub(super) async fn target(
    sh: &Arc<Shared>,
    conn: &ConnCtl,
    entity: &str,
    id: Option<&str>,
    path: &str,
    query: &str,
    tracking: &str,
    req: Request,
) -> Option<Reply> {
    let method = req.method().clone();
    let seq = sh.log_start(&req, path, query, tracking);
    let _in_flight = InFlight::enter(sh);
    let delay = sh.target_delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // `target:{entity}:patch` aims at the marks (PATCH) alone, so a test can fail them and not the feed.
    let patch_fault = if method == Method::PATCH { sh.take_fault(&format!("{TARGET_PREFIX}{entity}:patch"), false) } else { None };
    let fault = patch_fault.or_else(|| sh.take_fault(&format!("{TARGET_PREFIX}{entity}"), false));
    let reply = match answered_by_fault(conn, fault.as_ref())? {
        Some(r) => r,
        None => {
            let r = match sh.check_auth(req.headers()) {
                Some(denied) => denied,
                None => match id {
                    Some(id) => target_call(sh, &method, entity, id, req).await,
                    None if method == Method::GET => feed(sh, entity, query, req.headers().get("host").and_then(|h| h.to_str().ok())),
                    None => Reply::error(405, "method_not_allowed", "The target's feed takes GET; records are written at /target/{entity}/{id}."),
                },
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
            let existed = sh.target.lock().unwrap().put(entity, id, value.clone());
            Reply::json(if existed { 200 } else { 201 }, value.to_string())
        }
        Method::PATCH => {
            let body = match axum::body::to_bytes(req.into_body(), 1024 * 1024).await {
                Ok(b) => b,
                Err(_) => return Reply::error(400, "invalid_body", "The body could not be read."),
            };
            let patch = match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => return Reply::error(400, "invalid_body", "The body must be a JSON object of the fields to set."),
            };
            match sh.target.lock().unwrap().patch(entity, id, &patch) {
                Some(v) => Reply::json(200, v.to_string()),
                None => Reply::error(404, "resource_not_found", &format!("No {entity} record with id {id} at the target.")),
            }
        }
        Method::DELETE => match sh.target.lock().unwrap().delete(entity, id) {
            true => Reply::empty(204),
            false => Reply::error(404, "resource_not_found", &format!("No {entity} record with id {id} at the target.")),
        },
        Method::GET => match sh.target.lock().unwrap().get(entity, id) {
            Some(v) => Reply::json(200, v.to_string()),
            None => Reply::error(404, "resource_not_found", &format!("No {entity} record with id {id} at the target.")),
        },
        _ => Reply::error(405, "method_not_allowed", "The target takes PUT, PATCH, DELETE and GET."),
    }
}

/// What the target stored, as the reference rowVersion feed: `lastRowVersion` (or the opaque
/// `pageKey` of the previous page), `pageSize`; `{morePages, nextPageKey, nextPageURL, data}`.
fn feed(sh: &Shared, entity: &str, query: &str, host: Option<&str>) -> Reply {
    let q = parse_query(query);
    let size = match param(&q, "pageSize").filter(|s| !s.is_empty()) {
        None => sh.cfg.default_page_size,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Reply::error(400, "invalid_parameter", &format!("The page size must be a positive integer, got {s:?}.")),
        },
    }
    .clamp(1, sh.cfg.max_page_size.max(1));
    let after = match param(&q, "pageKey").filter(|k| !k.is_empty()) {
        Some(key) => match decode_token(key, "t1").as_deref() {
            Some([ent, after]) if ent == entity => after.parse::<u64>().ok(),
            _ => return Reply::error(400, "invalid_parameter", "The pageKey is not valid for this resource."),
        },
        None => match param(&q, "lastRowVersion").filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => return Reply::error(400, "invalid_parameter", &format!("lastRowVersion must be a string of decimal digits, got {v:?}")),
            },
        },
    };
    // Any other parameter filters on a top-level field (`synced=false`).
    let filters: Vec<(String, String)> = q.iter().filter(|(k, _)| !matches!(k.as_str(), "sync" | "lastRowVersion" | "pageKey" | "pageSize")).cloned().collect();
    let (rows, more) = sh.target.lock().unwrap().feed_page(entity, after, size, &filters);
    sh.records_served.fetch_add(rows.len(), Ordering::Relaxed);
    let next_key = match (more, rows.last()) {
        (true, Some((v, _))) => encode_token("t1", &[entity, &v.to_string()]),
        _ => String::new(),
    };
    let base = host.map(|h| format!("http://{h}")).unwrap_or_else(|| sh.base_url.clone());
    let kept: String = filters.iter().map(|(k, v)| format!("&{}={}", percent_encode(k), percent_encode(v))).collect();
    let next_url = if next_key.is_empty() { String::new() } else { format!("{base}/target/{}?pageKey={next_key}{kept}", percent_encode(entity)) };
    let data: Vec<serde_json::Value> = rows.into_iter().map(|(_, body)| body).collect();
    Reply::json(200, serde_json::json!({ "morePages": more, "nextPageKey": next_key, "nextPageURL": next_url, "data": data }).to_string())
}

/// Counts a target call while it is being answered (and keeps the peak), also when the
/// connection goes away mid-answer.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(sh: &'a Shared) -> InFlight<'a> {
        let now = sh.target_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sh.target_peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(sh)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.target_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
