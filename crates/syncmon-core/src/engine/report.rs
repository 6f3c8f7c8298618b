//! What a cycle reports: its outcome and its counts, for the CLI, the UI and the run history.

use crate::forward::ForwardReport;
use crate::retry::Failure;
use crate::state::RunKind;
use crate::store::PassEnd;
use serde::Serialize;

// Re-exported: `engine::Outcome` was its home before `state`.
pub use crate::state::Outcome;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CycleReport {
    pub connection: String,
    pub entity: String,
    pub kind: RunKind,
    pub outcome: Outcome,
    pub pages: u64,
    pub records: u64,
    pub failed_new: u64,
    /// The checkpoint as stored (for a timestamp feed: microseconds since 1970).
    pub checkpoint: String,
    /// The checkpoint as people read it: the version, or a timestamp feed's date (RFC 3339, UTC).
    pub checkpoint_display: String,
    pub error: Option<Failure>,
    pub pass: Option<PassEnd>,
    pub duration_ms: u64,
    /// When the next attempt may happen (circuit open, or the source asked to wait).
    pub next_attempt_at: Option<i64>,
    /// The delivery pass to the entity's target that followed the cycle (`sync`, `resync`).
    pub forwarded: Option<ForwardReport>,
    /// The write-back pass that followed (`write_back` on the entity: synced records marked at the source).
    pub write_back: Option<crate::write_back::WriteBackReport>,
    /// Snapshot feeds: the records written because they were new or changed (the rest of
    /// `records` was read and found unchanged). None for the other profiles.
    pub changed: Option<u64>,
}

impl CycleReport {
    /// One line for humans: `retail/items: caught up, 3 pages, 2500 records, checkpoint 1234 (0.4 s)`.
    pub fn summary(&self) -> String {
        let mut s = format!("{}/{}: ", self.connection, self.entity);
        match self.outcome {
            Outcome::CaughtUp => s.push_str("caught up"),
            Outcome::Failed => s.push_str("FAILED"),
            Outcome::Waiting => s.push_str("waiting for the source"),
            Outcome::CircuitOpen => s.push_str("skipped, circuit open"),
            Outcome::GuardTripped => s.push_str("resync STOPPED by the deletion guard"),
            Outcome::Cancelled => s.push_str("stopped"),
        }
        s.push_str(&format!(", {}, {}", counted(self.pages, "page"), counted(self.records, "record")));
        if let Some(n) = self.changed {
            s.push_str(&format!(" ({n} new or changed)"));
        }
        if self.failed_new > 0 {
            s.push_str(&format!(", {}", counted(self.failed_new, "new failed item")));
        }
        s.push_str(&format!(", checkpoint {} ({:.1} s)", self.checkpoint_display, self.duration_ms as f64 / 1000.0));
        if let Some(p) = &self.pass {
            if p.guard_tripped {
                s.push_str(&format!(
                    ": it would delete {} of {} rows; check the source, then run `syncmon resync {}/{} --yes` to allow it",
                    p.unseen, p.live_before, self.connection, self.entity
                ));
            } else {
                s.push_str(&format!(", {} deleted", p.deleted));
            }
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        if let Some(f) = &self.forwarded {
            s.push_str(&format!("; {}", f.summary()));
        }
        if let Some(w) = &self.write_back {
            s.push_str(&format!("; {}", w.summary()));
        }
        s
    }
}

/// "1 page", "3 pages": a count with its noun as people write it.
pub(crate) fn counted(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}
