//! The control API under `/_mock` (no auth, no faults, not logged): faults, data changes, the
//! datasets, the feeds' clock and the request log.

use super::{param, parse_query, Reply, Shared};
use crate::feeds::{self, FeedOp};
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
    let known = |entity: &str| sh.is_feed(entity) || sh.store.lock().unwrap().entity_index(entity).is_some();
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
        ("POST", [op @ ("mutate" | "insert" | "delete"), entity]) if sh.is_feed(entity) => {
            let op = match *op {
                "mutate" => FeedOp::Mutate(n()),
                "insert" => FeedOp::Insert(n()),
                _ => FeedOp::Delete(n()),
            };
            Reply::json(200, serde_json::to_string(&sh.feed_op(entity, op).unwrap_or_default()).unwrap_or_default())
        }
        ("POST", ["mutate-served", entity]) if sh.is_feed(entity) => {
            let ids: Vec<u128> = q.iter().filter(|(k, _)| k == "id").filter_map(|(_, v)| uuid::Uuid::parse_str(v).ok()).map(|u| u.as_u128()).collect();
            let op = if ids.is_empty() { FeedOp::MutateAtServed(n()) } else { FeedOp::EditAtServed(ids) };
            Reply::json(200, serde_json::to_string(&sh.feed_op(entity, op).unwrap_or_default()).unwrap_or_default())
        }
        ("POST", ["delete-all", entity]) if sh.is_feed(entity) => {
            sh.feed_op(entity, FeedOp::DeleteAll);
            Reply::empty(204)
        }
        ("GET", ["feeds"]) => Reply::json(200, feeds_json(sh).to_string()),
        ("GET", ["clock"]) => Reply::json(200, clock_json(sh).to_string()),
        ("POST", ["clock"]) => {
            let body = match axum::body::to_bytes(req.into_body(), 64 * 1024).await {
                Ok(b) => b,
                Err(_) => return Reply::error(400, "invalid_body", "The body could not be read."),
            };
            match set_clock(sh, &body) {
                Ok(()) => Reply::json(200, clock_json(sh).to_string()),
                Err(e) => Reply::error(400, "invalid_body", &e),
            }
        }
        ("POST", [op @ ("mutate" | "insert" | "insert-poisoned" | "delete"), entity]) if known(entity) && !sh.is_feed(entity) => {
            let n = n();
            let ids = match *op {
                "mutate" => sh.change(entity, |s, e| s.mutate(e, n)),
                "insert" => sh.change(entity, |s, e| s.insert(e, n)),
                "insert-poisoned" => sh.change(entity, |s, e| s.insert_poisoned(e, n)),
                _ => sh.change(entity, |s, e| s.delete(e, n)),
            };
            Reply::json(200, serde_json::to_string(&ids).unwrap_or_default())
        }
        ("POST", ["delete-all", entity]) if known(entity) && !sh.is_feed(entity) => {
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

/// `[{"name", "kind": "timestamp"|"snapshot", "records", "field", "format", "sinceParam",
/// "resolutionMs", "newestServed"}]` (the last five for timestamp feeds only).
fn feeds_json(sh: &Shared) -> serde_json::Value {
    let f = sh.feeds.lock().unwrap();
    let list = f
        .feeds
        .iter()
        .map(|feed| {
            let mut v = serde_json::json!({ "name": feed.spec.name, "records": feed.live_count() });
            match feed.timestamp() {
                None => v["kind"] = "snapshot".into(),
                Some(t) => {
                    v["kind"] = "timestamp".into();
                    v["field"] = t.field.clone().into();
                    v["format"] = t.format.name().into();
                    v["sinceParam"] = t.since_param.clone().into();
                    v["resolutionMs"] = t.resolution_ms.into();
                    v["newestServed"] = feed.newest_served.map(|ms| feeds::format_time(t, ms)).unwrap_or_default();
                }
            }
            v
        })
        .collect();
    serde_json::Value::Array(list)
}

/// `{"unix_ms": N, "rfc3339": "...", "fixed": bool}`.
fn clock_json(sh: &Shared) -> serde_json::Value {
    let clock = sh.feeds.lock().unwrap().clock;
    let ms = clock.now_ms();
    serde_json::json!({
        "unix_ms": ms,
        "rfc3339": crate::gen::datetime_string(ms.div_euclid(1000), Some(ms.rem_euclid(1000) as u32)),
        "fixed": clock.is_fixed(),
    })
}

/// A body of one of `{"unix_ms": N}`, `{"unix": N}`, `{"rfc3339": "..."}`, `{"advance_ms": N}`,
/// `{"advance_secs": N}`: the clock stops at that time.
fn set_clock(sh: &Shared, body: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let int = |k: &str| v.get(k).and_then(|x| x.as_i64());
    let mut f = sh.feeds.lock().unwrap();
    let now = f.clock.now_ms();
    let ms = if let Some(ms) = int("unix_ms") {
        ms
    } else if let Some(s) = int("unix") {
        s.checked_mul(1000).ok_or("unix is out of range")?
    } else if let Some(text) = v.get("rfc3339").and_then(|x| x.as_str()) {
        feeds::parse_time(feeds::TimeFormat::Rfc3339, text)
            .filter(|_| !text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(format!("{text:?} is not an RFC 3339 time"))?
    } else if let Some(d) = int("advance_ms") {
        now + d
    } else if let Some(d) = int("advance_secs") {
        now + d.checked_mul(1000).ok_or("advance_secs is out of range")?
    } else {
        return Err("expected one of unix_ms, unix, rfc3339, advance_ms, advance_secs".into());
    };
    f.set_clock(ms);
    Ok(())
}
