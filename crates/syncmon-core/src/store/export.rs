//! Exporting an entity's replica rows (`syncmon export`, the app's export): every row in the
//! order first received, streamed so that memory stays flat whatever the size.

use super::db::Db;
use super::{open_read_only_connection, EntityKey, ReplicaRow, Result, Store, StoreError};
use rusqlite::params;

impl Store {
    /// Calls `each` for every replica row in the order first received, streaming (memory stays flat).
    pub fn for_each_replica_row(&self, key: &EntityKey, include_deleted: bool, mut each: impl FnMut(ReplicaRow) -> std::io::Result<()>) -> Result<()> {
        let table = key.table();
        if self.is_postgres() {
            return self.for_each_replica_row_in_batches(&table, include_deleted, each);
        }
        let path = self.path.clone();
        // A dedicated connection: an export can take long and must not hold the shared reader.
        let c = Db::Sqlite(open_read_only_connection(&path)?);
        let filter = if include_deleted { "" } else { "WHERE deleted_at IS NULL" };
        // Each row is handed on as it is read (the rows collected are `()`); the first failure
        // stops the query and is returned as it is.
        let mut failed: Option<StoreError> = None;
        let read = c.query_all(&format!("SELECT id, row_version, data, deleted_at FROM \"{table}\" {filter} ORDER BY rowid"), params![], |r| {
            let data: String = r.get(2)?;
            let row = match serde_json::value::RawValue::from_string(data) {
                Ok(data) => ReplicaRow { id: r.get(0)?, row_version: r.get(1)?, data, deleted_at: r.get(3)? },
                Err(e) => {
                    failed = Some(StoreError::NotFound(format!("corrupt row: {e}")));
                    return Err(rusqlite::Error::QueryReturnedNoRows);
                }
            };
            each(row).map_err(|e| {
                failed = Some(StoreError::NotFound(format!("write failed: {e}")));
                rusqlite::Error::QueryReturnedNoRows
            })
        });
        match (failed, read) {
            (Some(e), _) => Err(e),
            (None, read) => read.map(|_| ()).map_err(Into::into),
        }
    }

    /// PostgreSQL's rows come whole per query: the table is read in rowid order, 5,000 rows per
    /// query, the reader held for one batch at a time (memory stays flat, the agent goes on).
    fn for_each_replica_row_in_batches(&self, table: &str, include_deleted: bool, mut each: impl FnMut(ReplicaRow) -> std::io::Result<()>) -> Result<()> {
        let filter = if include_deleted { "" } else { "AND deleted_at IS NULL" };
        let sql = format!("SELECT rowid, id, row_version, data, deleted_at FROM \"{table}\" WHERE rowid > ?1 {filter} ORDER BY rowid LIMIT 5000");
        let mut after = i64::MIN;
        loop {
            let batch: Vec<(i64, String, String, String, Option<i64>)> =
                self.read(|c| Ok(c.query_all(&sql, params![after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?))?;
            let Some(last) = batch.last() else { return Ok(()) };
            after = last.0;
            for (_, id, row_version, data, deleted_at) in batch {
                let data = serde_json::value::RawValue::from_string(data).map_err(|e| StoreError::NotFound(format!("corrupt row: {e}")))?;
                each(ReplicaRow { id, row_version, data, deleted_at }).map_err(|e| StoreError::NotFound(format!("write failed: {e}")))?;
            }
        }
    }
}
