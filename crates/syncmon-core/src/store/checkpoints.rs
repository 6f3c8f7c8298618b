//! Checkpoints over time and the lookback sweeps that read from them: the history written as a
//! cycle advances, where a sweep starts, when the next one is due, and what history is kept.

use super::{EntityKey, Result, Store};
use crate::rowversion::RowVersion;
use rusqlite::params;
use serde::Serialize;

/// Checkpoint history is written at most this often inside a cycle (at every catch-up besides).
pub(super) const HISTORY_EVERY_MS: i64 = 5_000;
/// History kept at least this long (the UI's checkpoint chart shows a week), and twice the lookback.
const HISTORY_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// One point of an entity's checkpoint history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct CheckpointPoint {
    pub at: i64,
    pub checkpoint: String,
}

impl Store {
    /// Where a lookback sweep starts reading: the checkpoint that was current at `at` (the latest
    /// history point at or before it), never above the current checkpoint. No such point, or no
    /// anchor at all, means from the beginning: every version assigned since `at` lies above it,
    /// so a commit that became visible late, below what polls had already read, is re-read.
    pub fn checkpoint_at(&self, key: &EntityKey, at: Option<i64>) -> Result<RowVersion> {
        self.read(|c| {
            let Some(at) = at else { return Ok(RowVersion::zero()) };
            let found: Option<String> = c.query_opt(
                "SELECT checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at <= ?3
                 ORDER BY at DESC LIMIT 1",
                params![key.connection, key.entity, at],
                |r| r.get(0),
            )?;
            let current: String =
                c.query_row("SELECT checkpoint FROM entity_state WHERE connection = ?1 AND entity = ?2", params![key.connection, key.entity], |r| r.get(0))?;
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
            // postgres: `rowid` is SQLite's implicit one here; PostgreSQL's schema gives
            // checkpoint_history an explicit `rowid` column, so the statement runs there as it is.
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

    /// The entity's checkpoint over time (after each caught-up cycle that moved it, and every few
    /// seconds within a long cycle), since `since_ms`, oldest first.
    pub fn checkpoint_history(&self, key: &EntityKey, since_ms: i64) -> Result<Vec<CheckpointPoint>> {
        self.read(|c| {
            Ok(c.query_all(
                "SELECT at, checkpoint FROM checkpoint_history WHERE connection = ?1 AND entity = ?2 AND at >= ?3 ORDER BY at",
                params![key.connection, key.entity, since_ms],
                |r| Ok(CheckpointPoint { at: r.get(0)?, checkpoint: r.get(1)? }),
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{apply_in_run, rec, setup};
    use super::*;
    use crate::record::Record;
    use crate::state::{Outcome, RunKind};

    fn apply_at(store: &Store, key: &EntityKey, records: &[Record], now_ms: i64) {
        apply_in_run(store, key, store.begin_run(key, RunKind::Incremental, now_ms - HISTORY_EVERY_MS).unwrap(), records, &[], now_ms);
    }

    fn history(store: &Store, key: &EntityKey) -> Vec<(i64, String)> {
        store.checkpoint_history(key, i64::MIN).unwrap().into_iter().map(|p| (p.at, p.checkpoint)).collect()
    }

    #[test]
    fn a_sweep_starts_from_the_checkpoint_current_at_its_anchor() {
        let (_d, store, key) = setup();
        let run = store.begin_run(&key, RunKind::Incremental, 0).unwrap();
        apply_at(&store, &key, &[rec("a", "10")], 1_000);
        store.finish_run(&key, run, Outcome::CaughtUp, None, None, false, None, true, 1_000, 100).unwrap();
        apply_at(&store, &key, &[rec("b", "20")], 500_000);
        store.finish_run(&key, run, Outcome::CaughtUp, None, None, false, None, true, 500_000, 100).unwrap();
        apply_at(&store, &key, &[rec("c", "30")], 900_000);
        store.finish_run(&key, run, Outcome::CaughtUp, None, None, false, None, true, 900_000, 100).unwrap();
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
        let run = store.begin_run(&key, RunKind::Incremental, 0).unwrap();
        for (i, at) in [1_000, 4_999, 5_000, 9_000, 9_999, 10_001, 16_000].into_iter().enumerate() {
            apply_in_run(&store, &key, run, &[rec(&format!("r{i}"), &format!("{}", 10 * (i + 1)))], &[], at);
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
