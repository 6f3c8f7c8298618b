//! The request log: every call to a source or target (URL redacted, status, duration, attempt),
//! queued in memory and written with the next write so that logging never waits for a page.

use super::db::{Db, Row};
use super::{dyn_params, EntityKey, Result, Store};
use rusqlite::params;
use serde::Serialize;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RequestRow {
    pub id: i64,
    /// When the call ended, in milliseconds since 1970.
    pub at: i64,
    /// The connection's id, or the target's for a delivery.
    pub connection: String,
    /// The entity the call was for (`connection/entity` for a delivery); None for a call for no
    /// entity (testing a connection).
    pub entity: Option<String>,
    pub method: String,
    /// Credential-looking query parameters redacted.
    pub url: String,
    /// None when no answer came (connection refused or reset, timeout).
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// 1 for the first try, counting up through the retries of one call.
    pub attempt: u32,
    /// Bytes of the body read; None when none was read (no answer, or an answer refused first).
    pub bytes: Option<i64>,
    /// The `Trackingid` the answer carried.
    pub tracking_id: Option<String>,
    /// What went wrong with the call, as shown; None when nothing did.
    pub error: Option<String>,
}

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

impl Store {
    pub(super) fn flush_log(&self, c: &Db) -> Result<()> {
        let rows = std::mem::take(&mut *self.pending_log.lock().unwrap_or_else(|p| p.into_inner()));
        if rows.is_empty() {
            return Ok(());
        }
        let tx = c.transaction()?;
        {
            let insert = tx.prepare(
                "INSERT INTO request_log (at, connection, entity, method, url, status, duration_ms, attempt, bytes, tracking_id, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for r in &rows {
                insert.execute(params![r.at, r.connection, r.entity, r.method, r.url, r.status, r.duration_ms, r.attempt, r.bytes, r.tracking_id, r.error])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Queues a request-log row; it is written with the next write, at the latest when the cycle
    /// ends, or right away when the writer is free and rows pile up.
    pub fn log_request(&self, r: &RequestRow) -> Result<()> {
        let queued = {
            let mut q = self.pending_log.lock().unwrap_or_else(|p| p.into_inner());
            q.push(r.clone());
            q.len()
        };
        if queued >= 64 {
            if let Some(Ok(c)) = self.writer.as_ref().map(Mutex::try_lock) {
                self.flush_log(&c)?;
            }
        }
        Ok(())
    }

    /// Writes queued request-log rows now.
    pub fn flush(&self) -> Result<()> {
        if self.writer.is_none() {
            return Ok(()); // a read-only store makes no calls to log
        }
        self.write(|_| Ok(()))
    }

    /// The newest request-log rows, all or one entity's: its own calls and those its forwarding
    /// made to its target (logged under the target's id for `connection/entity`); only failed
    /// ones, or only those whose answer carried `tracking_id`, when asked.
    pub fn requests(&self, key: Option<&EntityKey>, failed_only: bool, tracking_id: Option<&str>, limit: u32) -> Result<Vec<RequestRow>> {
        self.flush()?;
        self.read(|c| {
            let query = |conn_entity: Option<(&str, &str)>| -> Result<Vec<RequestRow>> {
                let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM request_log WHERE 1 = 1");
                let mut args: Vec<rusqlite::types::Value> = Vec::new();
                if let Some((connection, entity)) = conn_entity {
                    // One range of the (connection, entity, id) index.
                    sql.push_str(" AND connection = ? AND entity = ?");
                    args.push(connection.to_string().into());
                    args.push(entity.to_string().into());
                }
                if failed_only {
                    sql.push_str(" AND (status IS NULL OR status >= 400)");
                }
                if let Some(t) = tracking_id {
                    sql.push_str(" AND tracking_id = ?");
                    args.push(t.trim().to_string().into());
                }
                sql.push_str(" ORDER BY id DESC LIMIT ?");
                args.push((limit as i64).into());
                Ok(c.query_all(&sql, &dyn_params(&args), request_row)?)
            };
            let Some(k) = key else { return query(None) };
            let mut rows = query(Some((&k.connection, &k.entity)))?;
            let target: Option<String> = c
                .query_opt("SELECT forward_to FROM entity_state WHERE connection = ?1 AND entity = ?2", params![k.connection, k.entity], |r| r.get(0))?
                .flatten();
            if let Some(target) = target {
                rows.extend(query(Some((&target, &k.to_string())))?);
                rows.sort_by_key(|r| std::cmp::Reverse(r.id));
                rows.truncate(limit as usize);
            }
            Ok(rows)
        })
    }

    /// Drops request-log entries older than the retention; bounded work per call.
    pub fn prune_request_log(&self, older_than_ms: i64) -> Result<usize> {
        self.write(|c| Ok(c.execute("DELETE FROM request_log WHERE id IN (SELECT id FROM request_log WHERE at < ?1 LIMIT 50000)", params![older_than_ms])?))
    }

    /// Request count, error rate and p95 latency of the calls logged since `since_ms`.
    pub fn request_stats(&self, since_ms: i64) -> Result<RequestStats> {
        self.flush()?;
        self.read(|c| {
            let (requests, failed): (i64, i64) = c.query_row(
                "SELECT count(*), coalesce(sum(CASE WHEN status IS NULL OR status >= 400 THEN 1 ELSE 0 END), 0) FROM request_log WHERE at >= ?1",
                params![since_ms],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let p95_ms = if requests == 0 {
                None
            } else {
                // Nearest-rank p95: the ceil(0.95 n)-th smallest duration.
                let rank = ((requests as f64) * 0.95).ceil() as i64;
                c.query_opt(
                    "SELECT duration_ms FROM request_log WHERE at >= ?1 ORDER BY duration_ms LIMIT 1 OFFSET ?2",
                    params![since_ms, (rank - 1).max(0)],
                    |r| r.get(0),
                )?
            };
            let error_rate = if requests == 0 { 0.0 } else { failed as f64 / requests as f64 };
            Ok(RequestStats { requests, failed, error_rate, p95_ms })
        })
    }
}

/// The columns [`request_row`] reads, in its order.
pub(super) const REQUEST_COLUMNS: &str = "id, at, connection, entity, method, url, status, duration_ms, attempt, bytes, tracking_id, error";

/// A row of `request_log` (selected by [`REQUEST_COLUMNS`]).
pub(super) fn request_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    from_columns!(r => RequestRow {
        id, at, connection, entity, method, url, status, duration_ms, attempt, bytes, tracking_id, error
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;

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
}
