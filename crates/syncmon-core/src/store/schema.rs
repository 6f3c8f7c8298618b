//! The schema: numbered migrations, the version this build writes, and SQLite's integrity verdicts.

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
-- Front-end settings (notifications, thresholds) as small JSON values.
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- The failed-items table filtered by error kind pages and counts in the index.
CREATE INDEX failed_items_by_kind ON failed_items (state, error_kind, id);
"#,
    r#"
-- Text search over failed items scans this narrow index (id order, no payloads) instead of the table.
CREATE INDEX failed_items_text ON failed_items (state, id, record_id, tracking_id, message);
-- The overview's sparklines: runs per entity in time order, from the index alone, no sorting.
CREATE INDEX runs_by_entity_time ON runs (connection, entity, started_at, records);
"#,
    r#"
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
"#,
    r#"
-- Lookback sweeps (DESIGN §2.5): the next sweep re-reads from the checkpoint that was current at
-- `lookback_anchor_at` (NULL = from the beginning: the first sweep re-reads the initial load once),
-- and is due at `lookback_due_at` (NULL = not scheduled: nothing has caught up yet).
ALTER TABLE entity_state ADD COLUMN lookback_anchor_at INTEGER;
ALTER TABLE entity_state ADD COLUMN lookback_due_at INTEGER;
"#,
    r#"
-- Records pushed to Syncmon (store/ingest.rs): one row per accepted `POST /ingest` call, written
-- before the 202 answers it, applied later by the agent's ingest worker. `seq` is arrival order;
-- `id` is the correlation id the caller got; `webhook_id` makes a repeated call one batch.
CREATE TABLE ingest_batches (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    records INTEGER,
    applied INTEGER,
    unchanged INTEGER,
    failed INTEGER,
    failures TEXT,
    applied_at INTEGER,
    UNIQUE (connection, webhook_id)
);
CREATE INDEX ingest_batches_by_state ON ingest_batches (state, seq);
"#,
    r#"
-- Schema validation: the JSON Schema keyword a record broke (`minimum`, `type`, …; error kind
-- `schema`), which the Failed screen groups by. The partial index holds only such items, so the
-- counts per rule cost nothing where no entity has a schema.
ALTER TABLE failed_items ADD COLUMN rule TEXT;
CREATE INDEX failed_items_by_rule ON failed_items (state, rule, id) WHERE rule IS NOT NULL;
"#,
    r#"
-- Finding anything by a Trackingid or a record id (`syncmon find`, `requests --tracking-id`, the
-- app's search box) without reading whole tables.
CREATE INDEX request_log_by_tracking_id ON request_log (tracking_id) WHERE tracking_id IS NOT NULL;
CREATE INDEX runs_by_tracking_id ON runs (tracking_id) WHERE tracking_id IS NOT NULL;
CREATE INDEX failed_items_by_tracking_id ON failed_items (tracking_id) WHERE tracking_id IS NOT NULL;
CREATE INDEX failed_items_by_record_id ON failed_items (record_id) WHERE record_id IS NOT NULL;
"#,
    r#"
-- Two-way flows (two entities of one name forwarding to each other): per system and record the
-- fingerprint of the content both systems held when Syncmon last brought them level. A record
-- a feed serves with that fingerprint is Syncmon's own write coming back (not sent again); a
-- record whose system moved away from it was changed there (a conflict when both moved).
-- `entity_state.two_way` holds the pair's rules (peer, fields left out of fingerprints) as JSON.
CREATE TABLE two_way_base (
    system TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    fingerprint INTEGER NOT NULL,
    PRIMARY KEY (system, entity, record_id)
) WITHOUT ROWID;
ALTER TABLE entity_state ADD COLUMN two_way TEXT;
"#,
    r#"
-- Flag write-back: the records to mark at the source (`write_back` on an entity), queued in the
-- same transaction as the replica write (or the delivery, when the entity forwards), so a crash
-- between the write and the mark loses no mark. One row per record; a newer version replaces it.
CREATE TABLE write_back_queue (
    id INTEGER PRIMARY KEY,
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    row_version TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    UNIQUE (connection, entity, record_id)
);
ALTER TABLE entity_state ADD COLUMN write_back INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- The Activity log (store/events.rs): every event as emitted, so Activity and the diagnostics
-- bundle still show what happened after a restart. `body` is the event's JSON; pruned to the
-- newest 20,000 and 30 days.
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    connection TEXT,
    entity TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (at);
"#,
    r#"
-- Retrying vs failing: whether the last failed cycle failed on a transient error (5xx, timeout,
-- connection), which the next poll retries by itself within the breaker's budget.
ALTER TABLE entity_state ADD COLUMN last_failure_transient INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- The last verify of each entity (the report as JSON), shown on the Entity screen and put in
-- the diagnostics bundle; the next verify of the entity replaces it.
CREATE TABLE verify_results (
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    finished_at INTEGER NOT NULL,
    report TEXT NOT NULL,
    PRIMARY KEY (connection, entity)
);
"#,
    r#"
-- Activity searched in the store (store/events.rs): by entity or type, newest first, paged back
-- by sequence number.
CREATE INDEX events_by_seq ON events (seq);
CREATE INDEX events_by_entity ON events (connection, entity, seq);
CREATE INDEX events_by_kind ON events (kind, seq);
-- Every time an entity was caught up, for its lag over the last 7 days (store/lag.rs): the run
-- history keeps only the last runs_kept runs, hours at a short poll interval. Seeded from the
-- runs and the entity states there are; pruned to 7 days plus the one catch-up before them.
CREATE TABLE catch_ups (
    connection TEXT NOT NULL,
    entity TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (connection, entity, at)
) WITHOUT ROWID;
INSERT OR IGNORE INTO catch_ups (connection, entity, at)
    SELECT connection, entity, finished_at FROM runs WHERE outcome IN ('caught_up', 'guard_tripped') AND finished_at IS NOT NULL;
INSERT OR IGNORE INTO catch_ups (connection, entity, at)
    SELECT connection, entity, last_caught_up_at FROM entity_state WHERE last_caught_up_at IS NOT NULL;
"#,
];

/// The schema version this build writes: migrations are numbered from 1 in `PRAGMA user_version`
/// (the numbering `rusqlite_migration` used, so existing databases carry on).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Brings the schema to [`SCHEMA_VERSION`] in ONE immediate transaction: the version is read
/// under the write lock, so a second process opening the same new database waits and then finds
/// the schema made, instead of both creating it ("table entity_state already exists").
pub(super) fn migrate(conn: &mut Connection) -> std::result::Result<(), String> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    let found: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if found > SCHEMA_VERSION {
        return Err(format!(
            "the database has schema version {found}, newer than this Syncmon's {SCHEMA_VERSION}: it was written by a newer Syncmon; use that version"
        ));
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
pub(super) fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase))
}

/// Runs `PRAGMA integrity_check` (or the cheaper `quick_check`): the problems, none when "ok".
pub(super) fn integrity_problems(c: &Connection, quick: bool) -> rusqlite::Result<Vec<String>> {
    let pragma = if quick { "PRAGMA quick_check(100)" } else { "PRAGMA integrity_check(100)" };
    let mut st = c.prepare(pragma)?;
    let rows: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(if rows.len() == 1 && rows[0] == "ok" { Vec::new() } else { rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

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
}
