//! What changes the sync: cycles now, resyncs, nudges, pause, checkpoint reset, the agent loop.

use super::Syncmon;
use crate::engine::{self, CycleKind, CycleReport, EntityRt};
use crate::error::{Error, Result};
use crate::rowversion::RowVersion;
use crate::scheduler;
use crate::state::{Outcome, ResyncState, RunKind};
use crate::store::EntityKey;
use serde::Serialize;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a full resync of an entity would do, told before it starts (`syncmon resync` asks with
/// it; the UI's confirmation shows it).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ResyncPreview {
    pub connection: String,
    pub entity: String,
    /// Live rows in the replica now.
    pub replica_rows: i64,
    /// The most rows the pass may delete when it completes: the rows it has not seen (again).
    /// The deletion guard still stops a pass that would delete more than its share.
    pub may_delete: i64,
    /// Records the pass under way has read so far (0 for a new pass).
    pub seen: i64,
    /// A pass is under way (interrupted) and the resync resumes it.
    pub resumes: bool,
    /// The last pass completed but stopped at the deletion guard, asking to delete this many rows:
    /// a resync that allows deletions deletes exactly these (no new pass); one that does not
    /// starts a new pass (`may_delete`).
    pub stopped_at_guard: Option<i64>,
    /// The entity's deletion guard: the share of the replica rows a pass may delete without asking.
    pub deletion_guard: f64,
}

impl Syncmon {
    /// On a PostgreSQL replica shared by agents, a one-shot writer takes the leases of the
    /// entities it is about to sync, for as long as the returned guard lives; refused, naming the
    /// agent, for an entity a running agent holds. Nothing to take on SQLite (None).
    pub fn claim(&self, entities: &[Arc<EntityRt>]) -> Result<Option<crate::leasing::OneShotLeases>> {
        let Some(leasing) = &self.one_shot else { return Ok(None) };
        let keys: Vec<_> = entities.iter().map(|e| e.key.clone()).collect();
        Ok(Some(crate::leasing::OneShotLeases::take(self.ctx.store.clone(), leasing, &keys)?))
    }

    /// One catch-up cycle per selected entity (an interrupted resync pass resumes instead).
    pub async fn sync_once(&self, entities: &[Arc<EntityRt>], cancel: &CancellationToken) -> Vec<CycleReport> {
        let runs = entities.iter().map(|e| {
            let resuming = self.ctx.store.entity(&e.key).map(|r| r.resync_state == Some(ResyncState::Running)).unwrap_or(false);
            let kind = if resuming { CycleKind::Resync { allow_deletions: false } } else { CycleKind::Incremental };
            async move { self.then_forward(e, engine::run_cycle(&self.ctx, e, kind, cancel).await, cancel).await }
        });
        futures::future::join_all(runs).await
    }

    /// Delivers what the cycle queued (and anything left from before) to the entity's target,
    /// so that one-shot commands forward too; the agent's delivery workers do it continuously.
    async fn then_forward(&self, e: &EntityRt, mut report: CycleReport, cancel: &CancellationToken) -> CycleReport {
        if !cancel.is_cancelled() {
            report.forwarded = engine::deliver(&self.ctx, e, &self.entities, cancel).await;
        }
        if let Some(wb) = e.write_back.as_ref().filter(|_| !cancel.is_cancelled()) {
            report.write_back = Some(crate::write_back::mark_pending(&self.ctx, e, wb, cancel).await);
        }
        report
    }

    /// A full resync pass of one entity: tombstones what the source no longer has, under the
    /// deletion guard unless `allow_deletions`. After the guard tripped, allowing deletions
    /// applies the finished pass's deletions.
    pub async fn resync(&self, name: &str, allow_deletions: bool, cancel: &CancellationToken) -> Result<CycleReport> {
        let e = self.one(name)?;
        let row = self.ctx.store.entity(&e.key)?;
        // A snapshot feed has no pass to resume: a new pass reads it all (and may delete).
        if row.resync_state == Some(ResyncState::GuardTripped) && allow_deletions && !e.profile.is_snapshot() {
            let now = self.ctx.clock.now_ms();
            let end = self.ctx.store.resync_finish(&e.key, row.resync_pass, e.cfg.deletion_guard, true, now)?;
            let run = self.ctx.store.begin_run(&e.key, RunKind::Resync, now)?;
            self.ctx.store.finish_run(&e.key, run, Outcome::CaughtUp, None, None, false, None, false, now, self.ctx.runs_kept)?;
            let mut report = engine::run_cycle(&self.ctx, &e, CycleKind::Incremental, cancel).await;
            report.kind = RunKind::Resync;
            report.pass = Some(end);
            return Ok(self.then_forward(&e, report, cancel).await);
        }
        let report = engine::run_cycle(&self.ctx, &e, CycleKind::Resync { allow_deletions }, cancel).await;
        Ok(self.then_forward(&e, report, cancel).await)
    }

    /// What a resync of the entity would do, before it starts (nothing is read from the source):
    /// the replica's rows and how many of them its pass may delete at most.
    pub fn resync_preview(&self, name: &str) -> Result<ResyncPreview> {
        let e = self.one(name)?;
        let row = self.ctx.store.entity(&e.key)?;
        let replica_rows = self.ctx.store.replica_count(&e.key)?;
        let snapshot = e.profile.is_snapshot();
        let resumes = !snapshot && row.resync_state == Some(ResyncState::Running);
        let stopped = !snapshot && row.resync_state == Some(ResyncState::GuardTripped);
        // The sources give no total count, so the bound is what the pass has not seen yet: every
        // row for a new pass, the unseen rest for one that resumes.
        let may_delete = if resumes { row.resync_would_delete.unwrap_or(replica_rows) } else { replica_rows };
        Ok(ResyncPreview {
            connection: e.key.connection.clone(),
            entity: e.key.entity.clone(),
            replica_rows,
            may_delete: may_delete.clamp(0, replica_rows.max(0)),
            seen: if resumes { row.resync_seen } else { 0 },
            resumes,
            stopped_at_guard: stopped.then(|| row.resync_would_delete.unwrap_or(0)),
            deletion_guard: e.cfg.deletion_guard,
        })
    }

    /// Reads the whole entity from the source and compares it with the replica, writing nothing
    /// (`syncmon verify`): missing, stale and extra ids, with samples and the reads' Trackingids.
    /// The result is kept as the entity's last verify (not when cancelled, nor by a read-only
    /// process such as the CLI beside a running agent, which cannot write the store).
    pub async fn verify(&self, name: &str, cancel: &CancellationToken) -> Result<engine::VerifyReport> {
        let e = self.one(name)?;
        let report = engine::verify(&self.ctx, &e, cancel).await;
        if !cancel.is_cancelled() {
            let kept = engine::VerifyResult { finished_at: self.ctx.clock.now_ms(), equal: report.equal(), report: report.clone() };
            let saved = serde_json::to_string(&kept)
                .map_err(|x| x.to_string())
                .and_then(|json| self.ctx.store.save_verify(&e.key, kept.finished_at, &json).map_err(|x| x.to_string()));
            if let Err(x) = saved {
                tracing::debug!(entity = %e.key, error = %x, "the verify result was not kept");
            }
        }
        Ok(report)
    }

    /// The entity's last verify, if one was kept.
    pub fn last_verify(&self, name: &str) -> Result<Option<engine::VerifyResult>> {
        let e = self.one(name)?;
        self.last_verify_of(&e.key)
    }

    pub(crate) fn last_verify_of(&self, key: &EntityKey) -> Result<Option<engine::VerifyResult>> {
        Ok(self.ctx.store.last_verify(key)?.and_then(|(_, json)| serde_json::from_str(&json).ok()))
    }

    /// Asks for a cycle of the entity now. Returns false for an unknown entity.
    pub fn nudge(&self, connection: &str, entity: &str) -> bool {
        scheduler::nudge(&self.ctx, &self.entities, connection, entity)
    }

    /// Asks one entity (`Some(name)`) or all of them for a cycle now; returns how many were asked.
    pub fn nudge_where(&self, name: Option<&str>) -> Result<usize> {
        let selected = self.select(None, &name.into_iter().map(str::to_string).collect::<Vec<_>>())?;
        Ok(selected.iter().filter(|e| self.nudge(&e.key.connection, &e.key.entity)).count())
    }

    pub fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        Ok(self.ctx.store.set_paused(&self.one(name)?.key, paused)?)
    }

    /// Pauses or resumes one entity (`Some(name)`) or all of them; returns how many changed.
    pub fn set_paused_where(&self, name: Option<&str>, paused: bool) -> Result<usize> {
        let keys: Vec<EntityKey> = match name {
            Some(n) => vec![self.one(n)?.key.clone()],
            None => self.entities.iter().map(|e| e.key.clone()).collect(),
        };
        Ok(self.ctx.store.set_paused_many(&keys, paused)?)
    }

    /// Sets the entity's checkpoint back to 0: the next cycle re-reads everything (the replica is
    /// kept; older versions never overwrite newer ones). Waits for a running cycle to end so that
    /// it cannot move the checkpoint forward again right after the reset.
    pub async fn reset_checkpoint(&self, name: &str) -> Result<()> {
        let e = self.one(name)?;
        if e.profile.is_snapshot() {
            // Its checkpoint only numbers the changes written; every poll already reads everything.
            return Err(Error::Usage(format!("{name} is a snapshot feed: every poll reads it whole, so there is no checkpoint to reset")));
        }
        let _idle = e.busy.lock().await;
        Ok(self.ctx.store.reset_checkpoint(&e.key, &RowVersion::zero())?)
    }

    /// Runs the agent until `cancel`: scheduled polls, nudges, the webhook receiver.
    pub async fn run(self: &Arc<Self>, cancel: CancellationToken) -> Result<()> {
        for w in &self.warnings {
            tracing::warn!("config: {}", w.message);
        }
        // The handle (and with it the agent lock) lives until the loop ends: this call awaits it.
        let agent = scheduler::Agent { config: self.config.clone(), ctx: self.ctx.clone(), entities: self.entities.clone() };
        scheduler::run(Arc::new(agent), cancel).await
    }
}
