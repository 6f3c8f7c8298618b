//! Snapshot passes (`profile = "snapshot"`): a feed with no version, read whole on every poll.
//!
//! - Each replica row keeps a content hash (`content_hash`, the first 8 bytes of the record's
//!   SHA-256, added to the entity's table when it first syncs as a snapshot). A record whose hash
//!   is unchanged is not written, not counted and not forwarded: a pass over an unchanged
//!   snapshot writes no replica row.
//! - `row_version` is a local change counter: every row written takes the entity's next number,
//!   and the checkpoint is the highest number given, so export, status and forwarding read a
//!   snapshot entity as any other.
//! - The ids a pass has seen are the replica rowids in a TEMP table of the writer connection
//!   (`snapshot_seen_<table>`), emptied when a pass begins: SQLite holds them (its bounded page
//!   cache, spilling to a temporary file), never Rust's heap, and nothing of them reaches the
//!   database file. A crash loses them with the pass, which starts again from the first page.
//! - Only a COMPLETE pass deletes: the live rows it did not see are marked (`seen_pass = -1`)
//!   and [`Store::resync_finish`] tombstones them under the deletion guard, as a full resync.

use super::db::{Db, DbResult, Dialect};
use super::replica::{id_hash, pages_start};
use super::{outbox, record_failure, Applied, EntityKey, PageBatch, PassEnd, Result, Store};
use crate::record::Record;
use crate::state::{FailedStage, FailedState, Resolution};
use rusqlite::params;
use sha2::{Digest, Sha256};

/// The `seen_pass` mark of a live row that a complete snapshot pass did not see. Real resync
/// passes are numbered from 1, so `resync_finish` with pass 0 deletes exactly the marked rows.
const UNSEEN: i64 = -1;

/// The content hash a snapshot row is compared by: the first 8 bytes of SHA-256 of the record's
/// canonical form (object keys sorted at every depth), so a source that serializes the same
/// record with its keys in another order is not "changed". A replica whose rows were hashed over
/// the served text before this rule sees each row differ once: one pass rewrites them with new
/// change numbers (and forwards them again, which targets take as upserts); nothing is deleted,
/// since deletions follow the ids a pass saw, never the hashes.
pub fn content_hash(data: &str) -> i64 {
    let mut h = Sha256::new();
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(v) => hash_canonical(&v, &mut h),
        // Records reach the replica only as JSON; should one not parse, its text is its content.
        Err(_) => h.update(data.as_bytes()),
    }
    let digest = h.finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// [`content_hash`] of a parsed record.
pub(super) fn value_hash(v: &serde_json::Value) -> i64 {
    let mut h = Sha256::new();
    hash_canonical(v, &mut h);
    let digest = h.finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

/// Feeds `v` to `h` as compact JSON with sorted object keys, without building the text.
fn hash_canonical(v: &serde_json::Value, h: &mut Sha256) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            h.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                h.update(Value::String(k.clone()).to_string().as_bytes());
                h.update(b":");
                hash_canonical(&map[k], h);
            }
            h.update(b"}");
        }
        Value::Array(items) => {
            h.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                hash_canonical(item, h);
            }
            h.update(b"]");
        }
        scalar => h.update(scalar.to_string().as_bytes()),
    }
}

fn seen_table(key: &EntityKey) -> String {
    format!("snapshot_seen_{}", key.table())
}

/// The schema of the connection's temporary tables.
fn temp_schema(c: &Db) -> &'static str {
    match c.dialect() {
        Dialect::Sqlite => "temp",
        Dialect::Postgres => "pg_temp",
    }
}

impl Store {
    /// Begins a snapshot pass: the table gets its `content_hash` column if it has none, and the
    /// set of ids seen starts empty (an interrupted pass before it counts for nothing).
    pub fn snapshot_begin(&self, key: &EntityKey) -> Result<()> {
        let (table, seen) = (key.table(), seen_table(key));
        self.write(|c| {
            let sqlite = c.dialect() == Dialect::Sqlite;
            let has_hash = if sqlite {
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = 'content_hash')"
            } else {
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = CAST(?1 AS TEXT) AND column_name = 'content_hash')"
            };
            if !c.query_row(has_hash, params![table], |r| r.get::<_, bool>(0))? {
                // 64 bits: SQLite's INTEGER, PostgreSQL's BIGINT.
                c.execute_batch(&format!("ALTER TABLE \"{table}\" ADD COLUMN content_hash {}", if sqlite { "INTEGER" } else { "BIGINT" }))?;
            }
            if sqlite {
                // The seen set needs no rollback journal on disk (it is rebuilt by every pass): with
                // one, each page's commit wrote a journal file, most of what an unchanged poll wrote.
                c.execute_batch("PRAGMA temp.journal_mode = MEMORY")?;
            }
            // A temporary table of the writer's connection (a session on PostgreSQL).
            let temp = temp_schema(c);
            c.execute_batch(&format!("CREATE TEMP TABLE IF NOT EXISTS \"{seen}\" (row BIGINT PRIMARY KEY); DELETE FROM {temp}.\"{seen}\";"))?;
            Ok(())
        })
    }

    /// Applies the pages of a snapshot pass in one transaction: new and changed records are
    /// written with the next change numbers (and queued for forwarding), unchanged ones are only
    /// noted as seen; rejected records become failed items (and their rows count as seen).
    pub fn apply_snapshot_pages(&self, key: &EntityKey, pages: &[PageBatch]) -> Result<Applied> {
        let (table, seen) = (key.table(), seen_table(key));
        self.write(|c| {
            let tx = c.transaction()?;
            self.check_fence(&tx, key)?;
            let mut applied = Applied::default();
            let (counter, _, live_before, forwarding, has_pending) = pages_start(&tx, key)?;
            let mut counter: u64 = counter.parse().unwrap_or(0);
            let first_counter = counter;
            let mut live_delta = 0i64;
            {
                let temp = temp_schema(&tx);
                let mark_seen = tx.prepare(&format!("INSERT INTO {temp}.\"{seen}\" (row) VALUES (?1) ON CONFLICT DO NOTHING"))?;
                let supersede = tx.prepare(
                    "UPDATE failed_items SET state = ?5, resolution = ?6, resolved_at = ?1
                     WHERE connection = ?2 AND entity = ?3 AND record_id = ?4 AND state = ?7 AND stage <> ?8",
                )?;
                let (resolved, superseded, pending, deliver) = (FailedState::Resolved, Resolution::Superseded, FailedState::Pending, FailedStage::Deliver);
                // In id_hash order, as `apply_pages`: the index is walked front to back.
                let mut rows: Vec<(i64, &Record, i64)> = pages.iter().flat_map(|b| b.records.iter().map(move |r| (id_hash(&r.id), r, b.now_ms))).collect();
                rows.sort_by_key(|(hash, _, _)| *hash);
                for (hash, r, now_ms) in rows {
                    let w = write_record(&tx, key, r, hash, now_ms, &mut counter, forwarding)?;
                    applied.rows_written += usize::from(w.written);
                    live_delta += i64::from(w.revived_or_new);
                    mark_seen.execute(params![w.rowid])?;
                    if has_pending {
                        applied.superseded += supersede.execute(params![now_ms, key.connection, key.entity, r.id, resolved, superseded, pending, deliver])?;
                    }
                }
                // A record rejected with its id still exists at the source: its row is not deleted.
                let find = tx.prepare(&format!("SELECT rowid FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"))?;
                for rej in pages.iter().flat_map(|b| b.rejected) {
                    let Some(id) = rej.id.as_deref() else { continue };
                    if let Some(rowid) = find.query_opt(params![id_hash(id), id], |row| row.get::<_, i64>(0))? {
                        mark_seen.execute(params![rowid])?;
                    }
                }
            }
            let (mut records, mut rejected) = (0i64, 0i64);
            for b in pages {
                for rej in b.rejected {
                    if record_failure(&tx, key, rej, FailedStage::Validate, b.http_status, b.tracking_id, b.now_ms)? {
                        applied.failed_new += 1;
                    }
                }
                records += b.records.len() as i64;
                rejected += b.rejected.len() as i64;
            }
            if let Some(last) = pages.last() {
                tx.execute(
                    "UPDATE runs SET pages = pages + ?1, records = records + ?2, failed_records = failed_records + ?3 WHERE id = ?4",
                    params![pages.len() as i64, records, rejected, last.run_id],
                )?;
            }
            if counter != first_counter || live_delta != 0 {
                tx.execute(
                    "UPDATE entity_state SET checkpoint = ?1, replica_rows = ?2 WHERE connection = ?3 AND entity = ?4",
                    params![counter.to_string(), live_before + live_delta, key.connection, key.entity],
                )?;
            }
            tx.commit()?;
            Ok(applied)
        })
    }

    /// Applies a replayed record of a snapshot entity (a failed item that now validates): written
    /// as in a pass (content hash, next change number) outside any pass, and the item resolved.
    pub fn apply_snapshot_replayed(&self, key: &EntityKey, record: &Record, failed_id: i64, now_ms: i64) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            let (counter, live, forwarding): (String, i64, bool) = tx.query_row(
                "SELECT checkpoint, replica_rows, forward_to IS NOT NULL FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let mut counter: u64 = counter.parse().unwrap_or(0);
            let w = write_record(&tx, key, record, id_hash(&record.id), now_ms, &mut counter, forwarding)?;
            tx.execute(
                "UPDATE entity_state SET checkpoint = ?1, replica_rows = ?2 WHERE connection = ?3 AND entity = ?4",
                params![counter.to_string(), live + i64::from(w.revived_or_new), key.connection, key.entity],
            )?;
            tx.execute(
                "UPDATE failed_items SET state = ?3, resolution = ?4, resolved_at = ?1, attempts = attempts + 1 WHERE id = ?2",
                params![now_ms, failed_id, FailedState::Resolved, Resolution::Replayed],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Ends a COMPLETE snapshot pass: the live rows it did not see are deleted (tombstones, and
    /// forwarded deletions) under the deletion guard, exactly as at the end of a full resync.
    pub fn snapshot_finish(&self, key: &EntityKey, guard: f64, allow_deletions: bool, now_ms: i64) -> Result<PassEnd> {
        let (table, seen) = (key.table(), seen_table(key));
        self.write(|c| {
            let tx = c.transaction()?;
            self.check_fence(&tx, key)?;
            // Marks left by a pass the guard stopped are this pass's to decide again.
            tx.execute(&format!("UPDATE \"{table}\" SET seen_pass = 0 WHERE seen_pass = ?1"), params![UNSEEN])?;
            let temp = temp_schema(&tx);
            tx.execute(
                &format!("UPDATE \"{table}\" SET seen_pass = ?1 WHERE deleted_at IS NULL AND rowid NOT IN (SELECT row FROM {temp}.\"{seen}\")"),
                params![UNSEEN],
            )?;
            tx.commit()?;
            Ok(())
        })?;
        self.resync_finish(key, UNSEEN + 1, guard, allow_deletions, now_ms)
    }
}

/// What writing one record did.
struct Written {
    rowid: i64,
    /// New or changed: the row took the next change number.
    written: bool,
    /// A new row, or a tombstone that lives again: one more live row.
    revived_or_new: bool,
}

/// Writes one record unless its row holds the same content (same hash, not a tombstone): a new
/// or changed record takes the next change number and is queued for forwarding.
fn write_record(tx: &Db, key: &EntityKey, r: &Record, hash: i64, now_ms: i64, counter: &mut u64, forwarding: bool) -> DbResult<Written> {
    let table = key.table();
    let content = content_hash(&r.data);
    let existing = tx.query_opt(
        &format!("SELECT rowid, content_hash, deleted_at IS NOT NULL FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"),
        params![hash, r.id],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<i64>>(1)?, row.get::<_, bool>(2)?)),
    )?;
    if let Some((rowid, Some(old), false)) = existing {
        if old == content {
            return Ok(Written { rowid, written: false, revived_or_new: false });
        }
    }
    *counter += 1;
    let version = counter.to_string();
    let w = match existing {
        Some((rowid, _, deleted)) => {
            tx.execute(
                &format!("UPDATE \"{table}\" SET row_version = ?2, data = ?3, updated_at = ?4, deleted_at = NULL, content_hash = ?5 WHERE rowid = ?1"),
                params![rowid, version, r.data, now_ms, content],
            )?;
            Written { rowid, written: true, revived_or_new: deleted }
        }
        None => {
            let rowid = tx.query_row(
                &format!(
                    "INSERT INTO \"{table}\" (id, id_hash, row_version, data, updated_at, deleted_at, seen_pass, content_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6) RETURNING rowid"
                ),
                params![r.id, hash, version, r.data, now_ms, content],
                |row| row.get(0),
            )?;
            Written { rowid, written: true, revived_or_new: true }
        }
    };
    if forwarding {
        outbox::enqueue(tx, key, &r.id, hash, &version, outbox::UPSERT, now_ms)?;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;
    use super::*;
    use crate::rowversion::RowVersion;

    fn record(id: &str, data: &str) -> Record {
        Record { id: id.into(), version: RowVersion::zero(), data: data.into() }
    }

    fn pass(store: &Store, key: &EntityKey, records: &[Record]) -> usize {
        store.snapshot_begin(key).unwrap();
        let batch = PageBatch {
            records,
            rejected: &[],
            tracking_id: Some("t"),
            http_status: Some(200),
            max_version: None,
            resync_cursor: None,
            rereads_checkpoint: false,
            run_id: 0,
            now_ms: 1,
        };
        store.apply_snapshot_pages(key, &[batch]).unwrap().rows_written
    }

    #[test]
    fn the_hash_ignores_key_order_at_every_depth_but_not_values() {
        let a = content_hash(r#"{"id":"1","price":{"net":10,"tax":[1,{"x":1,"y":2}]}}"#);
        assert_eq!(a, content_hash(r#"{ "price": {"tax": [1, {"y": 2, "x": 1}], "net": 10}, "id": "1" }"#));
        assert_ne!(a, content_hash(r#"{"id":"1","price":{"net":11,"tax":[1,{"x":1,"y":2}]}}"#));
        assert_ne!(a, content_hash(r#"{"id":"1","price":{"net":10,"tax":[{"x":1,"y":2},1]}}"#), "array order is content");
    }

    #[test]
    fn a_pass_with_keys_reordered_writes_nothing_and_a_changed_value_writes_one_row() {
        let (_d, store, key) = setup();
        let first = [record("a", r#"{"id":"a","p":1,"q":2}"#), record("b", r#"{"id":"b","p":3,"q":4}"#)];
        assert_eq!(pass(&store, &key, &first), 2);
        let reordered = [record("a", r#"{"q":2,"id":"a","p":1}"#), record("b", r#"{"q":4,"p":3,"id":"b"}"#)];
        assert_eq!(pass(&store, &key, &reordered), 0, "the same records with their keys in another order are not news");
        let one_changed = [record("a", r#"{"q":2,"id":"a","p":1}"#), record("b", r#"{"q":5,"p":3,"id":"b"}"#)];
        assert_eq!(pass(&store, &key, &one_changed), 1);
        assert_eq!(store.replica_count(&key).unwrap(), 2);
    }

    /// A replica whose rows were hashed over the served text (before the canonical hash): the
    /// first pass after the change rewrites each row once, deletes nothing and adds no row; the
    /// pass after it writes nothing.
    #[test]
    fn rows_hashed_the_old_way_are_rewritten_once_without_deletions_or_duplicates() {
        let (_d, store, key) = setup();
        let records: Vec<Record> = (0..20).map(|i| record(&format!("r{i}"), &format!(r#"{{"z":{i},"id":"r{i}","a":"x"}}"#))).collect();
        let complete = |store: &Store| {
            let written = pass(store, &key, &records);
            let end = store.snapshot_finish(&key, 0.5, false, 2).unwrap();
            (written, end.deleted, end.guard_tripped)
        };
        assert_eq!(complete(&store), (20, 0, false));
        // What the previous rule stored: SHA-256 over the text as served.
        let old = |data: &str| i64::from_be_bytes(Sha256::digest(data.as_bytes())[..8].try_into().unwrap());
        let table = key.table();
        store
            .write(|c| {
                let tx = c.transaction()?;
                for r in &records {
                    assert_ne!(old(&r.data), content_hash(&r.data), "the keys are out of order, so the two rules differ");
                    tx.execute(&format!("UPDATE \"{table}\" SET content_hash = ?1 WHERE id = ?2"), params![old(&r.data), r.id])?;
                }
                tx.commit()?;
                Ok(())
            })
            .unwrap();
        let checkpoint = |store: &Store| store.entity(&key).unwrap().checkpoint.to_string();
        assert_eq!(checkpoint(&store), "20");
        assert_eq!(complete(&store), (20, 0, false), "one pass of rewrites, no deletions");
        assert_eq!(checkpoint(&store), "40", "each row took one new change number");
        let (rows, tombstones): (i64, i64) = store
            .read(|c| Ok(c.query_row(&format!("SELECT count(*), count(deleted_at) FROM \"{table}\""), params![], |r| Ok((r.get(0)?, r.get(1)?)))?))
            .unwrap();
        assert_eq!((rows, tombstones, store.replica_count(&key).unwrap()), (20, 0, 20), "no duplicates, no tombstones");
        assert_eq!(complete(&store), (0, 0, false), "after it, an unchanged snapshot writes nothing");
        assert_eq!(checkpoint(&store), "40");
    }
}
