//! The SQLite store. `Store` (this file) opens the database, owns its connections and hands the
//! parts below a reading or a writing connection; each part adds its own methods to `Store`:
//! - `schema` — the numbered migrations and integrity checks;
//! - `replica` — replica tables, pages applied atomically, full resyncs;
//! - `entity_state` — the entity's state row as the front ends read it, pausing;
//! - `checkpoints` — checkpoint history and lookback-sweep scheduling;
//! - `failed` — failed items (every stage), their filter, replay bookkeeping;
//! - `ingest` — batches of pushed records, stored before the 202 and applied by the agent;
//! - `find` — everything carrying a Trackingid or a record id;
//! - `runs` — the run history; `lag` — every catch-up, and the lag over time from them;
//! - `request_log` — the calls made; `outbox` — the forwarding queue;
//! - `events` — the Activity log, kept across restarts;
//! - `settings` — the UI's key/value settings; `snapshot` — snapshot passes (content hashes,
//!   a local change counter, deletions after a complete pass).
//!
//! One writer connection (behind a mutex, used from blocking threads) and one reader connection;
//! WAL lets readers run while a page is being written.

use crate::state::UnfinishedRun;
use db::{Db, Stmt};
use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `Ok(Type { field: row.get("field")?, … })`: a row read into a struct whose fields are named
/// like the columns the SELECT returns (so no column position has to be kept in step).
macro_rules! from_columns {
    ($row:expr => $ty:ident { $($field:ident),+ $(,)? }) => {
        Ok($ty { $($field: $row.get(stringify!($field))?),+ })
    };
}

mod checkpoints;
pub(crate) mod db;
mod entity_state;
mod events;
mod export;
mod failed;
mod find;
mod ingest;
mod lag;
pub mod leases;
#[cfg(test)]
mod on_postgres;
mod outbox;
pub(crate) mod pg_connect;
mod postgres;
mod replica;
mod replica_rows;
mod request_log;
mod runs;
mod schema;
mod schema_pg;
mod settings;
mod snapshot;
#[cfg(test)]
mod test_support;
mod two_way;
mod verify;
mod write_back;
pub use checkpoints::CheckpointPoint;
pub use entity_state::EntityRow;
pub use events::{EventQuery, StoredEvent, EVENTS_KEPT, EVENTS_RETENTION_MS, MAX_EVENTS_PAGE};
use failed::record_failure;
pub use failed::{FailedFilter, FailedItem, RuleCount, LIST_PAYLOAD_CHARS};
pub use find::{Found, FoundRow};
pub use ingest::{IngestApplied, IngestBatch, IngestFailure, QueuedBatch};
pub use lag::{lag_points, LagPoint, LAG_HISTORY_MS, LAG_POINTS};
pub use outbox::OutboxItem;
pub use pg_connect::shown_url as replica_url;
pub use replica::{id_hash, Applied, PageBatch, PassEnd, ReplicaRow};
pub use request_log::{RequestRow, RequestStats};
pub use runs::RunRow;
pub use schema::SCHEMA_VERSION;
use schema::{integrity_problems, is_corruption, migrate};
pub use snapshot::content_hash;
pub use two_way::{fingerprint, PairRow, TwoWayRules};
pub use write_back::WriteBackItem;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(String),
    #[error("cannot open the database {path}: {message}")]
    Open { path: PathBuf, message: String },
    /// The PostgreSQL replica did not let Syncmon in: the whole story, with what to check.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    NotFound(String),
    /// A read-only open found no database (or an empty one that an agent is creating right now).
    #[error("no replica yet in {}: run `syncmon sync` or `syncmon run` first", dir.display())]
    NoReplica { dir: PathBuf },
    /// The database's schema is older than this build's; read-only opens never migrate.
    #[error("the database {} has schema version {found}, this Syncmon uses {expected}: run the agent once to upgrade the database (`syncmon run`, or `syncmon sync`)", path.display())]
    SchemaTooOld { path: PathBuf, found: usize, expected: usize },
    #[error("the database {} has schema version {found}, newer than this Syncmon's {expected}: it was written by a newer Syncmon; use that version", path.display())]
    SchemaTooNew { path: PathBuf, found: usize, expected: usize },
    /// SQLite's integrity check found problems (or SQLite refused the file as corrupt).
    #[error("the replica {} is damaged ({}): {}", path.display(), problems.first().map(String::as_str).unwrap_or("integrity check failed"), damaged_advice(path))]
    Damaged { path: PathBuf, problems: Vec<String> },
    #[error("the database {} was opened read-only; this command cannot change it", path.display())]
    ReadOnly { path: PathBuf },
    /// Several agents: the entity's lease went to another agent (this one was stopped or cut off
    /// past its lease); the page is not written, the other agent syncs the entity now.
    #[error("entity {entity} is no longer held by agent {agent}: another agent took it over; this page was not written")]
    LeaseLost { entity: String, agent: String },
}

impl From<db::DbError> for StoreError {
    fn from(e: db::DbError) -> Self {
        match e {
            db::DbError::Sqlite(e) => StoreError::Sql(e),
            e @ db::DbError::Postgres(_) => StoreError::Postgres(e.to_string()),
        }
    }
}

/// What to do about a damaged replica: it is a copy of the sources, so it can be rebuilt.
pub fn damaged_advice(db: &Path) -> String {
    let dir = db.parent().map(|d| d.display().to_string()).unwrap_or_else(|| ".".into());
    format!(
        "stop the agent, move {dir} aside and run `syncmon sync` to rebuild the replica from the sources (its failed items \
         and history stay in the old copy), or restore a backup of {dir}"
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct EntityKey {
    pub connection: String,
    pub entity: String,
}

impl EntityKey {
    pub fn new(connection: &str, entity: &str) -> Self {
        EntityKey { connection: connection.to_string(), entity: entity.to_string() }
    }
    pub fn table(&self) -> String {
        format!("replica_{}_{}", self.connection.replace('-', "_"), self.entity.replace('-', "_"))
    }
}

impl std::fmt::Display for EntityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.connection, self.entity)
    }
}

pub struct Store {
    path: PathBuf,
    /// None when opened read-only ([`Store::open_read_only`]): every write is refused.
    writer: Option<Mutex<Db>>,
    reader: Mutex<Db>,
    /// Request-log rows waiting for the next write: logging a request must never wait for a
    /// page transaction, or fetching the next page would stall behind writing this one.
    pending_log: Mutex<Vec<RequestRow>>,
    /// Events waiting for the next write, for the same reason (`events.rs`).
    pending_events: events::PendingEvents,
    /// Several agents on PostgreSQL: the agent whose lease every page write needs (`postgres.rs`).
    fence: std::sync::OnceLock<String>,
}

impl Drop for Store {
    /// Writes what is still queued (the last events and calls of a `syncmon sync`).
    fn drop(&mut self) {
        if let Some(writer) = &self.writer {
            let c = writer.lock().unwrap_or_else(|p| p.into_inner());
            let _ = self.flush_log(&c);
            let _ = self.flush_events(&c);
        }
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // Measured on 1M ~800-byte rows (bench/): 8 KB pages balance the initial load (fewer index
    // pages dirtied per commit than 4 KB) against incremental updates (each changed row rewrites
    // a whole page: 16 KB doubled their cost). A bounded cache keeps memory flat. Checkpoints
    // every 128 MB of WAL rather than 32 MB: a 10,000-change cycle then finishes without paying
    // for one, and the WAL file is cut back to 64 MB afterwards.
    // The busy timeout first: switching a new file to WAL needs a lock another opener may hold.
    conn.execute_batch(
        "PRAGMA busy_timeout = 10000;
         PRAGMA page_size = 8192;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -16384;
         PRAGMA wal_autocheckpoint = 16384;
         PRAGMA journal_size_limit = 67108864;",
    )
}

/// Creates the data directory readable by its owner only (0700 on Unix): the replica holds the
/// source's data. An existing directory is tightened only while it holds nothing but Syncmon's
/// own files (made for Syncmon, e.g. by an older version or by the agent lock): a directory the
/// user shares on purpose is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    if !dir.is_dir() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        return builder.create(dir);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        let ours = std::fs::read_dir(dir)?
            .all(|e| e.is_ok_and(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("syncmon.db") || n == "agent.lock" || n == crate::logfile::LOG_DIR)));
        if mode & 0o077 != 0 && ours {
            // Best effort: a directory owned by someone else stays as it is.
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700));
        }
    }
    Ok(())
}

/// The database file is created owner-only (0600 on Unix) before SQLite opens it; SQLite gives its
/// `-wal` and `-shm` files the database's mode. Files a looser umask made earlier are tightened.
fn make_private_files(db: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if let Ok(meta) = std::fs::metadata(&file) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}
/// A connection that can only read: never migrates, never writes the file. Waits for a writer
/// (busy_timeout) instead of failing "database is locked". In a directory this process cannot
/// write (a read-only copy, read-only media) SQLite cannot create the WAL's `-wal`/`-shm` files;
/// nothing can be writing such a copy, so it is then opened as immutable.
fn open_read_only_connection(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let setup = |c: Connection| -> rusqlite::Result<Connection> {
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        c.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -16384;")?;
        // Reading the header proves the file can be read (the -shm can be made, or exists).
        c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
        Ok(c)
    };
    match Connection::open_with_flags(path, flags).and_then(setup) {
        Ok(c) => Ok(c),
        Err(e) if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)) && !dir_writable(path) => {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags).and_then(setup)
        }
        Err(e) => Err(e),
    }
}

/// Whether this process can create files next to `path`: creates and removes a probe file, the
/// only portable answer (permission bits say nothing about read-only mounts or ACLs).
fn dir_writable(path: &Path) -> bool {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let probe = dir.join(format!(".syncmon-probe-{}", std::process::id()));
    let created = std::fs::OpenOptions::new().write(true).create_new(true).open(&probe).is_ok();
    if created {
        let _ = std::fs::remove_file(&probe);
    }
    created
}

/// A path as the `file:` URI's path part (percent-encoding what a URI cannot hold).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        match b {
            b'?' | b'#' | b'%' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

/// Parameters built at run time (a filter's conditions) as the slice the queries take.
fn dyn_params(values: &[rusqlite::types::Value]) -> Vec<&dyn rusqlite::ToSql> {
    values.iter().map(|v| v as &dyn rusqlite::ToSql).collect()
}

impl Store {
    /// Opens (creating if needed) and migrates the database for writing.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_writer(path, false)
    }

    /// [`Store::open`] for the agent: first `PRAGMA quick_check`, so a damaged replica refuses
    /// to start (with what to do) instead of reading "healthy" until an export trips over it.
    pub fn open_checked(path: &Path) -> Result<Store> {
        Self::open_writer(path, true)
    }

    fn open_writer(path: &Path, check: bool) -> Result<Store> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|e| StoreError::Open { path: path.into(), message: e.to_string() })?;
        }
        make_private_files(path).map_err(|e| StoreError::Open { path: path.into(), message: e.to_string() })?;
        let existed = path.metadata().is_ok_and(|m| m.len() > 0);
        let damaged = |problems: Vec<String>| StoreError::Damaged { path: path.into(), problems };
        let failed =
            |e: rusqlite::Error| if is_corruption(&e) { damaged(vec![e.to_string()]) } else { StoreError::Open { path: path.into(), message: e.to_string() } };
        let open = || -> rusqlite::Result<Connection> {
            // Two openers switching a new file to WAL at once can deadlock on its locks; SQLite
            // then answers "busy" at once, without the busy timeout. A few short retries settle it.
            let mut tries = 0;
            loop {
                let c = Connection::open(path)?;
                match configure(&c) {
                    Ok(()) => return Ok(c),
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) && tries < 100 => {
                        tries += 1;
                        drop(c);
                        std::thread::sleep(std::time::Duration::from_millis(10 + rand::random::<u64>() % 20));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let mut writer = open().map_err(failed)?;
        if check && existed {
            let problems = integrity_problems(&writer, true).map_err(failed)?;
            if !problems.is_empty() {
                return Err(damaged(problems));
            }
        }
        migrate(&mut writer).map_err(|e| StoreError::Open { path: path.into(), message: format!("migration failed: {e}") })?;
        // Runs cut off by a crash or kill are closed as such, so they do not look alive.
        writer.execute("UPDATE runs SET outcome = ?1 WHERE outcome = ?2", params![UnfinishedRun::Interrupted, UnfinishedRun::Running]).map_err(failed)?;
        let reader = open().map_err(failed)?;
        Ok(Store::from_parts(path.to_path_buf(), Some(Mutex::new(Db::Sqlite(writer))), Db::Sqlite(reader)))
    }

    /// Opens an existing database for reading only: no migration, no write, nothing that could
    /// disturb an agent using it (or one creating it right now). Refuses a database whose schema
    /// is not this build's, and says when there is no replica yet.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        if !path.is_file() {
            return Err(StoreError::NoReplica { dir });
        }
        let failed = |e: rusqlite::Error| {
            if is_corruption(&e) {
                StoreError::Damaged { path: path.into(), problems: vec![e.to_string()] }
            } else {
                StoreError::Open { path: path.into(), message: e.to_string() }
            }
        };
        let reader = open_read_only_connection(path).map_err(failed)?;
        // Both in one statement, so one read snapshot: read one after the other, an agent's first
        // migration could commit in between (version 0 read, then its tables counted).
        let (found, tables): (usize, i64) = reader
            .query_row("SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(failed)?;
        if found == 0 && tables == 0 {
            // An empty file, or an agent's first transaction not committed yet.
            return Err(StoreError::NoReplica { dir });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld { path: path.into(), found, expected: SCHEMA_VERSION });
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { path: path.into(), found, expected: SCHEMA_VERSION });
        }
        Ok(Store::from_parts(path.to_path_buf(), None, Db::Sqlite(reader)))
    }

    /// `PRAGMA integrity_check` on this store's reading connection: the problems, empty when
    /// the database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        // postgres: PostgreSQL has no integrity pragma: there the check finds no problems.
        self.read(|c| match c.sqlite().map(|c| integrity_problems(c, false)) {
            None => Ok(Vec::new()),
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) if is_corruption(&e) => Ok(vec![e.to_string()]),
            Some(Err(e)) => Err(e.into()),
        })
    }

    fn from_parts(path: PathBuf, writer: Option<Mutex<Db>>, reader: Db) -> Store {
        Store {
            path,
            writer,
            reader: Mutex::new(reader),
            pending_log: Mutex::new(Vec::new()),
            pending_events: Mutex::new(Vec::new()),
            fence: std::sync::OnceLock::new(),
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let Some(writer) = &self.writer else { return Err(StoreError::ReadOnly { path: self.path.clone() }) };
        let c = writer.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_log(&c)?;
        self.flush_events(&c)?;
        f(&c)
    }

    fn read<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        let c = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&c)
    }

    /// One statement run once per item, all in one transaction; returns how many rows it changed.
    fn execute_each<T>(&self, sql: &str, items: &[T], mut execute: impl FnMut(&Stmt<'_>, &T) -> db::DbResult<usize>) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let st = tx.prepare(sql)?;
                for item in items {
                    n += execute(&st, item)?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rowversion::RowVersion;

    #[test]
    fn a_read_only_open_never_migrates_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("syncmon.db");
        assert!(matches!(Store::open_read_only(&path), Err(StoreError::NoReplica { .. })));
        assert!(!path.exists(), "a read-only open creates nothing");
        let key = EntityKey::new("c", "items");
        let store = Store::open(&path).unwrap();
        store.ensure_entity(&key).unwrap();
        drop(store);
        let ro = Store::open_read_only(&path).unwrap();
        assert_eq!(ro.entity(&key).unwrap().checkpoint, RowVersion::zero());
        assert!(matches!(ro.set_paused(&key, true), Err(StoreError::ReadOnly { .. })));
        assert!(ro.integrity_check().unwrap().is_empty());
        drop(ro);
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION - 1).unwrap();
        let err = Store::open_read_only(&path).err().unwrap().to_string();
        assert!(err.contains("run the agent once to upgrade the database"), "{err}");
    }
}
