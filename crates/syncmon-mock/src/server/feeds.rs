//! The feed routes: pages of a timestamp or snapshot feed at `GET /{feed}`, one record at
//! `GET /{feed}/{id}`. Both answer `{"items": [...], "links": {"next": URL or null}}`; the next
//! link carries an opaque `cursor` (or `page=N+1` when the request paged by number).

use super::faults::{gateway_reply, render_records};
use super::{decode_token, encode_token, param, parse_query, percent_encode, Reply, Shared};
use crate::feeds::{self, FeedKind, FeedRow, FeedShape, From};
use crate::store::Damage;
use crate::{FaultKind, MockRecord};
use std::sync::atomic::Ordering;

impl Shared {
    /// A feed's live records sorted by id; `row_version` is the timestamp as text ("" in a snapshot).
    pub(super) fn feed_dataset(&self, name: &str) -> Vec<MockRecord> {
        let (shape, rows) = {
            let feeds = self.feeds.lock().unwrap();
            let Some(f) = feeds.index(name) else { return Vec::new() };
            (feeds.feeds[f].shape(), feeds.live_rows(f))
        };
        let mut out = String::with_capacity(1024);
        rows.iter()
            .map(|row| {
                out.clear();
                feeds::render(&mut out, &shape, row, Damage::default());
                MockRecord {
                    id: crate::gen::uuid_string(shape.keys.id(row.idx)),
                    row_version: shape.timestamp.as_ref().map(|t| feeds::time_text(t, row.time)).unwrap_or_default(),
                    data: serde_json::from_str(&out).expect("rendered records are JSON"),
                }
            })
            .collect()
    }
}

pub(super) fn serve(sh: &Shared, segs: &[&str], query: &str, host: Option<&str>) -> Reply {
    let base = host.map(|h| format!("http://{h}")).unwrap_or_else(|| sh.base_url.clone());
    let name = segs[0];
    let q = parse_query(query);
    let (f, kind, shape) = {
        let feeds = sh.feeds.lock().unwrap();
        let Some(f) = feeds.index(name) else { return Reply::error(404, "resource_not_found", &format!("The resource '{name}' does not exist.")) };
        (f, feeds.feeds[f].spec.kind.clone(), feeds.feeds[f].shape())
    };
    if let Some(id) = segs.get(1) {
        let row = uuid::Uuid::parse_str(id).ok().and_then(|u| sh.feeds.lock().unwrap().get(f, u.as_u128()));
        return match row {
            Some(row) => {
                let mut body = String::with_capacity(1024);
                feeds::render(&mut body, &shape, &row, Damage::default());
                Reply::json(200, body)
            }
            None => Reply::error(404, "resource_not_found", &format!("No {name} record with id {id}.")),
        };
    }

    let size = match param(&q, "limit") {
        None | Some("") => None,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Reply::error(400, "invalid_parameter", &format!("limit must be a positive integer, got {s:?}.")),
        },
    };
    let clamp = |n: usize| n.clamp(1, sh.cfg.max_page_size.max(1));
    let (page_no, from, size, by_number) = match param(&q, "cursor").filter(|c| !c.is_empty()) {
        Some(c) => match decode_cursor(c) {
            Some((feed, page_no, from, n)) if feed == name => (page_no, from, clamp(size.unwrap_or(n)), false),
            _ => return Reply::error(400, "invalid_parameter", "The cursor is not valid for this resource."),
        },
        None => {
            let size = clamp(size.unwrap_or(sh.cfg.default_page_size));
            match param(&q, "page").filter(|p| !p.is_empty()) {
                None => (1, From::Start, size, false),
                Some(p) => match p.parse::<u32>() {
                    Ok(n) if n > 0 => (n, From::Offset((n as usize - 1).saturating_mul(size)), size, true),
                    _ => return Reply::error(400, "invalid_parameter", &format!("page must be a positive integer, got {p:?}.")),
                },
            }
        }
    };
    let since = match &kind {
        FeedKind::Snapshot => None,
        FeedKind::Timestamp(t) => {
            if let Some(order) = param(&q, "orderBy").filter(|o| !o.is_empty() && !o.eq_ignore_ascii_case(&t.field)) {
                return Reply::error(400, "invalid_parameter", &format!("This resource can only be ordered by {}, not {order:?}.", t.field));
            }
            match param(&q, &t.since_param).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => match feeds::parse_time(t.format, s) {
                    Some(ms) => Some(ms),
                    None => return Reply::error(400, "invalid_parameter", &format!("{} must be a {} timestamp, got {s:?}.", t.since_param, t.format.name())),
                },
            }
        }
    };
    if let Some(status) = sh.take_page_fault(name, page_no) {
        return gateway_reply(status);
    }

    let (rows, more) = sh.feeds.lock().unwrap().page(f, since, from, size);
    sh.records_served.fetch_add(rows.len(), Ordering::Relaxed);
    let fault = if rows.is_empty() { None } else { sh.take_fault(name, true) };
    let next = match rows.last() {
        Some(_) if more && by_number => Some(format!("{base}/{}?page={}&limit={size}", percent_encode(name), page_no + 1)),
        Some(last) if more => {
            let after = if kind == FeedKind::Snapshot { From::AfterIndex(last.idx) } else { From::AfterKey(last.time, shape.keys.id(last.idx)) };
            Some(format!("{base}/{}?cursor={}", percent_encode(name), encode_cursor(name, page_no + 1, after, size)))
        }
        _ => None,
    };
    let mut body = String::with_capacity(rows.len() * 900 + 512);
    body.push_str("{\"items\":");
    render_rows(&mut body, &shape, &rows, fault.as_ref());
    match next {
        Some(url) => {
            body.push_str(",\"links\":{\"next\":");
            crate::gen::json_str(&mut body, &url);
            body.push_str("}}");
        }
        None => body.push_str(",\"links\":{\"next\":null}}"),
    }
    Reply::json(200, body)
}

/// Record faults on a feed page: missing ids, missing timestamps (timestamp feeds), or the first
/// record served twice.
fn render_rows(out: &mut String, shape: &FeedShape, rows: &[FeedRow], fault: Option<&FaultKind>) {
    render_records(out, rows, fault, |out, row, damage| feeds::render(out, shape, row, damage), |out, row| feeds::render(out, shape, row, Damage::default()));
}

/// The opaque continuation: the feed, the number of the page it asks for, where that page
/// starts and the page size.
fn encode_cursor(feed: &str, page_no: u32, after: From, size: usize) -> String {
    let pos = match after {
        From::AfterKey(t, id) => format!("t{t}:{id:032x}"),
        From::AfterIndex(i) => format!("i{i}"),
        From::Start | From::Offset(_) => "-".to_string(),
    };
    encode_token("f1", &[feed, &page_no.to_string(), &size.to_string(), &pos])
}

fn decode_cursor(cursor: &str) -> Option<(String, u32, From, usize)> {
    let fields = decode_token(cursor, "f1")?;
    let [feed, page_no, size, pos, ..] = fields.as_slice() else { return None };
    let from = if let Some(key) = pos.strip_prefix('t') {
        let (t, id) = key.split_once(':')?;
        From::AfterKey(t.parse().ok()?, u128::from_str_radix(id, 16).ok()?)
    } else if let Some(i) = pos.strip_prefix('i') {
        From::AfterIndex(i.parse().ok()?)
    } else {
        From::Start
    };
    Some((feed.clone(), page_no.parse().ok()?, from, size.parse().ok()?))
}
