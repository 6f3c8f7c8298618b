//! The replica: one table per entity, the entity's state row, pages applied atomically, full
//! resync passes and their deletions.
//!
//! Invariants (the product's guarantees live here):
//! - A page's upserts, its failed items and the checkpoint advance commit in ONE transaction, so a
//!   crash at any instant resumes from the last committed page: no lost change, no duplicate.
//! - An older rowVersion never overwrites a newer one. Versions are canonical decimal text and
//!   compare as `(length(v), v)`, i.e. as unsigned integers of any length, in SQL as in Rust.
//!   Timestamp feeds (`PageBatch::rereads_checkpoint`) also compare content at the SAME version
//!   (coarse clocks: an edit within the second already read); an older one is still skipped.
//! - The checkpoint only moves forward.
//! - A full resync marks every id it receives with the pass number (`seen_pass`); only when the whole
//!   pass has completed are unseen rows tombstoned (`deleted_at`), and only under the deletion guard.
//!
//! Layout: one table per entity, `replica_<connection>_<entity>` with an integer rowid (so the
//! B-tree is not keyed by random UUID text) and an index on the id's hash; plain SQL can read it.

use super::checkpoints::HISTORY_EVERY_MS;
use super::db::{Db, DbResult, Dialect};
use super::replica_rows::{BulkRows, DirectRows, Queues, ReplicaRows};
use super::{outbox, record_failure, two_way, write_back, EntityKey, Result, Store, StoreError};
use crate::record::{Record, Rejected};
use crate::rowversion::RowVersion;
use crate::state::{FailedStage, FailedState, Resolution, ResyncState};
use rusqlite::params;
use serde::Serialize;

/// What a page contributes to the replica, applied atomically by [`Store::apply_page`].
pub struct PageBatch<'a> {
    pub records: &'a [Record],
    pub rejected: &'a [Rejected],
    pub tracking_id: Option<&'a str>,
    pub http_status: Option<u16>,
    /// Highest version in the page; the checkpoint becomes max(checkpoint, this).
    pub max_version: Option<&'a RowVersion>,
    /// During a full resync: the pass's own cursor advances too.
    pub resync_cursor: Option<&'a RowVersion>,
    /// The feed reads the records at its checkpoint again and serves each record as it is now
    /// (timestamp feeds): a record the replica holds at the same version is compared by content,
    /// applied when it differs (an edit within the same timestamp), and when it does not, neither
    /// written nor counted in the run. An older version is skipped, as for every profile.
    pub rereads_checkpoint: bool,
    pub run_id: i64,
    pub now_ms: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub rows_written: usize,
    pub failed_new: usize,
    pub superseded: usize,
    /// Records of `rereads_checkpoint` batches the replica already held (the same, or newer):
    /// not written, not forwarded, not counted as records of the run.
    pub unchanged: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplicaRow {
    pub id: String,
    #[serde(rename = "rowVersion")]
    pub row_version: String,
    pub data: Box<serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

/// What a transaction that applies pages starts from, read from the entity's state: (checkpoint,
/// resync pass, live replica rows, whether it forwards to a target, whether failed items are pending).
pub(super) fn pages_start(tx: &Db, key: &EntityKey) -> DbResult<(String, i64, i64, bool, bool)> {
    tx.query_row(
        "SELECT checkpoint, resync_pass, replica_rows, forward_to IS NOT NULL, pending_failed > 0 FROM entity_state WHERE connection = ?1 AND entity = ?2",
        params![key.connection, key.entity],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
}

/// The end of a full resync pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct PassEnd {
    pub live_before: i64,
    pub unseen: i64,
    pub deleted: i64,
    pub guard_tripped: bool,
}

impl Store {
    /// Creates the entity's state row and replica table if they do not exist yet.
    pub fn ensure_entity(&self, key: &EntityKey) -> Result<()> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            let owner: Option<(String, String)> =
                tx.query_opt("SELECT connection, entity FROM entity_state WHERE replica_table = ?1", params![table], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if let Some((conn, ent)) = owner {
                if conn != key.connection || ent != key.entity {
                    return Err(StoreError::NotFound(format!("entity {key} would share the replica table `{table}` with {conn}/{ent}; rename one of them")));
                }
            }
            tx.execute(
                "INSERT INTO entity_state (connection, entity, replica_table) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![key.connection, key.entity, table],
            )?;
            // The same columns on both; PostgreSQL's rowid is an identity column (`schema_pg.rs`).
            if tx.dialect() == Dialect::Postgres {
                tx.execute_batch(&super::schema_pg::replica_table_ddl(&table))?;
                tx.commit()?;
                return Ok(());
            }
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS \"{table}\" (
                    rowid INTEGER PRIMARY KEY,
                    id TEXT NOT NULL,
                    id_hash INTEGER NOT NULL,
                    row_version TEXT NOT NULL,
                    data TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    deleted_at INTEGER,
                    seen_pass INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX IF NOT EXISTS \"{table}_by_id_hash\" ON \"{table}\" (id_hash);"
            ))?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Applies pages atomically, in feed order, in one transaction: upserts (older never
    /// overwrites newer), failed items, superseded failed items, run progress, checkpoint and
    /// resync cursor. Several pages per transaction are as exact as one: the checkpoint written
    /// is the highest version among exactly the rows committed with it.
    pub fn apply_pages(&self, key: &EntityKey, pages: &[PageBatch]) -> Result<Applied> {
        self.apply_pages_then(key, pages, FailedStage::Validate, |_, _| Ok(()))
    }

    /// [`Store::apply_pages`] with the rejected records as failed items of `stage`, and `then`
    /// run inside the same transaction before it commits (a pushed batch records its outcome).
    pub(super) fn apply_pages_then(
        &self,
        key: &EntityKey,
        pages: &[PageBatch],
        stage: FailedStage,
        then: impl FnOnce(&Db, &Applied) -> Result<()>,
    ) -> Result<Applied> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            // Several agents: only the entity's lease holder writes its pages.
            self.check_fence(&tx, key)?;
            let mut applied = Applied::default();
            let (checkpoint, pass, live_before, forwarding, _) = pages_start(&tx, key)?;
            let pair = if forwarding { two_way::rules(&tx, key)? } else { None };
            // A forwarded record is marked once delivered (queued in `delivery_succeeded`).
            let mark = !forwarding && write_back::enabled(&tx, key)?;
            let mut live_delta = 0i64;
            let mut first_seen_live = 0i64;
            {
                // SQLite: a statement per row; PostgreSQL: the batch's rows read at once, the
                // writes sent as multi-row statements before the rest of the transaction.
                let mut queues = Queues::new(&tx, key);
                let mut table_rows: Box<dyn ReplicaRows> = match tx.dialect() {
                    Dialect::Sqlite => Box::new(DirectRows::new(&tx, &table)?),
                    Dialect::Postgres => {
                        let ids = pages.iter().flat_map(|b| b.records.iter().map(|r| r.id.as_str()).chain(b.rejected.iter().filter_map(|r| r.id.as_deref())));
                        Box::new(BulkRows::prefetch(&tx, &table, ids.map(|id| (id_hash(id), id)), pages.iter().any(|b| b.rereads_checkpoint))?)
                    }
                };
                let mut rows: Vec<(i64, &Record, &PageBatch)> = pages.iter().flat_map(|b| b.records.iter().map(move |r| (id_hash(&r.id), r, b))).collect();
                rows.sort_by_key(|(hash, _, _)| *hash);
                for (hash, r, b) in rows {
                    let now_ms = b.now_ms;
                    let existing = table_rows.find(hash, &r.id)?.map(|e| (e.rowid, e.version, e.deleted, e.seen));
                    match existing {
                        None => {
                            table_rows.insert(&r.id, hash, r.version.as_str(), &r.data, now_ms, pass)?;
                            applied.rows_written += 1;
                            live_delta += 1;
                            if forwarding && !two_way::is_echo(&tx, key, pair.as_ref(), &r.id, &r.data)? {
                                queues.forward(&r.id, hash, r.version.as_str(), now_ms)?;
                            }
                            if mark {
                                queues.mark(&r.id, hash, r.version.as_str(), now_ms)?;
                            }
                        }
                        Some((rowid, old, deleted, seen)) => {
                            // A live row a pass under way sees for the first time: one deletion fewer at its end.
                            if !deleted && seen < pass {
                                first_seen_live += 1;
                            }
                            // Newer wins; and a tombstone yields to the same version served again:
                            // the source still has the record (the pass that tombstoned it missed
                            // it, e.g. served without its id), so the row lives again.
                            let old = RowVersion::parse(&old);
                            // A timestamp feed's clock is coarse: other content at the same
                            // timestamp is an edit within that second. An older timestamp never
                            // overwrites a newer one, whatever its content (a clock set back).
                            let edited = b.rereads_checkpoint && old.as_ref().is_some_and(|old| r.version == *old) && !table_rows.same_data(rowid, &r.data)?;
                            if edited || old.is_none_or(|old| r.version > old || (deleted && r.version >= old)) {
                                table_rows.update(rowid, r.version.as_str(), &r.data, now_ms, pass)?;
                                applied.rows_written += 1;
                                if deleted {
                                    live_delta += 1;
                                }
                                // Same transaction as the upsert: a change written is a change forwarded
                                // (except Syncmon's own write coming back in a two-way pair).
                                if forwarding && !two_way::is_echo(&tx, key, pair.as_ref(), &r.id, &r.data)? {
                                    queues.forward(&r.id, hash, r.version.as_str(), now_ms)?;
                                }
                                if mark {
                                    queues.mark(&r.id, hash, r.version.as_str(), now_ms)?;
                                }
                            } else {
                                if b.rereads_checkpoint {
                                    applied.unchanged += 1;
                                }
                                if pass > seen {
                                    table_rows.mark_seen(rowid, pass)?;
                                }
                            }
                        }
                    }
                }
                // A record rejected with its id (e.g. no rowVersion) still exists at the source: a
                // pass must not tombstone the row it had.
                for rej in pages.iter().flat_map(|b| b.rejected) {
                    let Some(id) = rej.id.as_deref() else { continue };
                    let existing = table_rows.find(id_hash(id), id)?.map(|e| (e.rowid, e.deleted, e.seen));
                    if let Some((rowid, deleted, _)) = existing.filter(|(_, _, seen)| pass > *seen) {
                        table_rows.mark_seen(rowid, pass)?;
                        if !deleted {
                            first_seen_live += 1;
                        }
                    }
                }
                table_rows.flush()?;
                queues.flush()?;
            }
            let has_pending: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM failed_items WHERE state = ?3 AND connection = ?1 AND entity = ?2)",
                params![key.connection, key.entity, FailedState::Pending],
                |r| r.get(0),
            )?;
            if has_pending {
                // A record that has since synced fine clears its failed items (superseded). Not
                // delivery failures: reading a record again says nothing about the target having it.
                let supersede = tx.prepare(
                    "UPDATE failed_items SET state = ?6, resolution = ?7, resolved_at = ?1
                     WHERE connection = ?2 AND entity = ?3 AND record_id = ?4 AND state = ?8 AND stage <> ?9
                       AND (row_version IS NULL OR (length(row_version), row_version) <= (length(?5), ?5))",
                )?;
                let (resolved, superseded, pending, deliver) = (FailedState::Resolved, Resolution::Superseded, FailedState::Pending, FailedStage::Deliver);
                for b in pages {
                    for r in b.records {
                        applied.superseded += supersede.execute(params![
                            b.now_ms,
                            key.connection,
                            key.entity,
                            r.id,
                            r.version.as_str(),
                            resolved,
                            superseded,
                            pending,
                            deliver
                        ])?;
                    }
                }
            }
            let mut checkpoint = RowVersion::parse(&checkpoint).unwrap_or_default();
            let mut checkpoint_moved = false;
            let mut resync_cursor = None;
            let (mut records, mut rejected) = (0i64, 0i64);
            for b in pages {
                for rej in b.rejected {
                    if record_failure(&tx, key, rej, stage, b.http_status, b.tracking_id, b.now_ms)? {
                        applied.failed_new += 1;
                    }
                }
                records += b.records.len() as i64;
                rejected += b.rejected.len() as i64;
                if let Some(v) = b.max_version.filter(|v| **v > checkpoint) {
                    checkpoint = v.clone();
                    checkpoint_moved = true;
                }
                if b.resync_cursor.is_some() {
                    resync_cursor = b.resync_cursor;
                }
            }
            if let Some(last) = pages.last() {
                tx.execute(
                    "UPDATE runs SET pages = pages + ?1, records = records + ?2, failed_records = failed_records + ?3 WHERE id = ?4",
                    params![pages.len() as i64, records - applied.unchanged as i64, rejected, last.run_id],
                )?;
            }
            if checkpoint_moved {
                tx.execute(
                    "UPDATE entity_state SET checkpoint = ?1 WHERE connection = ?2 AND entity = ?3",
                    params![checkpoint.as_str(), key.connection, key.entity],
                )?;
                // History inside a long cycle too (an initial load of hours), so that a lookback
                // sweep can start from where the load was `lookback` ago rather than from 0. A
                // short cycle adds no point besides the one at its end (`finish_run`).
                let (now_ms, run_id) = pages.last().map_or((0, 0), |b| (b.now_ms, b.run_id));
                let since: Option<i64> = tx.query_row(
                    "SELECT CASE WHEN history > started THEN history ELSE started END FROM (SELECT
                       coalesce((SELECT max(at) FROM checkpoint_history WHERE connection = ?1 AND entity = ?2), ?4) AS history,
                       coalesce((SELECT started_at FROM runs WHERE id = ?3), ?4) AS started) AS t",
                    params![key.connection, key.entity, run_id, i64::MIN],
                    |r| r.get(0),
                )?;
                if since.is_none_or(|t| now_ms.saturating_sub(t) >= HISTORY_EVERY_MS) {
                    tx.execute(
                        "INSERT INTO checkpoint_history (connection, entity, at, checkpoint) VALUES (?1, ?2, ?3, ?4)",
                        params![key.connection, key.entity, now_ms, checkpoint.as_str()],
                    )?;
                }
            }
            if let Some(cursor) = resync_cursor {
                tx.execute(
                    "UPDATE entity_state SET resync_cursor = ?1, resync_seen = resync_seen + ?2 WHERE connection = ?3 AND entity = ?4",
                    params![cursor.as_str(), records + rejected, key.connection, key.entity],
                )?;
            }
            if live_delta != 0 {
                set_replica_rows(&tx, key, live_before + live_delta)?;
            }
            if first_seen_live > 0 {
                // A pass under way counts down the deletions it would make at its end.
                tx.execute(
                    "UPDATE entity_state SET resync_would_delete = CASE WHEN resync_would_delete - ?1 < 0 THEN 0 ELSE resync_would_delete - ?1 END
                     WHERE connection = ?2 AND entity = ?3 AND resync_state = ?4",
                    params![first_seen_live, key.connection, key.entity, ResyncState::Running],
                )?;
            }
            then(&tx, &applied)?;
            tx.commit()?;
            Ok(applied)
        })
    }

    /// One page: see [`Store::apply_pages`].
    pub fn apply_page(&self, key: &EntityKey, b: &PageBatch) -> Result<Applied> {
        self.apply_pages(key, std::slice::from_ref(b))
    }

    /// Applies one record outside a page (replay): the same upsert rule, and the failed item resolved.
    pub fn apply_replayed(&self, key: &EntityKey, record: &Record, failed_id: i64, now_ms: i64) -> Result<bool> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            self.check_fence(&tx, key)?;
            let hash = id_hash(&record.id);
            let existing: Option<(i64, String, bool)> = tx.query_opt(
                &format!("SELECT rowid, row_version, deleted_at IS NOT NULL FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"),
                params![hash, record.id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let newer_in_replica = existing.as_ref().is_some_and(|(_, v, deleted)| !deleted && RowVersion::parse(v).is_some_and(|v| v > record.version));
            let resolution = if newer_in_replica { Resolution::Superseded } else { Resolution::Replayed };
            if !newer_in_replica {
                let (pass, live, forwarding): (i64, i64, bool) = tx.query_row(
                    "SELECT resync_pass, replica_rows, forward_to IS NOT NULL FROM entity_state WHERE connection = ?1 AND entity = ?2",
                    params![key.connection, key.entity],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?;
                if forwarding {
                    outbox::enqueue(&tx, key, &record.id, hash, record.version.as_str(), outbox::UPSERT, now_ms)?;
                }
                match existing {
                    Some((rowid, _, deleted)) => {
                        tx.execute(
                            &format!(
                                "UPDATE \"{table}\" SET row_version = ?2, data = ?3, updated_at = ?4, deleted_at = NULL,
                                   seen_pass = CASE WHEN seen_pass > ?5 THEN seen_pass ELSE ?5 END WHERE rowid = ?1"
                            ),
                            params![rowid, record.version.as_str(), record.data, now_ms, pass],
                        )?;
                        if deleted {
                            set_replica_rows(&tx, key, live + 1)?;
                        }
                    }
                    None => {
                        tx.execute(
                            &format!(
                                "INSERT INTO \"{table}\" (id, id_hash, row_version, data, updated_at, deleted_at, seen_pass)
                                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)"
                            ),
                            params![record.id, hash, record.version.as_str(), record.data, now_ms, pass],
                        )?;
                        set_replica_rows(&tx, key, live + 1)?;
                    }
                }
            }
            tx.execute(
                "UPDATE failed_items SET state = ?4, resolution = ?1, resolved_at = ?2, attempts = attempts + 1 WHERE id = ?3",
                params![resolution, now_ms, failed_id, FailedState::Resolved],
            )?;
            tx.commit()?;
            Ok(newer_in_replica)
        })
    }

    /// Starts a full resync pass, or resumes the one in progress. Returns (pass, cursor).
    pub fn resync_begin(&self, key: &EntityKey) -> Result<(i64, RowVersion)> {
        self.write(|c| {
            let tx = c.transaction()?;
            let (pass, state, cursor): (i64, Option<ResyncState>, Option<String>) = tx.query_row(
                "SELECT resync_pass, resync_state, resync_cursor FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let out = if state == Some(ResyncState::Running) {
                (pass, cursor.and_then(|c| RowVersion::parse(&c)).unwrap_or_default())
            } else {
                tx.execute(
                    "UPDATE entity_state SET resync_pass = resync_pass + 1, resync_state = ?3, resync_cursor = '0',
                       resync_seen = 0, resync_would_delete = replica_rows WHERE connection = ?1 AND entity = ?2",
                    params![key.connection, key.entity, ResyncState::Running],
                )?;
                (pass + 1, RowVersion::zero())
            };
            tx.commit()?;
            Ok(out)
        })
    }

    /// Ends a completed pass: tombstones the live rows it did not see, unless that is more than
    /// `guard` of them and deletions were not allowed, in which case it stops and asks.
    pub fn resync_finish(&self, key: &EntityKey, pass: i64, guard: f64, allow_deletions: bool, now_ms: i64) -> Result<PassEnd> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            self.check_fence(&tx, key)?;
            let live: i64 = tx.query_row(&format!("SELECT count(*) FROM \"{table}\" WHERE deleted_at IS NULL"), params![], |r| r.get(0))?;
            let unseen: i64 =
                tx.query_row(&format!("SELECT count(*) FROM \"{table}\" WHERE deleted_at IS NULL AND seen_pass < ?1"), params![pass], |r| r.get(0))?;
            let tripped = live > 0 && (unseen as f64) > guard * (live as f64) && !allow_deletions;
            let deleted = if tripped {
                tx.execute(
                    "UPDATE entity_state SET resync_state = ?4, resync_would_delete = ?1 WHERE connection = ?2 AND entity = ?3",
                    params![unseen, key.connection, key.entity, ResyncState::GuardTripped],
                )?;
                0
            } else {
                outbox::enqueue_unseen_deletions(&tx, key, pass, now_ms)?;
                let n = tx.execute(
                    &format!("UPDATE \"{table}\" SET deleted_at = ?1, updated_at = ?1 WHERE deleted_at IS NULL AND seen_pass < ?2"),
                    params![now_ms, pass],
                )? as i64;
                tx.execute(
                    "UPDATE entity_state SET resync_state = NULL, resync_cursor = NULL, resync_would_delete = NULL,
                       last_full_resync_at = ?1 WHERE connection = ?2 AND entity = ?3",
                    params![now_ms, key.connection, key.entity],
                )?;
                // A full pass is also when the live-row counter is re-based on an exact count.
                set_replica_rows(&tx, key, live - n)?;
                n
            };
            tx.commit()?;
            Ok(PassEnd { live_before: live, unseen, deleted, guard_tripped: tripped })
        })
    }

    /// Live rows in the replica, from the counter every write keeps exact (not a table scan).
    pub fn replica_count(&self, key: &EntityKey) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row("SELECT replica_rows FROM entity_state WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?)
        })
    }
}

fn set_replica_rows(tx: &Db, key: &EntityKey, n: i64) -> DbResult<()> {
    tx.execute("UPDATE entity_state SET replica_rows = ?1 WHERE connection = ?2 AND entity = ?3", params![n, key.connection, key.entity])?;
    Ok(())
}

/// The replica's lookup key: FNV-1a (64 bit) of the id. Replica tables are keyed by an integer
/// rowid in arrival order with an index on this hash rather than a unique index on the id text:
/// random text keys (UUIDs) make every page dirty hundreds of wide index pages, which bounds
/// initial syncs at a third of the speed. Collisions are harmless: lookups also compare `id`.
/// The function is fixed forever: stored hashes must stay valid across versions.
pub fn id_hash(id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{apply, rec, setup};
    use super::*;
    use crate::state::RunKind;
    use crate::store::FailedFilter;

    fn version_of(store: &Store, key: &EntityKey, id: &str) -> String {
        let mut v = None;
        store
            .for_each_replica_row(key, true, |r| {
                if r.id == id {
                    v = Some(r.row_version.clone());
                }
                Ok(())
            })
            .unwrap();
        v.unwrap()
    }

    /// A replica of ten rows, `r0` to `r9` at versions 1 to 10, and the records that made it.
    fn ten_rows() -> (tempfile::TempDir, Store, EntityKey, Vec<Record>) {
        let (d, store, key) = setup();
        let all: Vec<Record> = (0..10).map(|i| rec(&format!("r{i}"), &format!("{}", i + 1))).collect();
        apply(&store, &key, &all, &[]);
        (d, store, key, all)
    }

    #[test]
    fn id_hash_is_fnv1a_forever() {
        // Stored hashes must stay valid across versions: these are FNV-1a 64 reference values.
        assert_eq!(id_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_eq!(id_hash("a"), 0xaf63_dc4c_8601_ec8c_u64 as i64);
        assert_eq!(id_hash("foobar"), 0x8594_4171_f739_67e8_u64 as i64);
    }

    #[test]
    fn an_older_version_never_overwrites_a_newer_one_even_across_a_digit() {
        let (_d, store, key) = setup();
        apply(&store, &key, &[rec("a", "1000000")], &[]);
        apply(&store, &key, &[rec("a", "999999")], &[]);
        assert_eq!(version_of(&store, &key, "a"), "1000000");
        assert_eq!(store.entity(&key).unwrap().checkpoint.as_str(), "1000000", "the checkpoint never moves back");
    }

    #[test]
    fn the_same_id_twice_in_a_page_keeps_the_highest_version() {
        let (_d, store, key) = setup();
        apply(&store, &key, &[rec("a", "7"), rec("a", "5")], &[]);
        assert_eq!(version_of(&store, &key, "a"), "7");
        assert_eq!(store.replica_count(&key).unwrap(), 1);
    }

    #[test]
    fn a_rejected_record_is_counted_once_per_record_and_superseded_when_it_syncs() {
        let (_d, store, key) = setup();
        let rej = Rejected { id: Some("b".into()), version: None, payload: "{}".into(), kind: "missing_row_version", message: "m".into(), rule: None };
        assert_eq!(apply(&store, &key, &[], std::slice::from_ref(&rej)).failed_new, 1);
        assert_eq!(apply(&store, &key, &[], std::slice::from_ref(&rej)).failed_new, 0, "a re-read must not add a duplicate");
        let items = store.failed_items(&FailedFilter::default(), None, 10).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].attempts, 2);
        assert_eq!(items[0].tracking_id.as_deref(), Some("t"));
        assert_eq!(apply(&store, &key, &[rec("b", "9")], &[]).superseded, 1);
        assert_eq!(store.pending_failed_count(&key).unwrap(), 0);
    }

    #[test]
    fn a_resync_tombstones_only_unseen_rows_and_the_guard_stops_a_mass_deletion() {
        let (_d, store, key, all) = ten_rows();
        let (pass, cursor) = store.resync_begin(&key).unwrap();
        assert_eq!(cursor, RowVersion::zero());
        apply(&store, &key, &all[..8], &[]);
        let end = store.resync_finish(&key, pass, 0.5, false, 5).unwrap();
        assert_eq!(end, PassEnd { live_before: 10, unseen: 2, deleted: 2, guard_tripped: false });
        assert_eq!(store.replica_count(&key).unwrap(), 8);

        let (pass, _) = store.resync_begin(&key).unwrap();
        apply(&store, &key, &all[..1], &[]);
        let end = store.resync_finish(&key, pass, 0.5, false, 6).unwrap();
        assert!(end.guard_tripped && end.deleted == 0 && end.unseen == 7, "{end:?}");
        assert_eq!(store.entity(&key).unwrap().resync_state, Some(ResyncState::GuardTripped));
        let end = store.resync_finish(&key, pass, 0.5, true, 7).unwrap();
        assert_eq!(end.deleted, 7);
        assert_eq!(store.replica_count(&key).unwrap(), 1);
    }

    #[test]
    fn a_resync_does_not_tombstone_a_row_whose_record_came_back_rejected() {
        let (_d, store, key, all) = ten_rows();
        let (pass, _) = store.resync_begin(&key).unwrap();
        let poisoned: Vec<Rejected> = ["r8", "r9"]
            .iter()
            .map(|id| Rejected { id: Some((*id).into()), version: None, payload: "{}".into(), kind: "missing_row_version", message: "m".into(), rule: None })
            .collect();
        apply(&store, &key, &all[..8], &poisoned);
        let end = store.resync_finish(&key, pass, 0.5, false, 5).unwrap();
        assert_eq!(end, PassEnd { live_before: 10, unseen: 0, deleted: 0, guard_tripped: false });
        assert_eq!(store.replica_count(&key).unwrap(), 10);
    }

    #[test]
    fn an_interrupted_resync_resumes_from_its_cursor() {
        let (_d, store, key) = setup();
        let (pass, _) = store.resync_begin(&key).unwrap();
        let run = store.begin_run(&key, RunKind::Resync, 1).unwrap();
        let records = [rec("a", "5")];
        store
            .apply_page(
                &key,
                &PageBatch {
                    records: &records,
                    rejected: &[],
                    tracking_id: None,
                    http_status: None,
                    max_version: Some(&records[0].version),
                    resync_cursor: Some(&records[0].version),
                    rereads_checkpoint: false,
                    run_id: run,
                    now_ms: 1,
                },
            )
            .unwrap();
        drop(store);
        let store = Store::open(&_d.path().join("replica.db")).unwrap();
        assert_eq!(store.resync_begin(&key).unwrap(), (pass, RowVersion::from(5)));
        assert_eq!(store.runs(&key, 5).unwrap()[0].outcome, crate::state::UnfinishedRun::Interrupted);
    }
}
