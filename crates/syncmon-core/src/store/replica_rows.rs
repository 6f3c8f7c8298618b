//! How a page transaction reads and writes the rows of an entity's replica table. The rules (newer
//! wins, tombstones revive, passes mark what they saw) are in `replica.rs`, written once; they
//! reach the table through [`ReplicaRows`]:
//! - on SQLite, one prepared statement per row ([`DirectRows`]): an in-process B-tree lookup
//!   costs microseconds;
//! - on PostgreSQL, where every statement is a round trip, the rows a batch touches are read in
//!   one query per 500 ids and the writes go out at the end, still inside the page's
//!   transaction: new rows in one binary COPY, updates as multi-row statements ([`BulkRows`]).

use super::db::{Db, DbResult, Stmt};
use super::EntityKey;
use postgres::types::Type;
use rusqlite::params;
use rusqlite::types::Value;
use rusqlite::ToSql;
use std::collections::HashMap;

/// A replica row as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Existing {
    pub rowid: i64,
    pub version: String,
    pub deleted: bool,
    pub seen: i64,
}

pub(super) trait ReplicaRows {
    fn find(&mut self, hash: i64, id: &str) -> DbResult<Option<Existing>>;
    /// Whether the row holds exactly `data` (timestamp feeds compare content at one version).
    fn same_data(&mut self, rowid: i64, data: &str) -> DbResult<bool>;
    fn insert(&mut self, id: &str, hash: i64, version: &str, data: &str, now_ms: i64, pass: i64) -> DbResult<()>;
    /// A newer version (or a revived tombstone): live again, seen by `pass` at least.
    fn update(&mut self, rowid: i64, version: &str, data: &str, now_ms: i64, pass: i64) -> DbResult<()>;
    fn mark_seen(&mut self, rowid: i64, pass: i64) -> DbResult<()>;
    /// Writes what is buffered; the transaction goes on.
    fn flush(&mut self) -> DbResult<()>;
}

pub(super) struct DirectRows<'a> {
    find: Stmt<'a>,
    insert: Stmt<'a>,
    update: Stmt<'a>,
    mark_seen: Stmt<'a>,
    same_data: Stmt<'a>,
}

impl<'a> DirectRows<'a> {
    pub fn new(tx: &'a Db, table: &str) -> DbResult<DirectRows<'a>> {
        Ok(DirectRows {
            find: tx.prepare(&format!("SELECT rowid, row_version, deleted_at IS NOT NULL, seen_pass FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"))?,
            insert: tx.prepare(&format!(
                "INSERT INTO \"{table}\" (id, id_hash, row_version, data, updated_at, deleted_at, seen_pass) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)"
            ))?,
            update: tx.prepare(&format!(
                "UPDATE \"{table}\" SET row_version = ?2, data = ?3, updated_at = ?4, deleted_at = NULL,
                   seen_pass = CASE WHEN seen_pass > ?5 THEN seen_pass ELSE ?5 END WHERE rowid = ?1"
            ))?,
            mark_seen: tx.prepare(&format!("UPDATE \"{table}\" SET seen_pass = ?2 WHERE rowid = ?1"))?,
            same_data: tx.prepare(&format!("SELECT data = ?2 FROM \"{table}\" WHERE rowid = ?1"))?,
        })
    }
}

impl ReplicaRows for DirectRows<'_> {
    fn find(&mut self, hash: i64, id: &str) -> DbResult<Option<Existing>> {
        self.find.query_opt(params![hash, id], |r| Ok(Existing { rowid: r.get(0)?, version: r.get(1)?, deleted: r.get(2)?, seen: r.get(3)? }))
    }
    fn same_data(&mut self, rowid: i64, data: &str) -> DbResult<bool> {
        Ok(self.same_data.query_opt(params![rowid, data], |r| r.get::<_, bool>(0))?.unwrap_or(false))
    }
    fn insert(&mut self, id: &str, hash: i64, version: &str, data: &str, now_ms: i64, pass: i64) -> DbResult<()> {
        self.insert.execute(params![id, hash, version, data, now_ms, pass]).map(drop)
    }
    fn update(&mut self, rowid: i64, version: &str, data: &str, now_ms: i64, pass: i64) -> DbResult<()> {
        self.update.execute(params![rowid, version, data, now_ms, pass]).map(drop)
    }
    fn mark_seen(&mut self, rowid: i64, pass: i64) -> DbResult<()> {
        self.mark_seen.execute(params![rowid, pass]).map(drop)
    }
    fn flush(&mut self) -> DbResult<()> {
        Ok(())
    }
}

/// Ids per prefetch query and rows per multi-row statement.
const CHUNK: usize = 500;

struct Pending {
    id: String,
    hash: i64,
    version: String,
    data: String,
    now_ms: i64,
    pass: i64,
}

/// The rows of one batch, prefetched; writes buffered and sent in multi-row statements. A row
/// inserted by this batch has a negative stand-in rowid (`-1 - index`) until it is written.
pub(super) struct BulkRows<'a> {
    tx: &'a Db,
    table: String,
    known: HashMap<String, (Existing, Option<String>)>,
    /// rowid → id, for the writes that name a row by its rowid.
    ids: HashMap<i64, String>,
    inserts: Vec<Pending>,
    updates: HashMap<i64, Pending>,
    seen: HashMap<i64, i64>,
}

impl<'a> BulkRows<'a> {
    /// Reads the rows of `ids` (with their data when `with_data`: timestamp feeds compare it).
    pub fn prefetch<'i>(tx: &'a Db, table: &str, ids: impl Iterator<Item = (i64, &'i str)>, with_data: bool) -> DbResult<BulkRows<'a>> {
        let mut hashes: Vec<i64> = ids.map(|(h, _)| h).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut known = HashMap::with_capacity(hashes.len());
        let data = if with_data { "data" } else { "NULL" };
        let sql = format!(
            "SELECT rowid, id, row_version, deleted_at IS NOT NULL, seen_pass, {data} FROM \"{table}\" WHERE id_hash IN ({})",
            (1..=CHUNK).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
        );
        for chunk in hashes.chunks(CHUNK) {
            // One statement shape: the last chunk repeats its last hash.
            let padded: Vec<i64> = chunk.iter().copied().chain(std::iter::repeat_n(*chunk.last().unwrap(), CHUNK - chunk.len())).collect();
            let params: Vec<&dyn ToSql> = padded.iter().map(|h| h as &dyn ToSql).collect();
            for (id, row, data) in tx.query_all(&sql, &params, |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    Existing { rowid: r.get(0)?, version: r.get(2)?, deleted: r.get(3)?, seen: r.get(4)? },
                    r.get::<_, Option<String>>(5)?,
                ))
            })? {
                known.insert(id, (row, data));
            }
        }
        let ids = known.iter().map(|(id, (row, _))| (row.rowid, id.clone())).collect();
        Ok(BulkRows { tx, table: table.to_string(), known, ids, inserts: Vec::new(), updates: HashMap::new(), seen: HashMap::new() })
    }
}

impl ReplicaRows for BulkRows<'_> {
    fn find(&mut self, _hash: i64, id: &str) -> DbResult<Option<Existing>> {
        Ok(self.known.get(id).map(|(row, _)| row.clone()))
    }
    fn same_data(&mut self, rowid: i64, data: &str) -> DbResult<bool> {
        let pending = if rowid < 0 { self.inserts.get((-1 - rowid) as usize) } else { self.updates.get(&rowid) };
        if let Some(p) = pending {
            return Ok(p.data == data);
        }
        Ok(self.ids.get(&rowid).and_then(|id| self.known.get(id)).and_then(|(_, d)| d.as_deref()) == Some(data))
    }
    fn insert(&mut self, id: &str, hash: i64, version: &str, data: &str, now_ms: i64, pass: i64) -> DbResult<()> {
        let rowid = -1 - self.inserts.len() as i64;
        self.inserts.push(Pending { id: id.into(), hash, version: version.into(), data: data.into(), now_ms, pass });
        self.known.insert(id.into(), (Existing { rowid, version: version.into(), deleted: false, seen: pass }, None));
        self.ids.insert(rowid, id.into());
        Ok(())
    }
    fn update(&mut self, rowid: i64, version: &str, data: &str, now_ms: i64, pass: i64) -> DbResult<()> {
        let Some(id) = self.ids.get(&rowid).cloned() else { return Ok(()) };
        let Some((row, _)) = self.known.get_mut(&id) else { return Ok(()) };
        row.version = version.into();
        row.deleted = false;
        row.seen = row.seen.max(pass);
        let seen = row.seen;
        if rowid < 0 {
            let p = &mut self.inserts[(-1 - rowid) as usize];
            (p.version, p.data, p.now_ms, p.pass) = (version.into(), data.into(), now_ms, seen);
        } else {
            self.seen.remove(&rowid);
            self.updates.insert(rowid, Pending { id, hash: 0, version: version.into(), data: data.into(), now_ms, pass: seen });
        }
        Ok(())
    }
    fn mark_seen(&mut self, rowid: i64, pass: i64) -> DbResult<()> {
        if let Some((row, _)) = self.ids.get(&rowid).and_then(|id| self.known.get_mut(id)) {
            row.seen = pass;
        }
        if rowid < 0 {
            self.inserts[(-1 - rowid) as usize].pass = pass;
        } else if let Some(u) = self.updates.get_mut(&rowid) {
            u.pass = pass;
        } else {
            self.seen.insert(rowid, pass);
        }
        Ok(())
    }
    fn flush(&mut self) -> DbResult<()> {
        let table = self.table.clone();
        let inserts: Vec<Vec<Value>> = std::mem::take(&mut self.inserts)
            .into_iter()
            .map(|p| vec![p.id.into(), p.hash.into(), p.version.into(), p.data.into(), p.now_ms.into(), p.pass.into()])
            .collect();
        if !inserts.is_empty() {
            // New rows by COPY: the whole batch in one stream, no statement to parse.
            let types = [Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT, Type::INT8, Type::INT8];
            self.tx.copy_in(&table, &["id", "id_hash", "row_version", "data", "updated_at", "seen_pass"], &types, &inserts)?;
        }
        let updates: Vec<Vec<Value>> = std::mem::take(&mut self.updates)
            .into_iter()
            .map(|(rowid, p)| vec![rowid.into(), p.version.into(), p.data.into(), p.now_ms.into(), p.pass.into()])
            .collect();
        if !updates.is_empty() {
            multi_row(
                self.tx,
                &format!("UPDATE \"{table}\" AS t SET row_version = v.row_version, data = v.data, updated_at = v.updated_at, deleted_at = NULL, seen_pass = v.seen_pass FROM (VALUES"),
                "(CAST(# AS BIGINT), CAST(# AS TEXT), CAST(# AS TEXT), CAST(# AS BIGINT), CAST(# AS BIGINT))",
                ") AS v (rowid, row_version, data, updated_at, seen_pass) WHERE t.rowid = v.rowid",
                &updates,
            )?;
        }
        let seen: Vec<Vec<Value>> = std::mem::take(&mut self.seen).into_iter().map(|(rowid, pass)| vec![rowid.into(), pass.into()]).collect();
        if !seen.is_empty() {
            multi_row(
                self.tx,
                &format!("UPDATE \"{table}\" AS t SET seen_pass = v.seen_pass FROM (VALUES"),
                "(CAST(# AS BIGINT), CAST(# AS BIGINT))",
                ") AS v (rowid, seen_pass) WHERE t.rowid = v.rowid",
                &seen,
            )?;
        }
        Ok(())
    }
}

/// `rows` as multi-row statements of [`CHUNK`] rows: `head` `(row_sql with # per value), …` `tail`.
fn multi_row(tx: &Db, head: &str, row_sql: &str, tail: &str, rows: &[Vec<Value>]) -> DbResult<()> {
    let width = rows.first().map_or(0, Vec::len);
    for chunk in rows.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let mut n = r * width;
                let mut row = row_sql.to_string();
                for _ in 0..width {
                    n += 1;
                    row = row.replacen('#', &format!("?{n}"), 1);
                }
                row
            })
            .collect();
        let params: Vec<&dyn ToSql> = chunk.iter().flatten().map(|v| v as &dyn ToSql).collect();
        tx.execute(&format!("{head} {} {tail}", values.join(", ")), &params)?;
    }
    Ok(())
}

/// What a page transaction queues for its target (the outbox) and for marking at the source
/// (write-back): written at once on SQLite; on PostgreSQL gathered (a record's last version
/// wins) and written as multi-row upserts before the transaction commits.
pub(super) struct Queues<'a> {
    tx: &'a Db,
    key: &'a EntityKey,
    bulk: bool,
    /// record id → (id_hash, version, queued at), in the order first queued.
    forward: Vec<(String, i64, String, i64)>,
    mark: Vec<(String, i64, String, i64)>,
    forward_at: HashMap<String, usize>,
    mark_at: HashMap<String, usize>,
}

impl<'a> Queues<'a> {
    pub fn new(tx: &'a Db, key: &'a EntityKey) -> Queues<'a> {
        let bulk = tx.dialect() == super::db::Dialect::Postgres;
        Queues { tx, key, bulk, forward: Vec::new(), mark: Vec::new(), forward_at: HashMap::new(), mark_at: HashMap::new() }
    }

    /// The record's change goes to the entity's target.
    pub fn forward(&mut self, id: &str, hash: i64, version: &str, now_ms: i64) -> DbResult<()> {
        if !self.bulk {
            return super::outbox::enqueue(self.tx, self.key, id, hash, version, super::outbox::UPSERT, now_ms);
        }
        Self::gather(&mut self.forward, &mut self.forward_at, id, hash, version, now_ms);
        Ok(())
    }

    /// The record is to be marked at the source.
    pub fn mark(&mut self, id: &str, hash: i64, version: &str, now_ms: i64) -> DbResult<()> {
        if !self.bulk {
            return super::write_back::enqueue(self.tx, self.key, id, hash, version, now_ms);
        }
        Self::gather(&mut self.mark, &mut self.mark_at, id, hash, version, now_ms);
        Ok(())
    }

    fn gather(rows: &mut Vec<(String, i64, String, i64)>, at: &mut HashMap<String, usize>, id: &str, hash: i64, version: &str, now_ms: i64) {
        match at.get(id) {
            Some(&i) => rows[i] = (id.to_string(), hash, version.to_string(), now_ms),
            None => {
                at.insert(id.to_string(), rows.len());
                rows.push((id.to_string(), hash, version.to_string(), now_ms));
            }
        }
    }

    pub fn flush(&mut self) -> DbResult<()> {
        let (conn, entity) = (&self.key.connection, &self.key.entity);
        let forward: Vec<Vec<Value>> = std::mem::take(&mut self.forward)
            .into_iter()
            .map(|(id, hash, v, at)| {
                vec![conn.clone().into(), entity.clone().into(), id.into(), hash.into(), v.into(), super::outbox::UPSERT.to_string().into(), at.into()]
            })
            .collect();
        if !forward.is_empty() {
            multi_row(
                self.tx,
                "INSERT INTO outbox (connection, entity, record_id, id_hash, row_version, kind, queued_at) VALUES",
                "(#, #, #, #, #, #, #)",
                "ON CONFLICT (connection, entity, record_id) DO UPDATE SET row_version = excluded.row_version, kind = excluded.kind, queued_at = excluded.queued_at",
                &forward,
            )?;
        }
        let mark: Vec<Vec<Value>> = std::mem::take(&mut self.mark)
            .into_iter()
            .map(|(id, hash, v, at)| vec![conn.clone().into(), entity.clone().into(), id.into(), hash.into(), v.into(), at.into()])
            .collect();
        if !mark.is_empty() {
            multi_row(
                self.tx,
                "INSERT INTO write_back_queue (connection, entity, record_id, id_hash, row_version, queued_at) VALUES",
                "(#, #, #, #, #, #)",
                "ON CONFLICT (connection, entity, record_id) DO UPDATE SET row_version = excluded.row_version, queued_at = excluded.queued_at",
                &mark,
            )?;
        }
        self.forward_at.clear();
        self.mark_at.clear();
        Ok(())
    }
}
