//! The simulated target: PUT, DELETE and GET of single records, with the same faults and auth as
//! the source.

use super::faults::{answered_by_fault, ConnCtl};
use super::{Reply, Shared, TARGET_PREFIX};
use crate::{FaultKind, MockRecord};
use axum::extract::Request;
use axum::http::Method;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl Shared {
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
}

/// A call to the simulated target. None = the connection was reset.
#[allow(clippy::too_many_arguments)]
pub(super) async fn target(sh: &Arc<Shared>, conn: &ConnCtl, entity: &str, id: &str, path: &str, query: &str, tracking: &str, req: Request) -> Option<Reply> {
    let method = req.method().clone();
    let seq = sh.log_start(&req, path, query, tracking);
    let _in_flight = InFlight::enter(sh);
    let delay = sh.target_delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fault = sh.take_fault(&format!("{TARGET_PREFIX}{entity}"), false);
    let reply = match answered_by_fault(conn, fault.as_ref())? {
        Some(r) => r,
        None => {
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
