//! The outbox of the forwarding sink: which records still have to reach the entity's target.
//!
//! Invariants:
//! - A forwarding entity's outbox row is written in the SAME transaction as the replica change
//!   it stands for (`apply_pages`, `apply_replayed`, `resync_finish`), so a crash can lose
//!   neither: no change is committed to the replica without being queued for the target.
//! - One row per (entity, record id). A newer change updates the pending row in place, so the
//!   target receives the latest version once rather than every intermediate one.
//! - The row names the change (version and kind); the payload is read from the replica when
//!   it is delivered, so the outbox costs no second copy of the data.
//! - A row leaves the outbox only when the exact (version, kind) it held was delivered or became
//!   a failed item; a newer change queued meanwhile stays and is delivered on its own.

use super::db::{Db, DbResult};
use super::{EntityKey, Result, Store};
use crate::record::Rejected;
use crate::state::{FailedStage, FailedState, Resolution};
use rusqlite::params;

pub(super) const UPSERT: &str = "upsert";
pub(super) const DELETE: &str = "delete";

/// One pending change, with the replica's current record.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub record_id: String,
    pub row_version: String,
    /// `upsert` (PUT the record) or `delete` (DELETE it).
    pub kind: String,
    /// The record JSON held by the replica (for a deletion, as it was last seen); None when the
    /// replica has no such row any more.
    pub data: Option<String>,
}

impl OutboxItem {
    pub fn is_delete(&self) -> bool {
        self.kind == DELETE
    }
}

/// Queues (or updates the queued) change of one record.
pub(super) fn enqueue(tx: &Db, key: &EntityKey, record_id: &str, hash: i64, version: &str, kind: &str, now_ms: i64) -> DbResult<()> {
    tx.execute(
        "INSERT INTO outbox (connection, entity, record_id, id_hash, row_version, kind, queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (connection, entity, record_id) DO UPDATE SET row_version = excluded.row_version, kind = excluded.kind, queued_at = excluded.queued_at",
        params![key.connection, key.entity, record_id, hash, version, kind, now_ms],
    )?;
    Ok(())
}

/// Queues the deletions a completed resync pass is about to make (call before tombstoning).
pub(super) fn enqueue_unseen_deletions(tx: &Db, key: &EntityKey, pass: i64, now_ms: i64) -> DbResult<usize> {
    let table = key.table();
    tx.execute(
        &format!(
            "INSERT INTO outbox (connection, entity, record_id, id_hash, row_version, kind, queued_at)
             SELECT ?1, ?2, id, id_hash, row_version, '{DELETE}', ?3 FROM \"{table}\"
              WHERE deleted_at IS NULL AND seen_pass < ?4
                AND EXISTS (SELECT 1 FROM entity_state WHERE connection = ?1 AND entity = ?2 AND forward_to IS NOT NULL)
             ON CONFLICT (connection, entity, record_id) DO UPDATE SET row_version = excluded.row_version, kind = excluded.kind, queued_at = excluded.queued_at"
        ),
        params![key.connection, key.entity, now_ms, pass],
    )
}

/// One logged write to a target: (at, HTTP status, error).
pub type TargetWrite = (i64, Option<u16>, Option<String>);

impl Store {
    /// Records which target the entity forwards to (None = it does not). When forwarding starts,
    /// or moves to another target, every live record is queued so the target gets the whole
    /// entity, not only what changes from now on; when it stops, the outbox is emptied. Returns
    /// how many records were queued.
    pub fn set_forward_target(&self, key: &EntityKey, target: Option<&str>, now_ms: i64) -> Result<usize> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            let current: Option<String> = tx
                .query_opt("SELECT forward_to FROM entity_state WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?
                .flatten();
            if current.as_deref() == target {
                return Ok(0);
            }
            let queued = match target {
                Some(_) => tx.execute(
                    &format!(
                        "INSERT INTO outbox (connection, entity, record_id, id_hash, row_version, kind, queued_at)
                         SELECT ?1, ?2, id, id_hash, row_version, '{UPSERT}', ?3 FROM \"{table}\" WHERE deleted_at IS NULL ORDER BY rowid
                         ON CONFLICT (connection, entity, record_id) DO UPDATE SET row_version = excluded.row_version, kind = excluded.kind"
                    ),
                    params![key.connection, key.entity, now_ms],
                )?,
                None => {
                    tx.execute("DELETE FROM outbox WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity])?;
                    0
                }
            };
            tx.execute("UPDATE entity_state SET forward_to = ?1 WHERE connection = ?2 AND entity = ?3", params![target, key.connection, key.entity])?;
            tx.commit()?;
            Ok(queued)
        })
    }

    /// Up to `limit` pending changes after outbox row `after_id`, oldest first.
    pub fn outbox_batch(&self, key: &EntityKey, after_id: i64, limit: u32) -> Result<Vec<OutboxItem>> {
        let table = key.table();
        self.read(|c| {
            Ok(c.query_all(
                &format!(
                    "SELECT o.id, o.record_id, o.row_version, o.kind, r.data FROM outbox o
                       LEFT JOIN \"{table}\" r ON r.id_hash = o.id_hash AND r.id = o.record_id
                      WHERE o.connection = ?1 AND o.entity = ?2 AND o.id > ?3 ORDER BY o.id LIMIT ?4"
                ),
                params![key.connection, key.entity, after_id, limit],
                |r| Ok(OutboxItem { id: r.get(0)?, record_id: r.get(1)?, row_version: r.get(2)?, kind: r.get(3)?, data: r.get(4)? }),
            )?)
        })
    }

    /// Changes of the entity waiting for delivery, and when the oldest of them was queued.
    pub fn outbox_pending(&self, key: &EntityKey) -> Result<(i64, Option<i64>)> {
        self.read(|c| {
            Ok(c.query_row("SELECT count(*), min(queued_at) FROM outbox WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?)
        })
    }

    /// Changes of the entity waiting for delivery.
    pub fn outbox_count(&self, key: &EntityKey) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM outbox WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?))
    }

    /// Per target: changes waiting in the outboxes of the entities forwarding to it, and when
    /// the oldest of them was queued.
    pub fn outbox_by_target(&self) -> Result<Vec<(String, i64, Option<i64>)>> {
        self.read(|c| {
            Ok(c.query_all(
                "SELECT e.forward_to, count(o.id), min(o.queued_at) FROM entity_state e
                   LEFT JOIN outbox o ON o.connection = e.connection AND o.entity = e.entity
                  WHERE e.forward_to IS NOT NULL GROUP BY e.forward_to",
                params![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
    }

    /// The target's writes (every method but GET) logged since `since_ms`, newest first, at
    /// most `limit`.
    pub fn target_writes(&self, target: &str, since_ms: i64, limit: u32) -> Result<Vec<TargetWrite>> {
        self.flush()?;
        self.read(|c| {
            Ok(c.query_all(
                "SELECT at, status, error FROM request_log WHERE connection = ?1 AND at >= ?2 AND method <> 'GET' ORDER BY id DESC LIMIT ?3",
                params![target, since_ms, limit],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
    }

    /// The replica's current row for one id: (rowVersion, data, tombstoned).
    pub fn replica_row(&self, key: &EntityKey, id: &str) -> Result<Option<(String, String, bool)>> {
        let table = key.table();
        self.read(|c| {
            Ok(c.query_opt(
                &format!("SELECT row_version, data, deleted_at IS NOT NULL FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"),
                params![super::id_hash(id), id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
    }

    /// The target has the change: its outbox row goes (unless a newer change replaced it), a
    /// replayed failed item is resolved, and older delivery failures of the record are
    /// superseded. Returns how many were superseded.
    pub fn delivery_succeeded(&self, key: &EntityKey, record_id: &str, version: &str, kind: &str, replayed_item: Option<i64>, now_ms: i64) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM outbox WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND row_version = ?4 AND kind = ?5",
                params![key.connection, key.entity, record_id, version, kind],
            )?;
            // Delivered is synced: the mark at the source is queued with it.
            if kind == UPSERT && super::write_back::enabled(&tx, key)? {
                super::write_back::enqueue(&tx, key, record_id, super::id_hash(record_id), version, now_ms)?;
            }
            if let Some(fid) = replayed_item {
                tx.execute(
                    "UPDATE failed_items SET state = ?3, resolution = ?4, resolved_at = ?1, attempts = attempts + 1 WHERE id = ?2 AND state = ?5",
                    params![now_ms, fid, FailedState::Resolved, Resolution::Replayed, FailedState::Pending],
                )?;
            }
            let superseded = tx.execute(
                "UPDATE failed_items SET state = ?6, resolution = ?7, resolved_at = ?1
                 WHERE connection = ?2 AND entity = ?3 AND record_id = ?4 AND state = ?8 AND stage = ?9
                   AND (row_version IS NULL OR (length(row_version), row_version) <= (length(?5), ?5))",
                params![
                    now_ms,
                    key.connection,
                    key.entity,
                    record_id,
                    version,
                    FailedState::Resolved,
                    Resolution::Superseded,
                    FailedState::Pending,
                    FailedStage::Deliver
                ],
            )?;
            tx.commit()?;
            Ok(superseded)
        })
    }

    /// The target would not take the change (rejected, or the retries ran out): it becomes a
    /// failed item of stage `deliver` (or counts another attempt on the pending one) and leaves
    /// the outbox, so one bad record never holds up the others. Returns true when the item is new.
    /// `why` is the failure (`Rejected::of_record` of the item).
    pub fn delivery_failed(
        &self,
        key: &EntityKey,
        item: &OutboxItem,
        why: &Rejected,
        http_status: Option<u16>,
        tracking_id: Option<&str>,
        now_ms: i64,
    ) -> Result<bool> {
        self.fail_queued(key, why, FailedStage::Deliver, http_status, tracking_id, now_ms, |tx| {
            tx.execute(
                "DELETE FROM outbox WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND row_version = ?4 AND kind = ?5",
                params![key.connection, key.entity, item.record_id, item.row_version, item.kind],
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{apply, rec};
    use super::super::Store;
    use super::*;

    fn queued(store: &Store, key: &EntityKey) -> Vec<(String, String, String)> {
        store.outbox_batch(key, 0, 100).unwrap().into_iter().map(|o| (o.record_id, o.row_version, o.kind)).collect()
    }

    #[test]
    fn only_written_changes_are_queued_once_per_record_and_a_newer_one_is_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("replica.db")).unwrap();
        let key = EntityKey::new("c", "items");
        store.ensure_entity(&key).unwrap();
        apply(&store, &key, &[rec("a", "1")], &[]);
        assert!(queued(&store, &key).is_empty(), "an entity that forwards nowhere queues nothing");

        assert_eq!(store.set_forward_target(&key, Some("t"), 2).unwrap(), 1, "turning forwarding on queues what the replica holds");
        assert_eq!(store.set_forward_target(&key, Some("t"), 3).unwrap(), 0, "and only once");
        apply(&store, &key, &[rec("a", "5"), rec("b", "2")], &[]);
        apply(&store, &key, &[rec("a", "3")], &[]);
        assert_eq!(queued(&store, &key), vec![("a".into(), "5".into(), "upsert".into()), ("b".into(), "2".into(), "upsert".into())]);

        // "a" v5 is being delivered when v7 arrives: the delivery of v5 must not drop v7.
        let sending = store.outbox_batch(&key, 0, 1).unwrap().remove(0);
        assert_eq!(sending.data.as_deref(), Some(r#"{"id":"a","rowVersion":"5"}"#));
        apply(&store, &key, &[rec("a", "7")], &[]);
        store.delivery_succeeded(&key, "a", &sending.row_version, &sending.kind, None, 4).unwrap();
        assert_eq!(queued(&store, &key)[0], ("a".into(), "7".into(), "upsert".into()));

        // A failed delivery leaves the outbox as a failed item; delivering a newer version supersedes it.
        let b = store.outbox_batch(&key, 0, 100).unwrap().into_iter().find(|o| o.record_id == "b").unwrap();
        assert!(store.delivery_failed(&key, &b, &Rejected::of_record("b", "2", "{}", "target_rejected", "no"), Some(422), Some("tid"), 5).unwrap());
        assert_eq!(queued(&store, &key).len(), 1);
        apply(&store, &key, &[rec("b", "2")], &[]);
        assert_eq!(store.pending_failed_count(&key).unwrap(), 1, "re-reading the record does not resolve a delivery failure");
        apply(&store, &key, &[rec("b", "9")], &[]);
        assert_eq!(store.delivery_succeeded(&key, "b", "9", "upsert", None, 6).unwrap(), 1);
        assert_eq!(store.pending_failed_count(&key).unwrap(), 0);

        // A resync's deletions are queued with the tombstones.
        let (pass, _) = store.resync_begin(&key).unwrap();
        apply(&store, &key, &[rec("b", "9")], &[]);
        store.resync_finish(&key, pass, 1.0, false, 7).unwrap();
        assert!(queued(&store, &key).contains(&("a".into(), "7".into(), "delete".into())));

        store.set_forward_target(&key, None, 8).unwrap();
        assert!(queued(&store, &key).is_empty(), "turning forwarding off empties the outbox");
    }
}
