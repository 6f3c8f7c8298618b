//! The entity's state row (`entity_state`) as the front ends read it: checkpoint, last cycle,
//! pause, resync progress, next attempt, lookback schedule.

use super::db::Row;
use super::{EntityKey, Result, Store, StoreError};
use crate::rowversion::RowVersion;
use crate::state::{Outcome, ResyncState};
use rusqlite::params;
use serde::Serialize;

/// One row of `entity_state`.
#[derive(Debug, Clone, Serialize)]
pub struct EntityRow {
    pub key: EntityKey,
    pub checkpoint: RowVersion,
    pub last_caught_up_at: Option<i64>,
    pub last_cycle_at: Option<i64>,
    pub last_outcome: Option<Outcome>,
    pub last_error: Option<String>,
    pub last_http_status: Option<u16>,
    pub last_tracking_id: Option<String>,
    pub paused: bool,
    pub resync_pass: i64,
    pub resync_state: Option<ResyncState>,
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
    /// The last failed cycle failed on a transient error (the next poll retries it).
    pub last_failure_transient: bool,
}

impl Store {
    pub fn entity(&self, key: &EntityKey) -> Result<EntityRow> {
        self.read(|c| {
            c.query_opt(&format!("{ENTITY_SELECT} WHERE connection = ?1 AND entity = ?2"), params![key.connection, key.entity], entity_row)?
                .ok_or_else(|| StoreError::NotFound(format!("no entity {key} in the replica")))
        })
    }

    pub fn entities(&self) -> Result<Vec<EntityRow>> {
        self.read(|c| Ok(c.query_all(&format!("{ENTITY_SELECT} ORDER BY connection, entity"), params![], entity_row)?))
    }

    pub fn set_paused(&self, key: &EntityKey, paused: bool) -> Result<()> {
        self.write(|c| {
            c.execute("UPDATE entity_state SET paused = ?1 WHERE connection = ?2 AND entity = ?3", params![paused, key.connection, key.entity])?;
            Ok(())
        })
    }

    /// Pauses or resumes the entities in one transaction; returns how many actually changed.
    pub fn set_paused_many(&self, keys: &[EntityKey], paused: bool) -> Result<usize> {
        self.execute_each("UPDATE entity_state SET paused = ?1 WHERE connection = ?2 AND entity = ?3 AND paused <> ?1", keys, |st, k| {
            st.execute(params![paused, k.connection, k.entity])
        })
    }
}

const ENTITY_SELECT: &str = "SELECT connection, entity, checkpoint, last_caught_up_at, last_cycle_at, last_outcome, last_error,
    last_http_status, last_tracking_id, paused, resync_pass, resync_state, resync_cursor, resync_seen, resync_would_delete,
    last_full_resync_at, next_attempt_at, lookback_anchor_at, lookback_due_at, last_failure_transient FROM entity_state";

fn entity_row(r: &Row<'_>) -> rusqlite::Result<EntityRow> {
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
        last_failure_transient: r.get(19)?,
    })
}
