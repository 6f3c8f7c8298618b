//! The source routes: the reference rowVersion feed, the alternative page shapes (token, link,
//! short) and single-record reads; the data-call wrapper (log, faults, auth) the feeds share.

use super::faults::{answered_by_fault, render_records, ConnCtl};
use super::{decode_token, encode_token, param, parse_query, percent_encode, Reply, Route, Shared};
use crate::store::{self, Damage, Row, Shape, Style};
use crate::FaultKind;
use axum::extract::Request;
use axum::http::Method;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// A data call. None = the connection was reset.
pub(super) async fn data(sh: &Arc<Shared>, conn: &ConnCtl, segs: &[&str], path: &str, query: &str, tracking: &str, req: Request) -> Option<Reply> {
    let feed = matches!(segs, [name] | [name, _] if sh.is_feed(name));
    let route = match segs {
        _ if feed => None,
        ["alt", shape, entity] => Some(Route::Alt { shape, entity, id: None }),
        ["alt", shape, entity, id] => Some(Route::Alt { shape, entity, id: Some(id) }),
        [entity] => Some(Route::Main { entity, id: None }),
        [entity, id] => Some(Route::Main { entity, id: Some(id) }),
        _ => None,
    };
    let entity = match &route {
        Some(Route::Main { entity, .. }) | Some(Route::Alt { entity, .. }) => entity.to_string(),
        None if feed => segs[0].to_string(),
        None => String::new(),
    };
    let seq = sh.log_start(&req, path, query, tracking);

    let fault = sh.take_fault(&entity, false);
    let reply = match answered_by_fault(conn, fault.as_ref())? {
        Some(r) => r,
        None if matches!(fault, Some(FaultKind::InvalidJson)) => {
            Reply::json(200, "{\"morePages\":true,\"nextPageKey\":\"\",\"data\":[{\"id\":\"<html><body>Internal error</body></html>".into())
        }
        None => {
            let host = req.headers().get("host").and_then(|h| h.to_str().ok()).map(str::to_string);
            let r = if req.method() != Method::GET {
                Reply::error(405, "method_not_allowed", "Only GET is supported here.")
            } else if let Some(denied) = sh.check_auth(req.headers()) {
                denied
            } else {
                match &route {
                    None if feed => super::feeds::serve(sh, segs, query, host.as_deref()),
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
    let render = |out: &mut String, row: &Row, damage| store::render(out, shape, row, style, damage);
    render_records(out, rows, fault, render, |out, row| {
        // The same record again, as it was one change earlier: an older version after the newer.
        let older = Row { idx: row.idx, version: row.version.saturating_sub(1), rev: row.rev.saturating_sub(1), poisoned: row.poisoned };
        store::render(out, shape, &older, style, Damage::default());
    });
}

/// The opaque continuation key: the entity, the last version served and the page size.
fn encode_key(entity: &str, after: Option<u64>, size: usize) -> String {
    let after = after.map(|a| a.to_string()).unwrap_or_else(|| "-".into());
    encode_token("v1", &[entity, &after, &size.to_string()])
}

fn decode_key(key: &str) -> Option<(String, Option<u64>, usize)> {
    let fields = decode_token(key, "v1")?;
    let [entity, after, size, ..] = fields.as_slice() else { return None };
    let after = match after.as_str() {
        "-" => None,
        v => Some(v.parse().ok()?),
    };
    Some((entity.clone(), after, size.parse().ok()?))
}

fn parse_version(name: &str, v: Option<&str>) -> Result<Option<u64>, Reply> {
    match v {
        None | Some("") => Ok(None),
        Some(s) if s.bytes().all(|b| b.is_ascii_digit()) && s.len() <= 19 => Ok(s.parse().ok()),
        Some(s) => Err(Reply::error(400, "invalid_parameter", &format!("{name} must be a string of decimal digits, got {s:?}"))),
    }
}
