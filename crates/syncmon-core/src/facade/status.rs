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
    /// When a waiting or circuit-open entity is tried again (milliseconds since 1970); None when
    /// nothing holds it back.
    pub next_attempt_at: Option<i64>,
    /// 0 for a push-only entity (`poll_every = "never"`).
    pub poll_every_seconds: u64,
    /// Records read so far by a full resync under way; None when none is.
    pub resync_seen: Option<i64>,
    /// Changes waiting to be delivered to the entity's target (0 when it forwards nowhere).
    pub forward_pending: i64,
    /// Why delivery to the target is stuck (credentials, circuit open), while changes wait.
    pub forward_error: Option<String>,
}

/// Why a push-only entity is neither lagging nor pending.
const PUSH_ONLY_REASON: &str = "push-only: records arrive by POST /ingest, the entity is never polled";

impl Syncmon {
    pub fn status(&self) -> Result<Vec<EntityStatus>> {
        let now = self.ctx.clock.now_ms();
        let rows: BTreeMap<EntityKey, store::EntityRow> = self.ctx.store.entities()?.into_iter().map(|r| (r.key.clone(), r)).collect();
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
                    poll_every_seconds: e.cfg.poll_every.map_or(0, |d| d.as_secs()),
                    resync_seen: None,
                    forward_pending: 0,
                    forward_error: None,
                });
                continue;
            };
            let poll_ms = e.cfg.poll_every.map_or(i64::MAX, |d| d.as_millis() as i64);
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
                (Health::Resyncing, Some(format!("full resync in progress: {} records read", row.resync_seen)))
            } else if row.resync_state == Some(ResyncState::GuardTripped) {
                (Health::Failing, row.last_error.clone().or(Some("the full resync stopped at the deletion guard".into())))
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
                replica_rows: self.ctx.store.replica_count(&e.key)?,
                pending_failed: self.ctx.store.pending_failed_count(&e.key)?,
                last_http_status: row.last_http_status,
                last_tracking_id: row.last_tracking_id.clone(),
                next_attempt_at: row.next_attempt_at.filter(|t| *t > now),
                poll_every_seconds: e.cfg.poll_every.map_or(0, |d| d.as_secs()),
                resync_seen: (row.resync_state == Some(ResyncState::Running)).then_some(row.resync_seen),
                forward_pending,
                forward_error,
            });
        }
        Ok(out)
    }
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
