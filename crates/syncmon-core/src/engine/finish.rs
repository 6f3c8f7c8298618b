//! The end of a cycle: why the fetcher stopped, the outcome (and a resync pass's end), the
//! breaker, the run record, the next lookback sweep, the closing event and the log line.

use super::guards::FetchStop;
use super::{Cycle, CycleKind, CycleReport, Outcome};
use crate::events::EventKind;
use crate::retry::{Failure, FailureClass};

impl<'a> Cycle<'a> {
    /// Why the fetcher ended early, as a failure (a stall names the checkpoint reached).
    pub(super) fn fetch_failure(&self, fetched: Result<(), FetchStop>) -> Option<Failure> {
        match fetched {
            Ok(()) => None,
            Err(FetchStop::Failed(f)) => Some(f),
            Err(FetchStop::Stalled { what, tracking_id, http_status }) => {
                let checkpoint = self.ctx.store.entity(&self.e.key).map(|r| self.e.profile.display_version(&r.checkpoint)).unwrap_or_default();
                let tid = tracking_id.as_deref().unwrap_or("of the last page");
                Some(Failure {
                    class: FailureClass::Config,
                    message: format!(
                        "{what}: it is not advancing; the cycle stopped at the last good page, checkpoint {checkpoint}; report the Trackingid {tid} to the source's owner"
                    ),
                    http_status: Some(http_status),
                    tracking_id,
                    retry_after: None,
                })
            }
        }
    }

    /// Ends the cycle: the outcome (and a resync pass's end), the breaker, the run record, the
    /// next lookback sweep, the waiting state, the closing event and the log line.
    pub(super) fn finish(&self, mut report: CycleReport, failure: Option<Failure>, last_tracking: Option<String>, started: std::time::Instant) -> CycleReport {
        let now = self.ctx.clock.now_ms();
        self.settle(&mut report, failure, now);
        self.update_breaker(&mut report, now);
        let (error_text, tracking) = self.record_run(&report, last_tracking, now);
        self.announce(&mut report, error_text, tracking, started);
        report
    }

    /// The outcome from how the feed read ended; a resync read to its end finishes its pass
    /// (deleting what it did not see, unless the deletion guard stops it).
    fn settle(&self, report: &mut CycleReport, failure: Option<Failure>, now: i64) {
        let (ctx, e, key) = (self.ctx, self.e, &self.e.key);
        match &failure {
            Some(f) if f.class == FailureClass::Cancelled || self.cancel.is_cancelled() => report.outcome = Outcome::Cancelled,
            Some(f) if f.class == FailureClass::RateLimited && f.retry_after.is_some_and(|w| w > crate::source::LONGEST_WAIT_IN_CYCLE) => {
                report.outcome = Outcome::Waiting;
                let wait_ms = f.retry_after.unwrap_or_default().as_millis().min(i64::MAX as u128 / 2) as i64;
                report.next_attempt_at = Some(now.saturating_add(wait_ms));
            }
            Some(_) => report.outcome = Outcome::Failed,
            None => {
                let ended = match (self.pass, self.kind) {
                    // A snapshot pass read to its end deletes what it did not see; only `resync --yes` lifts the guard.
                    _ if e.profile.is_snapshot() => {
                        let allow_deletions = matches!(self.kind, CycleKind::Resync { allow_deletions: true });
                        Some(ctx.store.snapshot_finish(key, e.cfg.deletion_guard, allow_deletions, now))
                    }
                    (Some(pass), CycleKind::Resync { allow_deletions }) => Some(ctx.store.resync_finish(key, pass, e.cfg.deletion_guard, allow_deletions, now)),
                    _ => None,
                };
                if let Some(ended) = ended {
                    match ended {
                        Ok(end) => {
                            if let Some(f) = e.forward.as_ref().filter(|_| end.deleted > 0) {
                                f.nudge.notify_one();
                            }
                            if end.guard_tripped {
                                report.outcome = Outcome::GuardTripped;
                                ctx.events.emit(EventKind::DeletionGuardTripped {
                                    connection: key.connection.clone(),
                                    entity: key.entity.clone(),
                                    would_delete: end.unseen,
                                    live: end.live_before,
                                });
                            }
                            report.pass = Some(end);
                        }
                        Err(err) => {
                            report.outcome = Outcome::Failed;
                            report.error = Some(Failure {
                                class: FailureClass::Config,
                                message: err.to_string(),
                                http_status: None,
                                tracking_id: None,
                                retry_after: None,
                            });
                        }
                    }
                }
            }
        }
        if report.error.is_none() {
            report.error = failure.filter(|f| f.class != FailureClass::Cancelled);
        }
    }

    /// The breaker counts failed cycles of the connection; a success closes it.
    fn update_breaker(&self, report: &mut CycleReport, now: i64) {
        let key = &self.e.key;
        let mut breaker = self.e.source.breaker.lock().unwrap();
        match report.outcome {
            Outcome::Failed if report.error.as_ref().is_some_and(|f| f.class == FailureClass::Transient) => {
                if let Some(until) = breaker.record_failure(now) {
                    report.next_attempt_at = Some(until);
                    self.ctx.events.emit(EventKind::CircuitOpened {
                        connection: key.connection.clone(),
                        until,
                        error: report.error.as_ref().map(|f| f.to_string()).unwrap_or_default(),
                    });
                }
            }
            Outcome::CaughtUp | Outcome::GuardTripped if breaker.record_success() => {
                self.ctx.events.emit(EventKind::CircuitClosed { connection: key.connection.clone() });
            }
            _ => {}
        }
    }

    /// Closes the run in the history, schedules the next lookback sweep after a catch-up, and
    /// keeps a wait (circuit open, `Retry-After`) in the entity's state. Returns the error text
    /// and Trackingid the run was closed with.
    fn record_run(&self, report: &CycleReport, last_tracking: Option<String>, now: i64) -> (Option<String>, Option<String>) {
        let (ctx, e, key) = (self.ctx, self.e, &self.e.key);
        let caught_up = matches!(report.outcome, Outcome::CaughtUp | Outcome::GuardTripped);
        let err = report.error.as_ref();
        let error_text = match (&report.pass, err) {
            (Some(p), None) if p.guard_tripped => Some(format!(
                "the full resync would delete {} of {} rows (more than the {:.0} % guard); check the source, then allow it with `syncmon resync {} --yes`",
                p.unseen,
                p.live_before,
                e.cfg.deletion_guard * 100.0,
                key
            )),
            _ => err.map(|f| f.message.clone()),
        };
        let tracking = err.and_then(|f| f.tracking_id.clone()).or(last_tracking);
        if report.outcome != Outcome::Cancelled || report.pages > 0 {
            if let Err(x) = ctx.store.finish_run(
                key,
                self.run_id,
                report.outcome,
                error_text.as_deref(),
                err.and_then(|f| f.http_status),
                err.is_some_and(|f| f.class == FailureClass::Transient),
                tracking.as_deref(),
                caught_up,
                now,
                ctx.runs_kept,
            ) {
                tracing::warn!(entity = %key, error = %x, "could not record the run");
            }
        }
        if caught_up {
            let swept_from = (self.kind == CycleKind::Lookback).then_some(self.started_at);
            if let Err(x) = ctx.store.schedule_lookback(key, now, self.lookback_ms, swept_from) {
                tracing::warn!(entity = %key, error = %x, "could not schedule the lookback sweep");
            }
        }
        if let Some(until) = report.next_attempt_at {
            let outcome = if report.outcome == Outcome::Waiting { Outcome::Waiting } else { Outcome::Failed };
            let _ = ctx.store.note_skipped(key, outcome, error_text.as_deref().unwrap_or(""), Some(until), now);
        }
        (error_text, tracking)
    }

    /// The final checkpoint and duration into the report, the closing event, and the log line.
    fn announce(&self, report: &mut CycleReport, error_text: Option<String>, tracking: Option<String>, started: std::time::Instant) {
        let (ctx, key) = (self.ctx, &self.e.key);
        if let Ok(row) = ctx.store.entity(key) {
            report.checkpoint = row.checkpoint.to_string();
            report.checkpoint_display = self.e.profile.display_version(&row.checkpoint);
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        ctx.events.emit(EventKind::CycleFinished {
            connection: key.connection.clone(),
            entity: key.entity.clone(),
            outcome: report.outcome,
            records: report.records,
            error: error_text,
            tracking_id: tracking,
        });
        match report.outcome {
            Outcome::Failed | Outcome::GuardTripped | Outcome::Waiting => tracing::warn!("{}", report.summary()),
            // An idle poll that found nothing is not news: 50 entities would log 50 lines a minute.
            _ if report.records == 0 && report.failed_new == 0 => tracing::debug!("{}", report.summary()),
            _ => tracing::info!("{}", report.summary()),
        }
    }
}
