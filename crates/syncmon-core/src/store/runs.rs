//! Runs: one row per cycle of an entity (what it read, how it ended), the cycle's outcome on the
//! entity, and the per-hour sums the overview's sparklines show.

use super::db::{Dialect, Row};
use super::{EntityKey, Result, Store};
use crate::state::{Outcome, RunKind, RunOutcome, UnfinishedRun};
use rusqlite::params;
use serde::Serialize;

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct RunRow {
    pub id: i64,
    pub connection: String,
    pub entity: String,
    /// The cycle's kind.
    pub kind: RunKind,
    /// Milliseconds since 1970, as all times here.
    pub started_at: i64,
    /// None while the run is under way, and for a run the process ended during (`interrupted`).
    pub finished_at: Option<i64>,
    /// Pages, records and new failed items the cycle wrote, counted as its batches commit.
    pub pages: i64,
    pub records: i64,
    pub failed_records: i64,
    pub outcome: RunOutcome,
    /// Why the cycle failed or stopped; None when it did not.
    pub error: Option<String>,
    /// The `Trackingid` of the failure, else of the last answer: what the source's operators ask for.
    pub tracking_id: Option<String>,
}

impl Store {
    pub fn begin_run(&self, key: &EntityKey, kind: RunKind, now_ms: i64) -> Result<i64> {
        self.write(|c| {
            Ok(c.query_row(
                "INSERT INTO runs (connection, entity, kind, started_at, outcome) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                params![key.connection, key.entity, kind, now_ms, UnfinishedRun::Running],
                |r| r.get(0),
            )?)
        })
    }

    /// Closes a run and records the cycle's outcome on the entity. `caught_up` sets the
    /// last-caught-up time and a checkpoint history point.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_run(
        &self,
        key: &EntityKey,
        run_id: i64,
        outcome: Outcome,
        error: Option<&str>,
        http_status: Option<u16>,
        transient: bool,
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
                   last_tracking_id = ?5, next_attempt_at = NULL, last_failure_transient = ?9, last_caught_up_at = CASE WHEN ?6 THEN ?1 ELSE last_caught_up_at END,
                   last_full_resync_at = CASE WHEN ?6 AND last_caught_up_at IS NULL THEN coalesce(last_full_resync_at, ?1) ELSE last_full_resync_at END
                 WHERE connection = ?7 AND entity = ?8",
                params![now_ms, outcome, error, http_status, tracking_id, caught_up, key.connection, key.entity, transient],
            )?;
            if caught_up {
                super::lag::note_catch_up(&tx, key, now_ms)?;
                let checkpoint: String = tx.query_row(
                    "SELECT checkpoint FROM entity_state WHERE connection = ?1 AND entity = ?2",
                    params![key.connection, key.entity],
                    |r| r.get(0),
                )?;
                let last: Option<String> = tx.query_opt(
                    "SELECT checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 ORDER BY at DESC LIMIT 1",
                    params![key.connection, key.entity],
                    |r| r.get(0),
                )?;
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
    /// Failed runs since the entity's last run that caught up: how many polls in a row failed.
    pub fn failed_streak(&self, key: &EntityKey) -> Result<i64> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM runs WHERE connection = ?1 AND entity = ?2 AND outcome = ?3 AND id > coalesce(
                   (SELECT max(id) FROM runs WHERE connection = ?1 AND entity = ?2 AND outcome IN (?4, ?5)), 0)",
                params![key.connection, key.entity, Outcome::Failed, Outcome::CaughtUp, Outcome::GuardTripped],
                |r| r.get(0),
            )?)
        })
    }

    pub fn note_skipped(&self, key: &EntityKey, outcome: Outcome, error: &str, next_attempt_at: Option<i64>, now_ms: i64) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE entity_state SET last_outcome = ?1, last_error = ?2, next_attempt_at = ?3, last_cycle_at = ?4
                 WHERE connection = ?5 AND entity = ?6",
                params![outcome, error, next_attempt_at, now_ms, key.connection, key.entity],
            )?;
            Ok(())
        })
    }

    pub fn runs(&self, key: &EntityKey, limit: u32) -> Result<Vec<RunRow>> {
        self.read(|c| {
            Ok(c.query_all(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE connection = ?1 AND entity = ?2 ORDER BY id DESC LIMIT ?3"),
                params![key.connection, key.entity, limit],
                run_row,
            )?)
        })
    }

    /// Records received per hour over the `hours` hours ending at `now_ms`, oldest first, for every
    /// entity that had runs in that window (from the run history).
    pub fn hourly_changes(&self, now_ms: i64, hours: usize) -> Result<std::collections::BTreeMap<EntityKey, Vec<i64>>> {
        let start = now_ms - hours as i64 * HOUR_MS;
        self.read(|c| {
            // Rows arrive grouped by entity (index order), so they are summed as they stream by
            // instead of GROUP BY sorting every run of the day.
            let mut out: std::collections::BTreeMap<EntityKey, Vec<i64>> = std::collections::BTreeMap::new();
            let mut current: Option<(EntityKey, Vec<i64>)> = None;
            // Each row is folded in as it is read: nothing is collected (the rows are `()`).
            // SQLite's planner is told the index; PostgreSQL's chooses for itself.
            let hint = if c.dialect() == Dialect::Sqlite { "INDEXED BY runs_by_entity_time" } else { "" };
            c.query_all(
                &format!(
                    "SELECT connection, entity, started_at, records FROM runs {hint} WHERE started_at >= ?1 AND started_at < ?2 ORDER BY connection, entity"
                ),
                params![start, now_ms],
                |r| {
                    let (conn, ent): (String, String) = (r.get(0)?, r.get(1)?);
                    if current.as_ref().is_none_or(|(k, _)| k.connection != conn || k.entity != ent) {
                        if let Some((k, v)) = current.take() {
                            out.insert(k, v);
                        }
                        current = Some((EntityKey { connection: conn, entity: ent }, vec![0; hours]));
                    }
                    let bucket = ((r.get::<_, i64>(2)? - start) / HOUR_MS) as usize;
                    if let Some((_, v)) = current.as_mut() {
                        if let Some(slot) = v.get_mut(bucket) {
                            *slot += r.get::<_, i64>(3)?;
                        }
                    }
                    Ok(())
                },
            )?;
            if let Some((k, v)) = current {
                out.insert(k, v);
            }
            Ok(out)
        })
    }
}

/// The columns [`run_row`] reads, in its order.
pub(super) const RUN_COLUMNS: &str = "id, connection, entity, kind, started_at, finished_at, pages, records, failed_records, outcome, error, tracking_id";

/// A row of `runs` (selected by [`RUN_COLUMNS`]).
pub(super) fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    from_columns!(r => RunRow {
        id, connection, entity, kind, started_at, finished_at, pages, records, failed_records, outcome, error, tracking_id
    })
}
