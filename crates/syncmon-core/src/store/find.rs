//! Finding anything by a Trackingid or a record id (`syncmon find`, the app's search box): the
//! calls, runs, failed items and pushed batch that carry it, and the replica rows of that id —
//! what a support engineer has to put together from a ticket.

use super::db::{Db, DbResult, Dialect, Row};
use super::failed::failed_row;
use super::request_log::{request_row, REQUEST_COLUMNS};
use super::runs::{run_row, RUN_COLUMNS};
use super::{EntityKey, FailedItem, IngestBatch, RequestRow, Result, RunRow, Store};
use rusqlite::params;
use serde::Serialize;

/// A replica row whose id is the one looked for.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct FoundRow {
    /// `connection/entity`.
    pub entity: String,
    pub id: String,
    pub row_version: String,
    #[ts(type = "unknown")]
    pub data: serde_json::Value,
    /// When the row was deleted (a tombstone), milliseconds since 1970; None while live.
    pub deleted_at: Option<i64>,
}

/// Everything that carries the text looked for, newest first in each part.
#[derive(Debug, Clone, Default, Serialize, ts_rs::TS)]
pub struct Found {
    /// The text looked for, trimmed.
    pub query: String,
    /// Calls whose answer carried it as the `Trackingid`.
    pub requests: Vec<RequestRow>,
    /// Runs that ended with it as their Trackingid.
    pub runs: Vec<RunRow>,
    /// Failed items (any state) with it as their Trackingid or their record id.
    pub failed: Vec<FailedItem>,
    /// The pushed batch of that correlation id.
    pub ingest: Option<IngestBatch>,
    /// Replica rows of that record id, in any entity.
    pub replica: Vec<FoundRow>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.runs.is_empty() && self.failed.is_empty() && self.ingest.is_none() && self.replica.is_empty()
    }
}

impl Store {
    /// Looks `query` up as a Trackingid, a pushed batch's id and a record id of the entities
    /// `keys`; at most `limit` rows of each kind.
    pub fn find(&self, query: &str, keys: &[EntityKey], limit: u32) -> Result<Found> {
        self.flush()?;
        let query = query.trim().to_string();
        let ingest = self.ingest_batch(&query)?;
        self.read(|c| {
            let by_tracking_id = |table: &str, columns: &str| format!("SELECT {columns} FROM {table} WHERE tracking_id = ?1 ORDER BY id DESC LIMIT ?2");
            let requests = matching(c, &by_tracking_id("request_log", REQUEST_COLUMNS), &query, limit, request_row)?;
            let runs = matching(c, &by_tracking_id("runs", RUN_COLUMNS), &query, limit, run_row)?;
            let failed = matching(
                c,
                "SELECT * FROM failed_items WHERE id IN
                   (SELECT id FROM failed_items WHERE tracking_id = ?1 UNION SELECT id FROM failed_items WHERE record_id = ?1)
                 ORDER BY id DESC LIMIT ?2",
                &query,
                limit,
                failed_row,
            )?;
            let mut replica = Vec::new();
            for key in keys {
                let table = key.table();
                let exists = table_exists(c, &table)?;
                if !exists {
                    continue; // never synced yet
                }
                let rows = c.query_all(
                    &format!("SELECT id, row_version, data, deleted_at FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"),
                    params![super::id_hash(&query), query],
                    |r| {
                        let data: String = r.get(2)?;
                        Ok(FoundRow {
                            entity: key.to_string(),
                            id: r.get(0)?,
                            row_version: r.get(1)?,
                            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
                            deleted_at: r.get(3)?,
                        })
                    },
                )?;
                replica.extend(rows);
            }
            Ok(Found { query: query.clone(), requests, runs, failed, ingest: ingest.clone(), replica })
        })
    }
}

/// The rows of one kind: `sql` takes the id as `?1` and the limit as `?2`.
fn matching<T>(c: &Db, sql: &str, query: &str, limit: u32, row: fn(&Row<'_>) -> rusqlite::Result<T>) -> DbResult<Vec<T>> {
    c.query_all(sql, params![query, limit], row)
}

impl Store {
    /// The live replica row of `id`: its version and stored data (`syncmon verify`).
    pub fn replica_live_row(&self, key: &EntityKey, id: &str) -> Result<Option<(String, String)>> {
        let table = key.table();
        self.read(|c| {
            let exists = table_exists(c, &table)?;
            if !exists {
                return Ok(None); // never synced yet: everything is missing
            }
            Ok(c.query_opt(
                &format!("SELECT row_version, data FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2 AND deleted_at IS NULL"),
                params![super::id_hash(id), id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
    }
}

/// Whether the replica table exists (an entity that never synced has none yet).
fn table_exists(c: &Db, table: &str) -> DbResult<bool> {
    let sql = match c.dialect() {
        Dialect::Sqlite => "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        Dialect::Postgres => "SELECT to_regclass(quote_ident(CAST(?1 AS TEXT))) IS NOT NULL",
    };
    c.query_row(sql, params![table], |r| r.get(0))
}
