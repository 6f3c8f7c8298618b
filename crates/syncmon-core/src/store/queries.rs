//! Read models for the front ends (overview header, sparklines, checkpoint chart, the failed-items
//! table) and the small settings table. Kept apart from the replica write path in `store.rs` so the
//! two evolve without stepping on each other; these are reads plus one tiny key/value write.

use super::{failed_query, failed_row, EntityKey, FailedFilter, FailedItem, Result, Store};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// Items in list pages carry at most this much payload; `failed_item` gives the full one.
pub const LIST_PAYLOAD_CHARS: i64 = 2048;

const HOUR_MS: i64 = 3_600_000;

/// Calls to the sources over a recent window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RequestStats {
    pub requests: i64,
    /// No answer, or HTTP 4xx/5xx.
    pub failed: i64,
    /// `failed / requests`, 0 when there were none.
    pub error_rate: f64,
    /// None when there were no requests.
    pub p95_ms: Option<i64>,
}

/// One point of an entity's checkpoint history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct CheckpointPoint {
    pub at: i64,
    pub checkpoint: String,
}

impl Store {
    /// Request count, error rate and p95 latency of the calls logged since `since_ms`.
    pub fn request_stats(&self, since_ms: i64) -> Result<RequestStats> {
        self.flush()?;
        self.read(|c| {
            let (requests, failed): (i64, i64) = c.query_row(
                "SELECT count(*), coalesce(sum(status IS NULL OR status >= 400), 0) FROM request_log WHERE at >= ?1",
                [since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let p95_ms = if requests == 0 {
                None
            } else {
                // Nearest-rank p95: the ceil(0.95 n)-th smallest duration.
                let rank = ((requests as f64) * 0.95).ceil() as i64;
                c.query_row(
                    "SELECT duration_ms FROM request_log WHERE at >= ?1 ORDER BY duration_ms LIMIT 1 OFFSET ?2",
                    params![since_ms, (rank - 1).max(0)],
                    |r| r.get(0),
                )
                .optional()?
            };
            let error_rate = if requests == 0 { 0.0 } else { failed as f64 / requests as f64 };
            Ok(RequestStats { requests, failed, error_rate, p95_ms })
        })
    }

    /// Records received per hour over the `hours` hours ending at `now_ms`, oldest first, for every
    /// entity that had runs in that window (from the run history).
    pub fn hourly_changes(&self, now_ms: i64, hours: usize) -> Result<std::collections::BTreeMap<EntityKey, Vec<i64>>> {
        let start = now_ms - hours as i64 * HOUR_MS;
        self.read(|c| {
            // Rows arrive grouped by entity (index order), so they are summed as they stream by
            // instead of GROUP BY sorting every run of the day.
            let mut st = c.prepare_cached(
                "SELECT connection, entity, started_at, records FROM runs INDEXED BY runs_by_entity_time
                 WHERE started_at >= ?1 AND started_at < ?2 ORDER BY connection, entity",
            )?;
            let mut out: std::collections::BTreeMap<EntityKey, Vec<i64>> = std::collections::BTreeMap::new();
            let mut current: Option<(EntityKey, Vec<i64>)> = None;
            let mut rows = st.query(params![start, now_ms])?;
            while let Some(r) = rows.next()? {
                let text = |i: usize| -> rusqlite::Result<&str> {
                    r.get_ref(i)?.as_str().map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
                };
                let (conn, ent) = (text(0)?, text(1)?);
                if current.as_ref().is_none_or(|(k, _)| k.connection != conn || k.entity != ent) {
                    if let Some((k, v)) = current.take() {
                        out.insert(k, v);
                    }
                    current = Some((EntityKey::new(conn, ent), vec![0; hours]));
                }
                let bucket = ((r.get::<_, i64>(2)? - start) / HOUR_MS) as usize;
                if let Some((_, v)) = current.as_mut() {
                    if let Some(slot) = v.get_mut(bucket) {
                        *slot += r.get::<_, i64>(3)?;
                    }
                }
            }
            if let Some((k, v)) = current {
                out.insert(k, v);
            }
            Ok(out)
        })
    }

    /// The entity's checkpoint over time (after each caught-up cycle that moved it, and every few
    /// seconds within a long cycle), since `since_ms`, oldest first.
    pub fn checkpoint_history(&self, key: &EntityKey, since_ms: i64) -> Result<Vec<CheckpointPoint>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT at, checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at >= ?3 ORDER BY at",
            )?;
            let rows = st
                .query_map(params![key.connection, key.entity, since_ms], |r| Ok(CheckpointPoint { at: r.get(0)?, checkpoint: r.get(1)? }))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// How many failed items match the filter.
    pub fn failed_count(&self, f: &FailedFilter) -> Result<i64> {
        self.read(|c| {
            let simple = f.stage.is_none() && f.error_kind.is_none() && f.text.as_deref().is_none_or(str::is_empty);
            if simple && f.state.as_deref().is_none_or(|s| s == "pending") {
                // The per-entity counter the triggers keep: no scan of the failed items at all.
                let mut sql = String::from("SELECT coalesce(sum(pending_failed), 0) FROM entity_state WHERE 1 = 1");
                let mut args: Vec<rusqlite::types::Value> = Vec::new();
                for (col, val) in [("connection", &f.connection), ("entity", &f.entity)] {
                    if let Some(v) = val {
                        sql.push_str(&format!(" AND {col} = ?"));
                        args.push(v.clone().into());
                    }
                }
                return Ok(c.query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?);
            }
            let (sql, args) = failed_query(f, "SELECT count(*) FROM failed_items", None, None);
            Ok(c.query_row(&sql, rusqlite::params_from_iter(args), |r| r.get(0))?)
        })
    }

    /// A page of failed items, newest first, by offset, with payloads cut to
    /// `LIST_PAYLOAD_CHARS`. The offset is walked in the index only (the inner query selects ids
    /// from a covering index), so a page near the end costs an index walk, not a table scan.
    pub fn failed_page(&self, f: &FailedFilter, offset: u32, limit: u32) -> Result<Vec<FailedItem>> {
        self.read(|c| {
            let (inner, mut args) = failed_query(f, "SELECT id FROM failed_items", None, Some(limit));
            args.push((offset as i64).into());
            let sql = format!(
                "SELECT id, connection, entity, record_id, row_version, substr(payload, 1, {LIST_PAYLOAD_CHARS}) AS payload, stage,
                   error_kind, message, http_status, tracking_id, attempts, first_failed_at, last_failed_at, state, resolution
                 FROM failed_items WHERE id IN ({inner} OFFSET ?) ORDER BY id DESC"
            );
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), failed_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// `(total, page)` for the failed-items table. A text search cannot use an index to count, so
    /// it scans once (in the narrow covering text index), counting and keeping the page's ids, and
    /// then reads just those rows; other filters count from counters or indexes.
    pub fn failed_page_with_total(&self, f: &FailedFilter, offset: u32, limit: u32) -> Result<(i64, Vec<FailedItem>)> {
        if f.text.as_deref().is_none_or(str::is_empty) {
            return Ok((self.failed_count(f)?, self.failed_page(f, offset, limit)?));
        }
        self.read(|c| {
            let (sql, args) = failed_query(f, "SELECT id FROM failed_items", None, None);
            let mut st = c.prepare_cached(&sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(args))?;
            let (mut total, mut ids) = (0i64, Vec::with_capacity(limit as usize));
            while let Some(r) = rows.next()? {
                if total >= offset as i64 && ids.len() < limit as usize {
                    ids.push(r.get::<_, i64>(0)?);
                }
                total += 1;
            }
            if ids.is_empty() {
                return Ok((total, Vec::new()));
            }
            let marks = vec!["?"; ids.len()].join(",");
            let sql = format!(
                "SELECT id, connection, entity, record_id, row_version, substr(payload, 1, {LIST_PAYLOAD_CHARS}) AS payload, stage,
                   error_kind, message, http_status, tracking_id, attempts, first_failed_at, last_failed_at, state, resolution
                 FROM failed_items WHERE id IN ({marks}) ORDER BY id DESC"
            );
            let mut st = c.prepare(&sql)?;
            let items = st.query_map(rusqlite::params_from_iter(ids), failed_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((total, items))
        })
    }

    /// Pauses or resumes the entities in one transaction; returns how many actually changed.
    pub fn set_paused_many(&self, keys: &[EntityKey], paused: bool) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut st = tx.prepare_cached("UPDATE entity_state SET paused = ?1 WHERE connection = ?2 AND entity = ?3 AND paused <> ?1")?;
                for k in keys {
                    n += st.execute(params![paused, k.connection, k.entity])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| Ok(c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Rejected;
    use crate::store::PageBatch;

    fn setup() -> (tempfile::TempDir, Store, EntityKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("replica.db")).unwrap();
        let key = EntityKey::new("c", "items");
        store.ensure_entity(&key).unwrap();
        (dir, store, key)
    }

    fn reject(store: &Store, key: &EntityKey, n: usize, kind: &'static str) {
        let rejected: Vec<Rejected> = (0..n)
            .map(|i| Rejected { id: Some(format!("{kind}-{i}")), version: None, payload: "x".repeat(3000), kind, message: format!("bad record {i}") })
            .collect();
        let run = store.begin_run(key, "incremental", 1).unwrap();
        store
            .apply_page(key, &PageBatch { records: &[], rejected: &rejected, tracking_id: Some("trk-1"), http_status: Some(200), max_version: None, resync_cursor: None, run_id: run, now_ms: 1 })
            .unwrap();
    }

    #[test]
    fn failed_pages_count_and_cut_payloads() {
        let (_d, store, key) = setup();
        reject(&store, &key, 250, "missing_id");
        reject(&store, &key, 5, "missing_field");
        let all = FailedFilter::default();
        assert_eq!(store.failed_count(&all).unwrap(), 255);
        let page = store.failed_page(&all, 0, 100).unwrap();
        assert_eq!(page.len(), 100);
        assert!(page.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(page[0].payload.len() as i64, LIST_PAYLOAD_CHARS);
        let last = store.failed_page(&all, 200, 100).unwrap();
        assert_eq!(last.len(), 55);
        let kind = FailedFilter { error_kind: Some("missing_field".into()), ..Default::default() };
        assert_eq!(store.failed_count(&kind).unwrap(), 5);
        let text = FailedFilter { text: Some("bad record 24".into()), ..Default::default() };
        assert_eq!(store.failed_count(&text).unwrap(), 1 + 10, "24 and 240..249 of missing_id, none of the 5 others");
        assert_eq!(store.failed_page(&text, 0, 100).unwrap().len(), 11);
        let (total, page) = store.failed_page_with_total(&text, 5, 4).unwrap();
        assert_eq!((total, page.len()), (11, 4));
        let ids = |items: &[FailedItem]| items.iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(&page), ids(&store.failed_page(&text, 5, 4).unwrap()));
        assert_eq!(store.failed_page_with_total(&text, 20, 4).unwrap().0, 11);
        assert!(store.failed_page_with_total(&text, 20, 4).unwrap().1.is_empty());
        let discarded = FailedFilter { state: Some("discarded".into()), ..Default::default() };
        assert_eq!(store.failed_count(&discarded).unwrap(), 0);
    }

    #[test]
    fn request_stats_give_the_error_rate_and_p95() {
        let (_d, store, _key) = setup();
        for i in 0..100 {
            store
                .log_request(&crate::store::RequestRow {
                    id: 0,
                    at: 1000 + i,
                    connection: "c".into(),
                    entity: Some("items".into()),
                    method: "GET".into(),
                    url: "http://x".into(),
                    status: Some(if i < 10 { 503 } else { 200 }),
                    duration_ms: i + 1,
                    attempt: 1,
                    bytes: None,
                    tracking_id: None,
                    error: None,
                })
                .unwrap();
        }
        let s = store.request_stats(1000).unwrap();
        assert_eq!((s.requests, s.failed, s.p95_ms), (100, 10, Some(95)));
        assert!((s.error_rate - 0.1).abs() < 1e-9);
        assert_eq!(store.request_stats(5000).unwrap().p95_ms, None);
    }

    #[test]
    fn settings_round_trip() {
        let (_d, store, _key) = setup();
        assert_eq!(store.setting("ui").unwrap(), None);
        store.set_setting("ui", "{}").unwrap();
        store.set_setting("ui", "{\"a\":1}").unwrap();
        assert_eq!(store.setting("ui").unwrap().as_deref(), Some("{\"a\":1}"));
    }
}
