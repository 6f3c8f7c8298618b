//! The control API under `/_mock` (no auth, no faults, not logged): faults, data changes, the
//! datasets and the request log.

use super::{param, parse_query, Reply, Shared};
use crate::{Fault, MockRecord};
use axum::extract::Request;
use axum::http::Method;

// ---------------------------------------------------------------------------------------------
// Control API (no auth, no faults, not logged)

fn records_json(records: &[MockRecord]) -> String {
    let v: Vec<serde_json::Value> = records.iter().map(|r| serde_json::json!({ "id": r.id, "rowVersion": r.row_version, "data": r.data })).collect();
    serde_json::Value::Array(v).to_string()
}

pub(super) async fn control(sh: &Shared, method: Method, rest: &[&str], query: &str, req: Request) -> Reply {
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
