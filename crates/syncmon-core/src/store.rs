//! The SQLite store: replica tables, checkpoints, failed items, runs and the request log.
//!
//! Invariants (the product's guarantees live here):
//! - A page's upserts, its failed items and the checkpoint advance commit in ONE transaction, so a
//!   crash at any instant resumes from the last committed page: no lost change, no duplicate.
//! - An older rowVersion never overwrites a newer one. Versions are canonical decimal text and
//!   compare as `(length(v), v)`, i.e. as unsigned integers of any length, in SQL as in Rust.
//! - The checkpoint only moves forward.
//! - A full resync marks every id it receives with the pass number (`seen_pass`); only when the whole
//!   pass has completed are unseen rows tombstoned (`deleted_at`), and only under the deletion guard.
//!
//! Layout: one table per entity, `replica_<connection>_<entity>` with an integer rowid (so the
//! B-tree is not keyed by random UUID text) and a unique index on `id`; plain SQL can read it.
//! One writer connection (behind a mutex, used from blocking threads) and one reader connection;
//! WAL lets readers run while a page is being written.

use crate::profile::{Record, Rejected};
use crate::rowversion::RowVersion;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

mod outbox;
mod queries;
pub use outbox::OutboxItem;
pub use queries::{CheckpointPoint, RequestStats, LIST_PAYLOAD_CHARS};

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot open the database {path}: {message}")]
    Open { path: PathBuf, message: String },
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

const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE entity_state (
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    replica_table TEXT NOT NULL UNIQUE,
    checkpoint TEXT NOT NULL DEFAULT '0',
    last_caught_up_at INTEGER,
    last_cycle_at INTEGER,
    last_outcome TEXT,
    last_error TEXT,
    last_http_status INTEGER,
    last_tracking_id TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    resync_pass INTEGER NOT NULL DEFAULT 0,
    resync_state TEXT,
    resync_cursor TEXT,
    resync_seen INTEGER NOT NULL DEFAULT 0,
    resync_would_delete INTEGER,
    last_full_resync_at INTEGER,
    next_attempt_at INTEGER,
    -- Live (not tombstoned) replica rows, kept exact by every write: status must not count 1M rows.
    replica_rows INTEGER NOT NULL DEFAULT 0,
    -- Pending failed items, kept exact by the triggers below for the same reason.
    pending_failed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection, entity)
);
CREATE TABLE checkpoint_history (
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    at INTEGER NOT NULL,
    checkpoint TEXT NOT NULL
);
CREATE INDEX checkpoint_history_by_time ON checkpoint_history (connection, entity, at);
CREATE TABLE failed_items (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT,
    row_version TEXT,
    payload TEXT NOT NULL,
    stage TEXT NOT NULL,
    error_kind TEXT NOT NULL,
    message TEXT NOT NULL,
    http_status INTEGER,
    tracking_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_failed_at INTEGER NOT NULL,
    last_failed_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    resolution TEXT,
    resolved_at INTEGER
);
CREATE INDEX failed_items_by_record ON failed_items (connection, entity, record_id, state);
CREATE INDEX failed_items_by_state ON failed_items (state, connection, entity, id);
-- The unfiltered list, newest first, without sorting a million rows.
CREATE INDEX failed_items_by_state_id ON failed_items (state, id);
CREATE TRIGGER failed_items_pending_insert AFTER INSERT ON failed_items WHEN new.state = 'pending' BEGIN
    UPDATE entity_state SET pending_failed = pending_failed + 1 WHERE connection = new.connection AND entity = new.entity;
END;
CREATE TRIGGER failed_items_pending_update AFTER UPDATE OF state ON failed_items WHEN (old.state = 'pending') <> (new.state = 'pending') BEGIN
    UPDATE entity_state SET pending_failed = pending_failed + (CASE WHEN new.state = 'pending' THEN 1 ELSE -1 END)
     WHERE connection = new.connection AND entity = new.entity;
END;
CREATE TRIGGER failed_items_pending_delete AFTER DELETE ON failed_items WHEN old.state = 'pending' BEGIN
    UPDATE entity_state SET pending_failed = pending_failed - 1 WHERE connection = old.connection AND entity = old.entity;
END;
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    kind TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    pages INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    failed_records INTEGER NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL DEFAULT 'running',
    error TEXT,
    tracking_id TEXT
);
CREATE INDEX runs_by_entity ON runs (connection, entity, id);
CREATE TABLE request_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    connection TEXT NOT NULL,
    entity TEXT,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    status INTEGER,
    duration_ms INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    bytes INTEGER,
    tracking_id TEXT,
    error TEXT
);
CREATE INDEX request_log_by_entity ON request_log (connection, entity, id);
CREATE INDEX request_log_by_time ON request_log (at);
"#, r#"
-- Front-end settings (notifications, thresholds) as small JSON values.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- The failed-items table filtered by error kind pages and counts in the index.
CREATE INDEX failed_items_by_kind ON failed_items (state, error_kind, id);
"#, r#"
-- Text search over failed items scans this narrow index (id order, no payloads) instead of the table.
CREATE INDEX failed_items_text ON failed_items (state, id, record_id, tracking_id, message);
-- The overview's sparklines: runs per entity in time order, from the index alone, no sorting.
CREATE INDEX runs_by_entity_time ON runs (connection, entity, started_at, records);
"#, r#"
-- Forwarding (store/outbox.rs): the target an entity forwards to, and one outbox row per record
-- changed since it was last delivered. The replica holds the payload; the row names the change.
ALTER TABLE entity_state ADD COLUMN forward_to TEXT;
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    row_version TEXT NOT NULL,
    kind TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    UNIQUE (connection, entity, record_id)
);
CREATE INDEX outbox_by_entity ON outbox (connection, entity, id);
"#, r#"
-- Lookback sweeps (DESIGN §2.5): the next sweep re-reads from the checkpoint that was current at
-- `lookback_anchor_at` (NULL = from the beginning: the first sweep re-reads the initial load once),
-- and is due at `lookback_due_at` (NULL = not scheduled: nothing has caught up yet).
ALTER TABLE entity_state ADD COLUMN lookback_anchor_at INTEGER;
ALTER TABLE entity_state ADD COLUMN lookback_due_at INTEGER;
"#];

/// One row of `entity_state`.
#[derive(Debug, Clone, Serialize)]
pub struct EntityRow {
    pub key: EntityKey,
    pub checkpoint: RowVersion,
    pub last_caught_up_at: Option<i64>,
    pub last_cycle_at: Option<i64>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub last_http_status: Option<u16>,
    pub last_tracking_id: Option<String>,
    pub paused: bool,
    pub resync_pass: i64,
    pub resync_state: Option<String>,
    pub resync_cursor: Option<RowVersion>,
    pub resync_seen: i64,
    pub resync_would_delete: Option<i64>,
    pub last_full_resync_at: Option<i64>,
    /// When a skipped or failed entity will be tried next (circuit open, backoff).
    pub next_attempt_at: Option<i64>,
    /// The next lookback sweep starts from the checkpoint current at this time (None = from 0).
    pub lookback_anchor_at: Option<i64>,
    /// When the next lookback sweep is due (None = not scheduled yet).
    pub lookback_due_at: Option<i64>,
}

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
    pub run_id: i64,
    pub now_ms: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub rows_written: usize,
    pub failed_new: usize,
    pub superseded: usize,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct FailedItem {
    pub id: i64,
    pub connection: String,
    pub entity: String,
    pub record_id: Option<String>,
    pub row_version: Option<String>,
    pub payload: String,
    pub stage: String,
    pub error_kind: String,
    pub message: String,
    pub http_status: Option<u16>,
    pub tracking_id: Option<String>,
    pub attempts: i64,
    pub first_failed_at: i64,
    pub last_failed_at: i64,
    pub state: String,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FailedFilter {
    pub connection: Option<String>,
    pub entity: Option<String>,
    pub stage: Option<String>,
    pub error_kind: Option<String>,
    /// None = pending only.
    pub state: Option<String>,
    /// Substring of the record id, Trackingid or message.
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RunRow {
    pub id: i64,
    pub connection: String,
    pub entity: String,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub pages: i64,
    pub records: i64,
    pub failed_records: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub tracking_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RequestRow {
    pub id: i64,
    pub at: i64,
    pub connection: String,
    pub entity: Option<String>,
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    pub duration_ms: i64,
    pub attempt: u32,
    pub bytes: Option<i64>,
    pub tracking_id: Option<String>,
    pub error: Option<String>,
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

/// The end of a full resync pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct PassEnd {
    pub live_before: i64,
    pub unseen: i64,
    pub deleted: i64,
    pub guard_tripped: bool,
}

pub struct Store {
    path: PathBuf,
    /// None when opened read-only ([`Store::open_read_only`]): every write is refused.
    writer: Option<Mutex<Connection>>,
    reader: Mutex<Connection>,
    /// Request-log rows waiting for the next write: logging a request must never wait for a
    /// page transaction, or fetching the next page would stall behind writing this one.
    pending_log: Mutex<Vec<RequestRow>>,
}

/// The schema version this build writes: migrations are numbered from 1 in `PRAGMA user_version`
/// (the numbering `rusqlite_migration` used, so existing databases carry on).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

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
        let ours = std::fs::read_dir(dir)?.all(|e| {
            e.is_ok_and(|e| e.file_name().to_str().is_some_and(|n| n.starts_with("syncmon.db") || n == "agent.lock"))
        });
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

/// Brings the schema to [`SCHEMA_VERSION`] in ONE immediate transaction: the version is read
/// under the write lock, so a second process opening the same new database waits and then finds
/// the schema made, instead of both creating it ("table entity_state already exists").
fn migrate(conn: &mut Connection) -> std::result::Result<(), String> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    let found: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if found > SCHEMA_VERSION {
        return Err(format!("the database has schema version {found}, newer than this Syncmon's {SCHEMA_VERSION}: it was written by a newer Syncmon; use that version"));
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(found) {
        tx.execute_batch(m).map_err(|e| format!("migration {} failed: {e}", i + 1))?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

/// SQLite's verdict on a file it cannot read as a database.
fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
}

/// Runs `PRAGMA integrity_check` (or the cheaper `quick_check`): the problems, none when "ok".
fn integrity_problems(c: &Connection, quick: bool) -> rusqlite::Result<Vec<String>> {
    let pragma = if quick { "PRAGMA quick_check(100)" } else { "PRAGMA integrity_check(100)" };
    let mut st = c.prepare(pragma)?;
    let rows: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(if rows.len() == 1 && rows[0] == "ok" { Vec::new() } else { rows })
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
        let failed = |e: rusqlite::Error| if is_corruption(&e) { damaged(vec![e.to_string()]) } else { StoreError::Open { path: path.into(), message: e.to_string() } };
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
        writer.execute("UPDATE runs SET outcome = 'interrupted' WHERE outcome = 'running'", []).map_err(failed)?;
        let reader = open().map_err(failed)?;
        Ok(Store { path: path.to_path_buf(), writer: Some(Mutex::new(writer)), reader: Mutex::new(reader), pending_log: Mutex::new(Vec::new()) })
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
        let found: usize = reader.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(failed)?;
        if found == 0 {
            // An empty file, or an agent's first transaction not committed yet.
            let tables: i64 = reader.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).map_err(failed)?;
            if tables == 0 {
                return Err(StoreError::NoReplica { dir });
            }
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld { path: path.into(), found, expected: SCHEMA_VERSION });
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { path: path.into(), found, expected: SCHEMA_VERSION });
        }
        Ok(Store { path: path.to_path_buf(), writer: None, reader: Mutex::new(reader), pending_log: Mutex::new(Vec::new()) })
    }

    /// `PRAGMA integrity_check` on this store's reading connection: the problems, empty when
    /// the database is sound.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        self.read(|c| match integrity_problems(c, false) {
            Ok(p) => Ok(p),
            Err(e) if is_corruption(&e) => Ok(vec![e.to_string()]),
            Err(e) => Err(e.into()),
        })
    }

    pub fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let Some(writer) = &self.writer else { return Err(StoreError::ReadOnly { path: self.path.clone() }) };
        let mut c = writer.lock().unwrap_or_else(|p| p.into_inner());
        self.flush_log(&mut c)?;
        f(&mut c)
    }

    fn flush_log(&self, c: &mut Connection) -> Result<()> {
        let rows = std::mem::take(&mut *self.pending_log.lock().unwrap_or_else(|p| p.into_inner()));
        if rows.is_empty() {
            return Ok(());
        }
        let tx = c.transaction()?;
        {
            let mut insert = tx.prepare_cached(
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

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let c = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&c)
    }

    /// Creates the entity's state row and replica table if they do not exist yet.
    pub fn ensure_entity(&self, key: &EntityKey) -> Result<()> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            let owner: Option<(String, String)> = tx
                .query_row("SELECT connection, entity FROM entity_state WHERE replica_table = ?1", [&table], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((conn, ent)) = owner {
                if conn != key.connection || ent != key.entity {
                    return Err(StoreError::NotFound(format!(
                        "entity {key} would share the replica table `{table}` with {conn}/{ent}; rename one of them"
                    )));
                }
            }
            tx.execute(
                "INSERT OR IGNORE INTO entity_state (connection, entity, replica_table) VALUES (?1, ?2, ?3)",
                params![key.connection, key.entity, table],
            )?;
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

    pub fn entity(&self, key: &EntityKey) -> Result<EntityRow> {
        self.read(|c| {
            c.query_row(&format!("{ENTITY_SELECT} WHERE connection = ?1 AND entity = ?2"), params![key.connection, key.entity], entity_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("no entity {key} in the replica")))
        })
    }

    pub fn entities(&self) -> Result<Vec<EntityRow>> {
        self.read(|c| {
            let mut st = c.prepare(&format!("{ENTITY_SELECT} ORDER BY connection, entity"))?;
            let rows = st.query_map([], entity_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    /// Where a lookback sweep starts reading: the checkpoint that was current at `at` (the latest
    /// history point at or before it), never above the current checkpoint. No such point, or no
    /// anchor at all, means from the beginning: every version assigned since `at` lies above it,
    /// so a commit that became visible late, below what polls had already read, is re-read.
    pub fn checkpoint_at(&self, key: &EntityKey, at: Option<i64>) -> Result<RowVersion> {
        self.read(|c| {
            let Some(at) = at else { return Ok(RowVersion::zero()) };
            let found: Option<String> = c
                .query_row(
                    "SELECT checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at <= ?3
                     ORDER BY at DESC LIMIT 1",
                    params![key.connection, key.entity, at],
                    |r| r.get(0),
                )
                .optional()?;
            let current: String = c.query_row(
                "SELECT checkpoint FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| r.get(0),
            )?;
            let cur = RowVersion::parse(&current).unwrap_or_default();
            Ok(found.and_then(|v| RowVersion::parse(&v)).map_or(RowVersion::zero(), |h| h.min(cur)))
        })
    }

    /// After a cycle that caught up: schedules the lookback sweeps (DESIGN §2.5) and prunes the
    /// checkpoint history they read.
    /// - A sweep that started at `sweep_started_at = s` has re-read everything that became visible
    ///   by `s` and was assigned after its anchor. A commit visible after `s` is at most `lookback`
    ///   late, so its version was assigned after `s − lookback`: the next sweep starts there and is
    ///   due at `s + lookback`.
    /// - Any other catch-up only schedules the first sweep, `lookback` after it, with the anchor
    ///   left as it is (none at first: the first sweep re-reads the initial load once, including
    ///   below its top, where a load cannot see late commits).
    /// - `lookback_ms == 0` disables sweeps.
    ///
    /// History older than the UI's week and twice the lookback goes, except the point the anchor
    /// needs.
    pub fn schedule_lookback(&self, key: &EntityKey, now_ms: i64, lookback_ms: i64, sweep_started_at: Option<i64>) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            let args = params![key.connection, key.entity];
            match sweep_started_at {
                _ if lookback_ms <= 0 => {
                    tx.execute("UPDATE entity_state SET lookback_due_at = NULL WHERE connection = ?1 AND entity = ?2", args)?;
                }
                Some(s) => {
                    tx.execute(
                        "UPDATE entity_state SET lookback_anchor_at = ?3, lookback_due_at = ?4 WHERE connection = ?1 AND entity = ?2",
                        params![key.connection, key.entity, s - lookback_ms, s + lookback_ms],
                    )?;
                }
                None => {
                    tx.execute(
                        "UPDATE entity_state SET lookback_due_at = coalesce(lookback_due_at, ?3) WHERE connection = ?1 AND entity = ?2",
                        params![key.connection, key.entity, now_ms + lookback_ms],
                    )?;
                }
            }
            let anchor: Option<i64> = tx.query_row("SELECT lookback_anchor_at FROM entity_state WHERE connection = ?1 AND entity = ?2", args, |r| r.get(0))?;
            let keep_from = (now_ms - HISTORY_KEPT_MS.max(2 * lookback_ms)).min(anchor.unwrap_or(i64::MAX));
            // The newest point at or before `keep_from` stays: it is what `checkpoint_at` answers there.
            tx.execute(
                "DELETE FROM checkpoint_history WHERE rowid IN (
                   SELECT rowid FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at < (
                     SELECT at FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at <= ?3 ORDER BY at DESC LIMIT 1)
                   LIMIT 10000)",
                params![key.connection, key.entity, keep_from],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Applies pages atomically, in feed order, in one transaction: upserts (older never
    /// overwrites newer), failed items, superseded failed items, run progress, checkpoint and
    /// resync cursor. Several pages per transaction are as exact as one: the checkpoint written
    /// is the highest version among exactly the rows committed with it.
    pub fn apply_pages(&self, key: &EntityKey, pages: &[PageBatch]) -> Result<Applied> {
        let table = key.table();
        self.write(|c| {
            let tx = c.transaction()?;
            let mut applied = Applied::default();
            let (checkpoint, pass, live_before, forwarding): (String, i64, i64, bool) = tx.query_row(
                "SELECT checkpoint, resync_pass, replica_rows, forward_to IS NOT NULL FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            let mut live_delta = 0i64;
            {
                let mut find = tx.prepare_cached(&format!(
                    "SELECT rowid, row_version, deleted_at IS NOT NULL, seen_pass FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"
                ))?;
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT INTO \"{table}\" (id, id_hash, row_version, data, updated_at, deleted_at, seen_pass)
                     VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)"
                ))?;
                let mut update = tx.prepare_cached(&format!(
                    "UPDATE \"{table}\" SET row_version = ?2, data = ?3, updated_at = ?4, deleted_at = NULL,
                       seen_pass = max(seen_pass, ?5) WHERE rowid = ?1"
                ))?;
                // Every id received is evidence it exists at the source: mark it with the current
                // pass so that a pass in progress does not tombstone it.
                let mut mark_seen = tx.prepare_cached(&format!("UPDATE \"{table}\" SET seen_pass = ?2 WHERE rowid = ?1"))?;
                // Rows are visited in id_hash order, so the index is walked front to back (each
                // leaf page read once) instead of at random. The sort is stable: two versions of
                // one id keep their feed order (and older never overwrites newer anyway).
                let mut rows: Vec<(i64, &Record, i64)> =
                    pages.iter().flat_map(|b| b.records.iter().map(move |r| (id_hash(&r.id), r, b.now_ms))).collect();
                rows.sort_by_key(|(hash, _, _)| *hash);
                for (hash, r, now_ms) in rows {
                    let existing = find
                        .query_row(params![hash, r.id], |row| {
                            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, bool>(2)?, row.get::<_, i64>(3)?))
                        })
                        .optional()?;
                    match existing {
                        None => {
                            insert.execute(params![r.id, hash, r.version.as_str(), r.data, now_ms, pass])?;
                            applied.rows_written += 1;
                            live_delta += 1;
                            if forwarding {
                                outbox::enqueue(&tx, key, &r.id, hash, r.version.as_str(), outbox::UPSERT, now_ms)?;
                            }
                        }
                        Some((rowid, old, deleted, seen)) => {
                            // Newer wins; and a tombstone yields to the same version served again:
                            // the source still has the record (the pass that tombstoned it missed
                            // it, e.g. served without its id), so the row lives again.
                            if RowVersion::parse(&old).is_none_or(|old| r.version > old || (deleted && r.version >= old)) {
                                update.execute(params![rowid, r.version.as_str(), r.data, now_ms, pass])?;
                                applied.rows_written += 1;
                                if deleted {
                                    live_delta += 1;
                                }
                                // Same transaction as the upsert: a change written is a change forwarded.
                                if forwarding {
                                    outbox::enqueue(&tx, key, &r.id, hash, r.version.as_str(), outbox::UPSERT, now_ms)?;
                                }
                            } else if pass > seen {
                                mark_seen.execute(params![rowid, pass])?;
                            }
                        }
                    }
                }
                // A record rejected with its id (e.g. no rowVersion) still exists at the source: a
                // pass must not tombstone the row it had.
                for rej in pages.iter().flat_map(|b| b.rejected) {
                    let Some(id) = rej.id.as_deref() else { continue };
                    let existing = find.query_row(params![id_hash(id), id], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(3)?))).optional()?;
                    if let Some((rowid, _)) = existing.filter(|(_, seen)| pass > *seen) {
                        mark_seen.execute(params![rowid, pass])?;
                    }
                }
            }
            let has_pending: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM failed_items WHERE state = 'pending' AND connection = ?1 AND entity = ?2)",
                params![key.connection, key.entity],
                |r| r.get(0),
            )?;
            if has_pending {
                // A record that has since synced fine clears its failed items (superseded). Not
                // delivery failures: reading a record again says nothing about the target having it.
                let mut supersede = tx.prepare_cached(
                    "UPDATE failed_items SET state = 'resolved', resolution = 'superseded', resolved_at = ?1
                     WHERE connection = ?2 AND entity = ?3 AND record_id = ?4 AND state = 'pending' AND stage <> 'deliver'
                       AND (row_version IS NULL OR (length(row_version), row_version) <= (length(?5), ?5))",
                )?;
                for b in pages {
                    for r in b.records {
                        applied.superseded += supersede.execute(params![b.now_ms, key.connection, key.entity, r.id, r.version.as_str()])?;
                    }
                }
            }
            let mut checkpoint = RowVersion::parse(&checkpoint).unwrap_or_default();
            let mut checkpoint_moved = false;
            let mut resync_cursor = None;
            let (mut records, mut rejected) = (0i64, 0i64);
            for b in pages {
                for rej in b.rejected {
                    if record_failure(&tx, key, rej, "validate", b.http_status, b.tracking_id, b.now_ms)? {
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
                    params![pages.len() as i64, records, rejected, last.run_id],
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
                    "SELECT max(coalesce((SELECT max(at) FROM checkpoint_history WHERE connection = ?1 AND entity = ?2), ?4),
                                coalesce((SELECT started_at FROM runs WHERE id = ?3), ?4))",
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
            let hash = id_hash(&record.id);
            let existing: Option<(i64, String, bool)> = tx
                .query_row(
                    &format!("SELECT rowid, row_version, deleted_at IS NOT NULL FROM \"{table}\" WHERE id_hash = ?1 AND id = ?2"),
                    params![hash, record.id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let newer_in_replica = existing
                .as_ref()
                .is_some_and(|(_, v, deleted)| !deleted && RowVersion::parse(v).is_some_and(|v| v > record.version));
            let resolution = if newer_in_replica { "superseded" } else { "replayed" };
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
                                   seen_pass = max(seen_pass, ?5) WHERE rowid = ?1"
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
                "UPDATE failed_items SET state = 'resolved', resolution = ?1, resolved_at = ?2, attempts = attempts + 1 WHERE id = ?3",
                params![resolution, now_ms, failed_id],
            )?;
            tx.commit()?;
            Ok(newer_in_replica)
        })
    }

    /// A replay that failed again: the item stays pending with one more attempt and the new error.
    pub fn replay_failed_again(&self, failed_id: i64, rej: &Rejected, tracking_id: Option<&str>, now_ms: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE failed_items SET attempts = attempts + 1, last_failed_at = ?1, error_kind = ?2, message = ?3,
                   tracking_id = coalesce(?4, tracking_id) WHERE id = ?5",
                params![now_ms, rej.kind, rej.message, tracking_id, failed_id],
            )?;
            Ok(())
        })
    }

    pub fn begin_run(&self, key: &EntityKey, kind: &str, now_ms: i64) -> Result<i64> {
        self.write(|c| {
            c.execute(
                "INSERT INTO runs (connection, entity, kind, started_at) VALUES (?1, ?2, ?3, ?4)",
                params![key.connection, key.entity, kind, now_ms],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Closes a run and records the cycle's outcome on the entity. `caught_up` sets the
    /// last-caught-up time and a checkpoint history point.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &self,
        key: &EntityKey,
        run_id: i64,
        outcome: &str,
        error: Option<&str>,
        http_status: Option<u16>,
        tracking_id: Option<&str>,
        caught_up: bool,
        now_ms: i64,
        runs_kept: u32,
    ) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE runs SET finished_at = ?1, outcome = ?2, error = ?3, tracking_id = ?4 WHERE id = ?5",
                params![now_ms, outcome, error, tracking_id, run_id],
            )?;
            // The first catch-up read the whole feed from zero: it counts as the first full pass,
            // so `full_resync_every` runs from it rather than re-reading everything at once.
            tx.execute(
                "UPDATE entity_state SET last_cycle_at = ?1, last_outcome = ?2, last_error = ?3, last_http_status = ?4,
                   last_tracking_id = ?5, next_attempt_at = NULL, last_caught_up_at = CASE WHEN ?6 THEN ?1 ELSE last_caught_up_at END,
                   last_full_resync_at = CASE WHEN ?6 AND last_caught_up_at IS NULL THEN coalesce(last_full_resync_at, ?1) ELSE last_full_resync_at END
                 WHERE connection = ?7 AND entity = ?8",
                params![now_ms, outcome, error, http_status, tracking_id, caught_up, key.connection, key.entity],
            )?;
            if caught_up {
                let checkpoint: String = tx.query_row(
                    "SELECT checkpoint FROM entity_state WHERE connection = ?1 AND entity = ?2",
                    params![key.connection, key.entity],
                    |r| r.get(0),
                )?;
                let last: Option<String> = tx
                    .query_row(
                        "SELECT checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 ORDER BY at DESC LIMIT 1",
                        params![key.connection, key.entity],
                        |r| r.get(0),
                    )
                    .optional()?;
                if last.as_deref() != Some(checkpoint.as_str()) {
                    tx.execute(
                        "INSERT INTO checkpoint_history (connection, entity, at, checkpoint) VALUES (?1, ?2, ?3, ?4)",
                        params![key.connection, key.entity, now_ms, checkpoint],
                    )?;
                }
            }
            tx.execute(
                "DELETE FROM runs WHERE connection = ?1 AND entity = ?2 AND id <= (SELECT id FROM runs WHERE connection = ?1 AND entity = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
                params![key.connection, key.entity, runs_kept],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Records a cycle that did not run (circuit open): the reason and the next attempt.
    pub fn note_skipped(&self, key: &EntityKey, outcome: &str, error: &str, next_attempt_at: Option<i64>, now_ms: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE entity_state SET last_outcome = ?1, last_error = ?2, next_attempt_at = ?3, last_cycle_at = ?4
                 WHERE connection = ?5 AND entity = ?6",
                params![outcome, error, next_attempt_at, now_ms, key.connection, key.entity],
            )?;
            Ok(())
        })
    }

    pub fn set_paused(&self, key: &EntityKey, paused: bool) -> Result<()> {
        self.write(|c| {
            c.execute("UPDATE entity_state SET paused = ?1 WHERE connection = ?2 AND entity = ?3", params![paused, key.connection, key.entity])?;
            Ok(())
        })
    }

    /// Sets the checkpoint back (e.g. to "0" to re-read everything). History is cleared so that the
    /// lookback does not reach behind the reset, and the next sweep starts from the beginning.
    pub fn reset_checkpoint(&self, key: &EntityKey, to: &RowVersion) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("UPDATE entity_state SET checkpoint = ?1 WHERE connection = ?2 AND entity = ?3", params![to.as_str(), key.connection, key.entity])?;
            tx.execute("DELETE FROM checkpoint_history WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity])?;
            tx.execute("UPDATE entity_state SET lookback_anchor_at = NULL WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity])?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Starts a full resync pass, or resumes the one in progress. Returns (pass, cursor).
    pub fn resync_begin(&self, key: &EntityKey) -> Result<(i64, RowVersion)> {
        self.write(|c| {
            let tx = c.transaction()?;
            let (pass, state, cursor): (i64, Option<String>, Option<String>) = tx.query_row(
                "SELECT resync_pass, resync_state, resync_cursor FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let out = if state.as_deref() == Some("running") {
                (pass, cursor.and_then(|c| RowVersion::parse(&c)).unwrap_or_default())
            } else {
                tx.execute(
                    "UPDATE entity_state SET resync_pass = resync_pass + 1, resync_state = 'running', resync_cursor = '0',
                       resync_seen = 0, resync_would_delete = NULL WHERE connection = ?1 AND entity = ?2",
                    params![key.connection, key.entity],
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
            let live: i64 = tx.query_row(&format!("SELECT count(*) FROM \"{table}\" WHERE deleted_at IS NULL"), [], |r| r.get(0))?;
            let unseen: i64 = tx.query_row(
                &format!("SELECT count(*) FROM \"{table}\" WHERE deleted_at IS NULL AND seen_pass < ?1"),
                [pass],
                |r| r.get(0),
            )?;
            let tripped = live > 0 && (unseen as f64) > guard * (live as f64) && !allow_deletions;
            let deleted = if tripped {
                tx.execute(
                    "UPDATE entity_state SET resync_state = 'guard_tripped', resync_would_delete = ?1 WHERE connection = ?2 AND entity = ?3",
                    params![unseen, key.connection, key.entity],
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
            Ok(c.query_row(
                "SELECT replica_rows FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| r.get(0),
            )?)
        })
    }

    /// Calls `each` for every replica row in the order first received, streaming (memory stays flat).
    pub fn for_each_replica_row(&self, key: &EntityKey, include_deleted: bool, mut each: impl FnMut(ReplicaRow) -> std::io::Result<()>) -> Result<()> {
        let table = key.table();
        let path = self.path.clone();
        // A dedicated connection: an export can take long and must not hold the shared reader.
        let c = open_read_only_connection(&path)?;
        let filter = if include_deleted { "" } else { "WHERE deleted_at IS NULL" };
        let mut st = c.prepare(&format!("SELECT id, row_version, data, deleted_at FROM \"{table}\" {filter} ORDER BY rowid"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let data: String = r.get(2)?;
            let row = ReplicaRow {
                id: r.get(0)?,
                row_version: r.get(1)?,
                data: serde_json::value::RawValue::from_string(data).map_err(|e| StoreError::NotFound(format!("corrupt row: {e}")))?,
                deleted_at: r.get(3)?,
            };
            each(row).map_err(|e| StoreError::NotFound(format!("write failed: {e}")))?;
        }
        Ok(())
    }

    /// Pending failed items of the entity, from the counter the triggers keep exact.
    pub fn pending_failed_count(&self, key: &EntityKey) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT pending_failed FROM entity_state WHERE connection = ?1 AND entity = ?2",
                params![key.connection, key.entity],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
        })
    }

    /// A page of failed items, newest first, after `before_id` (keyset paging: constant time per page).
    pub fn failed_items(&self, f: &FailedFilter, before_id: Option<i64>, limit: u32) -> Result<Vec<FailedItem>> {
        self.read(|c| {
            let (sql, args) = failed_query(f, "SELECT * FROM failed_items", before_id, Some(limit));
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), failed_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn failed_ids(&self, f: &FailedFilter) -> Result<Vec<i64>> {
        self.read(|c| {
            let (sql, args) = failed_query(f, "SELECT id FROM failed_items", None, None);
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    }

    pub fn failed_item(&self, id: i64) -> Result<FailedItem> {
        self.read(|c| {
            c.query_row("SELECT * FROM failed_items WHERE id = ?1", [id], failed_row)
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("no failed item {id}; `syncmon failed list` shows them")))
        })
    }

    /// Marks items discarded; returns how many were pending.
    pub fn discard_failed(&self, ids: &[i64], now_ms: i64) -> Result<usize> {
        self.write(|c| {
            let tx = c.transaction()?;
            let mut n = 0;
            {
                let mut st = tx.prepare_cached(
                    "UPDATE failed_items SET state = 'discarded', resolution = 'discarded', resolved_at = ?1 WHERE id = ?2 AND state = 'pending'",
                )?;
                for id in ids {
                    n += st.execute(params![now_ms, id])?;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    pub fn runs(&self, key: &EntityKey, limit: u32) -> Result<Vec<RunRow>> {
        self.read(|c| {
            let mut st = c.prepare(
                "SELECT id, connection, entity, kind, started_at, finished_at, pages, records, failed_records, outcome, error, tracking_id
                 FROM runs WHERE connection = ?1 AND entity = ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![key.connection, key.entity, limit], |r| {
                    Ok(RunRow {
                        id: r.get(0)?,
                        connection: r.get(1)?,
                        entity: r.get(2)?,
                        kind: r.get(3)?,
                        started_at: r.get(4)?,
                        finished_at: r.get(5)?,
                        pages: r.get(6)?,
                        records: r.get(7)?,
                        failed_records: r.get(8)?,
                        outcome: r.get(9)?,
                        error: r.get(10)?,
                        tracking_id: r.get(11)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
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
            if let Some(Ok(mut c)) = self.writer.as_ref().map(Mutex::try_lock) {
                self.flush_log(&mut c)?;
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
    /// made to its target (logged under the target's id for `connection/entity`).
    pub fn requests(&self, key: Option<&EntityKey>, failed_only: bool, limit: u32) -> Result<Vec<RequestRow>> {
        self.flush()?;
        self.read(|c| {
            let query = |conn_entity: Option<(&str, &str)>| -> Result<Vec<RequestRow>> {
                let mut sql = String::from(
                    "SELECT id, at, connection, entity, method, url, status, duration_ms, attempt, bytes, tracking_id, error FROM request_log WHERE 1 = 1",
                );
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
                sql.push_str(" ORDER BY id DESC LIMIT ?");
                args.push((limit as i64).into());
                let mut st = c.prepare(&sql)?;
                let rows = st
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok(RequestRow {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            connection: r.get(2)?,
                            entity: r.get(3)?,
                            method: r.get(4)?,
                            url: r.get(5)?,
                            status: r.get(6)?,
                            duration_ms: r.get(7)?,
                            attempt: r.get(8)?,
                            bytes: r.get(9)?,
                            tracking_id: r.get(10)?,
                            error: r.get(11)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            };
            let Some(k) = key else { return query(None) };
            let mut rows = query(Some((&k.connection, &k.entity)))?;
            let target: Option<String> = c
                .query_row("SELECT forward_to FROM entity_state WHERE connection = ?1 AND entity = ?2", params![k.connection, k.entity], |r| r.get(0))
                .optional()?
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
        self.write(|c| Ok(c.execute("DELETE FROM request_log WHERE id IN (SELECT id FROM request_log WHERE at < ?1 LIMIT 50000)", [older_than_ms])?))
    }
}

/// Checkpoint history is written at most this often inside a cycle (at every catch-up besides).
const HISTORY_EVERY_MS: i64 = 5_000;
/// History kept at least this long (the UI's checkpoint chart shows a week), and twice the lookback.
const HISTORY_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

fn set_replica_rows(tx: &rusqlite::Transaction, key: &EntityKey, n: i64) -> rusqlite::Result<()> {
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

const ENTITY_SELECT: &str = "SELECT connection, entity, checkpoint, last_caught_up_at, last_cycle_at, last_outcome, last_error,
    last_http_status, last_tracking_id, paused, resync_pass, resync_state, resync_cursor, resync_seen, resync_would_delete,
    last_full_resync_at, next_attempt_at, lookback_anchor_at, lookback_due_at FROM entity_state";

fn entity_row(r: &rusqlite::Row) -> rusqlite::Result<EntityRow> {
    let checkpoint: String = r.get(2)?;
    let cursor: Option<String> = r.get(12)?;
    Ok(EntityRow {
        key: EntityKey { connection: r.get(0)?, entity: r.get(1)? },
        checkpoint: RowVersion::parse(&checkpoint).unwrap_or_default(),
        last_caught_up_at: r.get(3)?,
        last_cycle_at: r.get(4)?,
        last_outcome: r.get(5)?,
        last_error: r.get(6)?,
        last_http_status: r.get(7)?,
        last_tracking_id: r.get(8)?,
        paused: r.get(9)?,
        resync_pass: r.get(10)?,
        resync_state: r.get(11)?,
        resync_cursor: cursor.and_then(|c| RowVersion::parse(&c)),
        resync_seen: r.get(13)?,
        resync_would_delete: r.get(14)?,
        last_full_resync_at: r.get(15)?,
        next_attempt_at: r.get(16)?,
        lookback_anchor_at: r.get(17)?,
        lookback_due_at: r.get(18)?,
    })
}

fn failed_row(r: &rusqlite::Row) -> rusqlite::Result<FailedItem> {
    Ok(FailedItem {
        id: r.get("id")?,
        connection: r.get("connection")?,
        entity: r.get("entity")?,
        record_id: r.get("record_id")?,
        row_version: r.get("row_version")?,
        payload: r.get("payload")?,
        stage: r.get("stage")?,
        error_kind: r.get("error_kind")?,
        message: r.get("message")?,
        http_status: r.get("http_status")?,
        tracking_id: r.get("tracking_id")?,
        attempts: r.get("attempts")?,
        first_failed_at: r.get("first_failed_at")?,
        last_failed_at: r.get("last_failed_at")?,
        state: r.get("state")?,
        resolution: r.get("resolution")?,
    })
}

fn failed_query(f: &FailedFilter, select: &str, before_id: Option<i64>, limit: Option<u32>) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = format!("{select} WHERE state = ?");
    let mut args: Vec<rusqlite::types::Value> = vec![f.state.clone().unwrap_or_else(|| "pending".into()).into()];
    for (col, val) in [("connection", &f.connection), ("entity", &f.entity), ("stage", &f.stage), ("error_kind", &f.error_kind)] {
        if let Some(v) = val {
            sql.push_str(&format!(" AND {col} = ?"));
            args.push(v.clone().into());
        }
    }
    if let Some(t) = f.text.as_ref().filter(|t| !t.is_empty()) {
        sql.push_str(" AND (instr(record_id, ?) > 0 OR instr(tracking_id, ?) > 0 OR instr(message, ?) > 0)");
        for _ in 0..3 {
            args.push(t.clone().into());
        }
    }
    if let Some(b) = before_id {
        sql.push_str(" AND id < ?");
        args.push(b.into());
    }
    sql.push_str(" ORDER BY id DESC");
    if let Some(l) = limit {
        sql.push_str(" LIMIT ?");
        args.push((l as i64).into());
    }
    (sql, args)
}

/// Inserts a failed item, or counts another attempt on the pending one for the same record and
/// stage (a re-read of the same bad record must not pile up duplicates). Returns true when new.
fn record_failure(
    tx: &rusqlite::Transaction,
    key: &EntityKey,
    rej: &Rejected,
    stage: &str,
    http_status: Option<u16>,
    tracking_id: Option<&str>,
    now_ms: i64,
) -> Result<bool> {
    let existing: Option<i64> = match &rej.id {
        Some(id) => tx
            .prepare_cached("SELECT id FROM failed_items WHERE connection = ?1 AND entity = ?2 AND record_id = ?3 AND state = 'pending' AND stage = ?4")?
            .query_row(params![key.connection, key.entity, id, stage], |r| r.get(0))
            .optional()?,
        None => tx
            .prepare_cached(
                "SELECT id FROM failed_items WHERE connection = ?1 AND entity = ?2 AND record_id IS NULL AND state = 'pending' AND stage = ?3 AND payload = ?4",
            )?
            .query_row(params![key.connection, key.entity, stage, rej.payload], |r| r.get(0))
            .optional()?,
    };
    let version = rej.version.as_ref().map(|v| v.as_str().to_string());
    match existing {
        Some(fid) => {
            tx.prepare_cached(
                "UPDATE failed_items SET attempts = attempts + 1, last_failed_at = ?1, payload = ?2, row_version = coalesce(?3, row_version),
                   error_kind = ?4, message = ?5, http_status = ?6, tracking_id = ?7 WHERE id = ?8",
            )?
            .execute(params![now_ms, rej.payload, version, rej.kind, rej.message, http_status, tracking_id, fid])?;
            Ok(false)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO failed_items (connection, entity, record_id, row_version, payload, stage, error_kind, message, http_status,
                   tracking_id, first_failed_at, last_failed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            )?
            .execute(params![key.connection, key.entity, rej.id, version, rej.payload, stage, rej.kind, rej.message, http_status, tracking_id, now_ms])?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, v: &str) -> Record {
        Record { id: id.into(), version: RowVersion::parse(v).unwrap(), data: format!(r#"{{"id":"{id}","rowVersion":"{v}"}}"#) }
    }

    /// Two processes (here: threads with their own connections) opening the same new database at
    /// once: both end up with the whole schema, neither fails "table … already exists".
    #[test]
    fn concurrent_first_opens_migrate_once() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("syncmon.db");
            let start = std::sync::Arc::new(std::sync::Barrier::new(3));
            let openers: Vec<_> = (0..3)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Store::open(&path).map(|_| ())
                    })
                })
                .collect();
            for o in openers {
                if let Err(e) = o.join().unwrap() {
                    panic!("round {round}: a concurrent open failed: {e}");
                }
            }
            let c = Connection::open(&path).unwrap();
            assert_eq!(c.query_row("PRAGMA user_version", [], |r| r.get::<_, usize>(0)).unwrap(), SCHEMA_VERSION);
        }
    }

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

    fn setup() -> (tempfile::TempDir, Store, EntityKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("replica.db")).unwrap();
        let key = EntityKey::new("c", "items");
        store.ensure_entity(&key).unwrap();
        (dir, store, key)
    }

    fn apply(store: &Store, key: &EntityKey, records: &[Record], rejected: &[Rejected]) -> Applied {
        let run = store.begin_run(key, "incremental", 1).unwrap();
        let max = records.iter().map(|r| r.version.clone()).max();
        store
            .apply_page(key, &PageBatch { records, rejected, tracking_id: Some("t"), http_status: Some(200), max_version: max.as_ref(), resync_cursor: None, run_id: run, now_ms: 1 })
            .unwrap()
    }

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
        let rej = Rejected { id: Some("b".into()), version: None, payload: "{}".into(), kind: "missing_row_version", message: "m".into() };
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
        let (_d, store, key) = setup();
        let all: Vec<Record> = (0..10).map(|i| rec(&format!("r{i}"), &format!("{}", i + 1))).collect();
        apply(&store, &key, &all, &[]);
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
        assert_eq!(store.entity(&key).unwrap().resync_state.as_deref(), Some("guard_tripped"));
        let end = store.resync_finish(&key, pass, 0.5, true, 7).unwrap();
        assert_eq!(end.deleted, 7);
        assert_eq!(store.replica_count(&key).unwrap(), 1);
    }

    #[test]
    fn a_resync_does_not_tombstone_a_row_whose_record_came_back_rejected() {
        let (_d, store, key) = setup();
        let all: Vec<Record> = (0..10).map(|i| rec(&format!("r{i}"), &format!("{}", i + 1))).collect();
        apply(&store, &key, &all, &[]);
        let (pass, _) = store.resync_begin(&key).unwrap();
        let poisoned: Vec<Rejected> = ["r8", "r9"]
            .iter()
            .map(|id| Rejected { id: Some((*id).into()), version: None, payload: "{}".into(), kind: "missing_row_version", message: "m".into() })
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
        let run = store.begin_run(&key, "resync", 1).unwrap();
        let records = [rec("a", "5")];
        store
            .apply_page(&key, &PageBatch { records: &records, rejected: &[], tracking_id: None, http_status: None, max_version: Some(&records[0].version), resync_cursor: Some(&records[0].version), run_id: run, now_ms: 1 })
            .unwrap();
        drop(store);
        let store = Store::open(&_d.path().join("replica.db")).unwrap();
        assert_eq!(store.resync_begin(&key).unwrap(), (pass, RowVersion::from(5)));
        assert_eq!(store.runs(&key, 5).unwrap()[0].outcome, "interrupted");
    }

    fn apply_at(store: &Store, key: &EntityKey, records: &[Record], now_ms: i64) {
        apply_in_run(store, key, store.begin_run(key, "incremental", now_ms - HISTORY_EVERY_MS).unwrap(), records, now_ms)
    }

    fn apply_in_run(store: &Store, key: &EntityKey, run: i64, records: &[Record], now_ms: i64) {
        let max = records.iter().map(|r| r.version.clone()).max();
        store
            .apply_page(key, &PageBatch { records, rejected: &[], tracking_id: None, http_status: None, max_version: max.as_ref(), resync_cursor: None, run_id: run, now_ms })
            .unwrap();
    }

    fn history(store: &Store, key: &EntityKey) -> Vec<(i64, String)> {
        store.checkpoint_history(key, i64::MIN).unwrap().into_iter().map(|p| (p.at, p.checkpoint)).collect()
    }

    #[test]
    fn a_sweep_starts_from_the_checkpoint_current_at_its_anchor() {
        let (_d, store, key) = setup();
        let run = store.begin_run(&key, "incremental", 0).unwrap();
        apply_at(&store, &key, &[rec("a", "10")], 1_000);
        store.finish_run(&key, run, "caught_up", None, None, None, true, 1_000, 100).unwrap();
        apply_at(&store, &key, &[rec("b", "20")], 500_000);
        store.finish_run(&key, run, "caught_up", None, None, None, true, 500_000, 100).unwrap();
        apply_at(&store, &key, &[rec("c", "30")], 900_000);
        store.finish_run(&key, run, "caught_up", None, None, None, true, 900_000, 100).unwrap();
        assert_eq!(store.checkpoint_at(&key, Some(400_000)).unwrap().as_str(), "10");
        assert_eq!(store.checkpoint_at(&key, Some(500_000)).unwrap().as_str(), "20");
        assert_eq!(store.checkpoint_at(&key, Some(10_000_000)).unwrap().as_str(), "30");
        assert_eq!(store.checkpoint_at(&key, Some(999)).unwrap(), RowVersion::zero(), "before any history: from the beginning");
        assert_eq!(store.checkpoint_at(&key, None).unwrap(), RowVersion::zero(), "no anchor: from the beginning");
    }

    #[test]
    fn the_first_sweep_comes_one_lookback_after_the_first_catch_up_and_each_sweep_schedules_the_next() {
        let (_d, store, key) = setup();
        let lookback = 600_000;
        let row = |s: &Store| {
            let r = s.entity(&key).unwrap();
            (r.lookback_anchor_at, r.lookback_due_at)
        };
        assert_eq!(row(&store), (None, None), "nothing scheduled before a catch-up");
        store.schedule_lookback(&key, 1_000, lookback, None).unwrap();
        assert_eq!(row(&store), (None, Some(601_000)), "the first sweep re-reads from the beginning");
        store.schedule_lookback(&key, 300_000, lookback, None).unwrap();
        assert_eq!(row(&store), (None, Some(601_000)), "polls do not push the sweep back");
        store.schedule_lookback(&key, 650_000, lookback, Some(602_000)).unwrap();
        assert_eq!(row(&store), (Some(2_000), Some(1_202_000)), "a sweep started at s: anchor s - L, due s + L");
        store.reset_checkpoint(&key, &RowVersion::zero()).unwrap();
        assert_eq!(row(&store), (None, Some(1_202_000)), "a reset clears the history, so the next sweep reads from 0");
        store.schedule_lookback(&key, 700_000, 0, None).unwrap();
        assert_eq!(row(&store).1, None, "lookback = 0s: no sweeps");
    }

    #[test]
    fn a_long_cycle_records_checkpoint_history_every_few_seconds() {
        let (_d, store, key) = setup();
        let run = store.begin_run(&key, "incremental", 0).unwrap();
        for (i, at) in [1_000, 4_999, 5_000, 9_000, 9_999, 10_001, 16_000].into_iter().enumerate() {
            apply_in_run(&store, &key, run, &[rec(&format!("r{i}"), &format!("{}", 10 * (i + 1)))], at);
        }
        let at: Vec<i64> = history(&store, &key).into_iter().map(|(at, _)| at).collect();
        assert_eq!(at, vec![5_000, 10_001, 16_000], "none in the cycle's first seconds, then one every 5 s");
        assert_eq!(store.checkpoint_at(&key, Some(9_999)).unwrap().as_str(), "30");
        assert_eq!(store.checkpoint_at(&key, Some(4_999)).unwrap(), RowVersion::zero());
    }

    #[test]
    fn pruning_keeps_a_week_twice_the_lookback_and_the_point_the_anchor_needs() {
        let (_d, store, key) = setup();
        let day = 24 * 3600 * 1000;
        for d in 0..10 {
            apply_at(&store, &key, &[rec(&format!("r{d}"), &format!("{}", 10 * (d + 1)))], d * day);
        }
        store.schedule_lookback(&key, 10 * day, 600_000, Some(2 * day + 600_000)).unwrap();
        let at: Vec<i64> = history(&store, &key).into_iter().map(|(at, _)| at / day).collect();
        assert_eq!(at, (2..10).collect::<Vec<_>>(), "the anchor (day 2) still finds its checkpoint");
        store.schedule_lookback(&key, 10 * day, 600_000, Some(10 * day)).unwrap();
        let at: Vec<i64> = history(&store, &key).into_iter().map(|(at, _)| at / day).collect();
        assert_eq!(at, (3..10).collect::<Vec<_>>(), "a week back, plus the point at or before it");
        store.schedule_lookback(&key, 10 * day, 30 * day, None).unwrap();
        assert_eq!(history(&store, &key).len(), 7, "a lookback longer than a week keeps twice its length");
    }
}
