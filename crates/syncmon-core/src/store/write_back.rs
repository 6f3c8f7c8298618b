//! The write-back queue: records to mark at the source once they are synced (flag-based sync,
//! `write_back` on an entity).
//!
//! Invariants:
//! - A record is queued in the SAME transaction that makes it synced: the replica write
//!   (`apply_pages`) for an entity that forwards nowhere, the delivery (`delivery_succeeded`) for
//!   one that forwards. A crash between that and the mark loses nothing: the queue is on disk.
//! - One row per record; a newer version replaces the queued one, and a mark sent for an older
//!   version leaves the newer row queued.
//! - Whether a record still needs its mark is decided when it is sent: a record whose replica
//!   row already holds the body's fields (the source served it marked) is not marked again, so
//!   the mark's own new version coming back through the feed ends the loop.

use super::db::{Db, DbResult};
use super::{EntityKey, Result, Store};
use crate::record::Rejected;
use crate::state::{FailedStage, FailedState, Resolution};
use rusqlite::params;

/// One queued mark, with the replica's current record.
#[derive(Debug, Clone)]
pub struct WriteBackItem {
    pub id: i64,
    pub record_id: String,
    pub row_version: String,
    /// The replica's record; None when the row is gone or tombstoned (nothing to mark).
    pub data: Option<String>,
}

pub(super) fn enabled(tx: &Db, key: &EntityKey) -> DbResult<bool> {
    tx.query_row("SELECT write_back FROM entity_state WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))
}

pub(super) fn enqueue(tx: &Db, key: &EntityKey, record_id: &str, hash: i64, version: &str, now_ms: i64) -> DbResult<()> {
    tx.execute(
        "INSERT INTO write_back_queue (connection, entity, record_id, id_hash, row_version, queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (connection, entity, record_id) DO UPDATE SET row_version = excluded.row_version, queued_at = excluded.queued_at",
        params![key.connection, key.entity, record_id, hash, version, now_ms],
    )?;
    Ok(())
}

impl Store {
    /// Turns write-back on or off for the entity; off empties its queue.
    pub fn set_write_back(&self, key: &EntityKey, on: bool) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("UPDATE entity_state SET write_back = ?1 WHERE connection = ?2 AND entity = ?3", params![on, key.connection, key.entity])?;
            if !on {
                tx.execute("DELETE FROM write_back_queue WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    /// Up to `limit` queued marks after queue row `after_id`, oldest first.
    pub fn write_back_batch(&self, key: &EntityKey, after_id: i64, limit: u32) -> Result<Vec<WriteBackItem>> {
        let table = key.table();
        self.read(|c| {
            Ok(c.query_all(
                &format!(
                    "SELECT q.id, q.record_id, q.row_version, r.data FROM write_back_queue q
                       LEFT JOIN \"{table}\" r ON r.id_hash = q.id_hash AND r.id = q.record_id AND r.deleted_at IS NULL
                      WHERE q.connection = ?1 AND q.entity = ?2 AND q.id > ?3 ORDER BY q.id LIMIT ?4"
                ),
                params![key.connection, key.entity, after_id, limit],
                |r| Ok(WriteBackItem { id: r.get(0)?, record_id: r.get(1)?, row_version: r.get(2)?, data: r.get(3)? }),
            )?)
        })
    }

    /// Marks waiting for the entity.
    pub fn write_back_count(&self, key: &EntityKey) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*) FROM write_back_queue WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?)
        })
    }

    /// The mark was set (or is not needed): the queue row goes unless a newer version replaced it;
    /// a replayed failed item is resolved, and older write-back failures of the record superseded.
    pub fn write_back_done(&self, key: &EntityKey, record_id: &str, version: &str, replayed_item: Option<i64>, now_ms: i64) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM write_back_queue WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND row_version = ?4",
                params![key.connection, key.entity, record_id, version],
            )?;
            if let Some(fid) = replayed_item {
                tx.execute(
                    "UPDATE failed_items SET state = ?3, resolution = ?4, resolved_at = ?1, attempts = attempts + 1 WHERE id = ?2 AND state = ?5",
                    params![now_ms, fid, FailedState::Resolved, Resolution::Replayed, FailedState::Pending],
                )?;
            }
            tx.execute(
                "UPDATE failed_items SET state = ?5, resolution = ?6, resolved_at = ?1
                 WHERE connection = ?2 AND entity = ?3 AND record_id = ?4 AND state = ?7 AND stage = ?8",
                params![
                    now_ms,
                    key.connection,
                    key.entity,
                    record_id,
                    FailedState::Resolved,
                    Resolution::Superseded,
                    FailedState::Pending,
                    FailedStage::WriteBack
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The source would not take the mark: a failed item of stage `write_back`, out of the queue.
    /// `why` is the failure (`Rejected::of_record` of the item).
    pub fn write_back_failed(
        &self,
        key: &EntityKey,
        item: &WriteBackItem,
        why: &Rejected,
        http_status: Option<u16>,
        tracking_id: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        self.fail_queued(key, why, FailedStage::WriteBack, http_status, tracking_id, now_ms, |tx| {
            tx.execute(
                "DELETE FROM write_back_queue WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND row_version = ?4",
                params![key.connection, key.entity, item.record_id, item.row_version],
            )
        })
    }
}
