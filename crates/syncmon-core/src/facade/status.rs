//! What `status` shows: each entity's health word and why.

use super::Syncmon;
use crate::error::Result;
use crate::profile::CheckpointKind;
use crate::rowversion::RowVersion;
use crate::state::{Health, Outcome, ResyncState};
use crate::store::{self, EntityKey};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct EntityStatus {
    pub connection: String,
    pub entity: String,
    pub health: Health,
    /// Why, for anything but healthy: the last error in plain words.
    pub reason: Option<String>,
    /// The checkpoint as stored: the version the next incremental cycle reads from (for a
    /// timestamp feed: microseconds since 1970).
    pub checkpoint: String,
    pub checkpoint_kind: CheckpointKind,
    /// The checkpoint as people read it: the version, or a timestamp feed's date (RFC 3339, UTC).
    pub checkpoint_display: String,
    /// Snapshot feeds (no version): when a pass last read the whole feed to its end. Front ends
    /// show it instead of the checkpoint, which there only counts the changes written.
    pub last_complete_pass_at: Option<i64>,
    /// When a cycle last caught up, in milliseconds since 1970; None before the first.
    pub last_caught_up_at: Option<i64>,
    /// Seconds since `last_caught_up_at`; None before the first catch-up.
    pub lag_seconds: Option<i64>,
    pub replica_rows: i64,
    pub pending_failed: i64,
    /// The HTTP status of the last cycle's failure; None when it did not fail on an answer.
    pub last_http_status: Option<u16>,
    /// The `Trackingid` of the last cycle's failure, else of its last answer.
    pub last_tracking_id: Option<String>,
    /// When the agent tries an entity that is not healthy again (milliseconds since 1970): the
    /// end of a wait or an open circuit, else the next poll after a failed or late cycle. None
    /// when healthy, and when it waits for the user instead (`waits_for_user`).
    pub next_attempt_at: Option<i64>,
    /// It will not get better by itself: paused, or a full resync stopped at the deletion guard
    /// waits for permission (`syncmon resync … --yes`).
    pub waits_for_user: bool,
    /// 0 for a push-only entity (`poll_every = "never"`).
    pub poll_every_seconds: u64,
    /// Records read so far by a full resync under way (the whole pass, resumed cycles included);
    /// None when none is. Shown against `replica_rows`: "500 of 3,000 records read".
    pub resync_seen: Option<i64>,
    /// The replica rows a full resync under way has not seen yet: the deletions it makes when it
    /// ends, if the rest of the feed does not name them (None when no pass is under way, and for
    /// snapshot feeds).
    pub resync_would_delete: Option<i64>,
    /// Changes waiting to be delivered to the entity's target (0 when it forwards nowhere).
    pub forward_pending: i64,
    /// Why delivery to the target is stuck (credentials, circuit open), while changes wait.
    pub forward_error: Option<String>,
    /// Several agents on one PostgreSQL replica: the agent holding the entity's lease (None on
    /// the embedded SQLite replica, and while no agent holds it).
    pub holder: Option<String>,
}

/// Why a push-only entity is neither lagging nor pending.
const PUSH_ONLY_REASON: &str = "push-only: records arrive by POST /ingest, the entity is never polled";

impl Syncmon {
    pub fn status(&self) -> Result<Vec<EntityStatus>> {
        let now = self.ctx.clock.now_ms();
        let rows: BTreeMap<EntityKey, store::EntityRow> = self.ctx.store.entities()?.into_iter().map(|r| (r.key.clone(), r)).collect();
        let holders: BTreeMap<EntityKey, String> =
            self.ctx.store.lease_holders()?.into_iter().filter(|l| l.live).map(|l| (EntityKey::new(&l.connection, &l.entity), l.holder)).collect();
        let mut out = Vec::new();
        for e in &self.entities {
            let push_only = e.cfg.poll_every.is_none();
            let Some(row) = rows.get(&e.key) else {
                // Read-only: an entity added to the config that no agent has opened yet.
                out.push(EntityStatus {
                    connection: e.key.connection.clone(),
                    entity: e.key.entity.clone(),
                    health: if push_only { Health::PushOnly } else { Health::Pending },
                    reason: Some(if push_only { PUSH_ONLY_REASON } else { "not synced yet" }.to_string()),
                    checkpoint: RowVersion::zero().to_string(),
                    checkpoint_kind: e.profile.checkpoint_kind(),
                    checkpoint_display: e.profile.display_version(&RowVersion::zero()),
                    last_complete_pass_at: None,
                    last_caught_up_at: None,
                    lag_seconds: None,
                    replica_rows: 0,
                    pending_failed: 0,
                    last_http_status: None,
                    last_tracking_id: None,
                    next_attempt_at: None,
                    waits_for_user: false,
                    poll_every_seconds: e.cfg.poll_every.map_or(0, |d| d.as_secs()),
                    resync_seen: None,
                    resync_would_delete: None,
                    forward_pending: 0,
                    forward_error: None,
                    holder: holders.get(&e.key).cloned(),
                });
                continue;
            };
            let poll_ms = e.cfg.poll_every.map_or(i64::MAX, |d| d.as_millis() as i64);
            let replica_rows = self.ctx.store.replica_count(&e.key)?;
            // Lag counts delivery: a change waiting for the entity's target is not in sync yet.
            let (forward_pending, waiting_since) = self.ctx.store.outbox_pending(&e.key)?;
            let delivery_lag = waiting_since.map(|t| (now - t).max(0));
            let lag_ms = row.last_caught_up_at.map(|t| (now - t).max(0)).map(|l| l.max(delivery_lag.unwrap_or(0)));
            let forward_error = e.forward.as_ref().and_then(|f| f.last_error.lock().unwrap().clone());
            let (health, reason) = if row.paused {
                (Health::Paused, Some("paused by the user".to_string()))
            } else if row.next_attempt_at.is_some_and(|t| t > now) && row.last_outcome == Some(Outcome::Waiting) {
                // Front ends say "waiting for the source until 14:05" from next_attempt_at, in local time.
                (Health::Waiting, row.last_error.clone())
            } else if row.next_attempt_at.is_some_and(|t| t > now) && row.last_outcome != Some(Outcome::CaughtUp) {
                (Health::CircuitOpen, row.last_error.clone())
            } else if row.resync_state == Some(ResyncState::Running) && row.last_outcome != Some(Outcome::Failed) {
                // A resync pass whose last cycle failed is failing (it resumes at the next cycle).
                (Health::Resyncing, Some(resync_progress_text(row.resync_seen, replica_rows, row.resync_would_delete.filter(|_| !e.profile.is_snapshot()))))
            } else if row.resync_state == Some(ResyncState::GuardTripped) {
                (Health::Failing, row.last_error.clone().or(Some("the full resync stopped at the deletion guard".into())))
            } else if row.last_outcome == Some(Outcome::Failed)
                && row.last_failure_transient
                && self.ctx.store.failed_streak(&e.key)? < i64::from(e.source.cfg.breaker_threshold)
            {
                // Inside the retry budget: the next poll tries again before the circuit would open.
                (Health::Retrying, row.last_error.clone())
            } else if row.last_outcome == Some(Outcome::Failed) {
                (Health::Failing, row.last_error.clone())
            } else if push_only {
                (Health::PushOnly, Some(PUSH_ONLY_REASON.to_string()))
            } else if lag_ms.is_none() {
                (Health::Pending, Some("not synced yet".to_string()))
            } else if delivery_lag.is_some_and(|l| l > 2 * poll_ms) {
                let target = e.forward.as_ref().map_or(String::new(), |f| f.target.cfg.id.clone());
                let mut why = format!("{forward_pending} changes wait for target `{target}` for {}", humanize_ms(delivery_lag.unwrap_or(0)));
                if let Some(err) = &forward_error {
                    why.push_str(&format!(": {err}"));
                }
                (Health::Lagging, Some(why))
            } else if lag_ms.is_some_and(|l| l > 2 * poll_ms) {
                (Health::Lagging, Some(format!("not caught up for {}", humanize_ms(lag_ms.unwrap_or(0)))))
            } else {
                (Health::Healthy, None)
            };
            let running = row.resync_state == Some(ResyncState::Running);
            let guard_tripped = row.resync_state == Some(ResyncState::GuardTripped);
            out.push(EntityStatus {
                connection: e.key.connection.clone(),
                entity: e.key.entity.clone(),
                health,
                reason,
                checkpoint: row.checkpoint.to_string(),
                checkpoint_kind: e.profile.checkpoint_kind(),
                checkpoint_display: e.profile.display_version(&row.checkpoint),
                last_complete_pass_at: row.last_full_resync_at.filter(|_| e.profile.is_snapshot()),
                last_caught_up_at: row.last_caught_up_at,
                lag_seconds: lag_ms.map(|l| l / 1000),
                replica_rows,
                pending_failed: self.ctx.store.pending_failed_count(&e.key)?,
                last_http_status: row.last_http_status,
                last_tracking_id: row.last_tracking_id.clone(),
                next_attempt_at: next_attempt(health, row, poll_ms, now, guard_tripped),
                waits_for_user: health == Health::Paused || guard_tripped,
                poll_every_seconds: e.cfg.poll_every.map_or(0, |d| d.as_secs()),
                resync_seen: running.then_some(row.resync_seen),
                resync_would_delete: row.resync_would_delete.filter(|_| running && !e.profile.is_snapshot()),
                forward_pending,
                forward_error,
                holder: holders.get(&e.key).cloned(),
            });
        }
        Ok(out)
    }
}

/// When the agent calls an entity that is not healthy again: the end of the wait or open circuit
/// it keeps, else its next poll after the last cycle (a failed, retrying, late or resyncing
/// entity is polled again by itself); now when that poll is due. None when healthy, paused or
/// waiting for the user.
fn next_attempt(health: Health, row: &store::EntityRow, poll_ms: i64, now: i64, waits_for_user: bool) -> Option<i64> {
    if let Some(t) = row.next_attempt_at.filter(|t| *t > now) {
        return Some(t);
    }
    match health {
        Health::Healthy | Health::Paused | Health::PushOnly => None,
        _ if waits_for_user || poll_ms == i64::MAX => None,
        _ => Some(row.last_cycle_at.map_or(now, |t| t.saturating_add(poll_ms)).max(now)),
    }
}

/// "full resync in progress: 500 of 3,000 records read; 2,500 rows not seen yet (deleted at the
/// end unless the rest of the feed has them)": the same numbers as the UI's progress.
pub fn resync_progress_text(seen: i64, rows: i64, would_delete: Option<i64>) -> String {
    let mut t = format!("full resync in progress: {} of {} records read", thousands(seen), thousands(rows));
    if let Some(n) = would_delete {
        t.push_str(&format!(
            "; {} {} not seen yet (deleted at the end unless the rest of the feed has {})",
            thousands(n),
            if n == 1 { "row" } else { "rows" },
            if n == 1 { "it" } else { "them" }
        ));
    }
    t
}

/// 1234567 → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn humanize_ms(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86399 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_progress_reads_as_the_ui_does() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(3000), "3,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(resync_progress_text(500, 3000, None), "full resync in progress: 500 of 3,000 records read");
        assert_eq!(
            resync_progress_text(500, 3000, Some(1)),
            "full resync in progress: 500 of 3,000 records read; 1 row not seen yet (deleted at the end unless the rest of the feed has it)"
        );
    }
}
