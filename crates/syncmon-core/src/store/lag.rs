//! Lag over time: DESIGN's lag (now − the last time the entity was caught up) at every moment of
//! a window, from the `catch_ups` table (one row per cycle that caught up, written by
//! `finish_run`). Between two catch-ups the lag grows linearly and drops to 0 at the next one: a
//! sawtooth, returned exactly when it has few teeth, else as the worst lag of each bucket.

use super::db::{Db, DbResult};
use super::{EntityKey, Result, Store};
use rusqlite::params;
use serde::Serialize;

/// How far back the lag history reaches (the Entity screen's "last 7 days").
pub const LAG_HISTORY_MS: i64 = 7 * 24 * 3_600_000;
/// Most points a lag history has (the chart needs no more).
pub const LAG_POINTS: usize = 500;

/// The lag at one moment, or over the bucket ending then (its worst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct LagPoint {
    /// Milliseconds since 1970.
    pub at: i64,
    /// None while the entity had never been caught up (as far as the history reaches).
    pub lag_ms: Option<i64>,
}

/// Keeps a catch-up at `now_ms` and drops those older than [`LAG_HISTORY_MS`] but the newest of
/// them (the lag at the window's start is measured from it).
pub(super) fn note_catch_up(tx: &Db, key: &EntityKey, now_ms: i64) -> DbResult<()> {
    tx.execute("INSERT INTO catch_ups (connection, entity, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", params![key.connection, key.entity, now_ms])?;
    tx.execute(
        "DELETE FROM catch_ups WHERE connection = ?1 AND entity = ?2
           AND at < (SELECT max(at) FROM catch_ups WHERE connection = ?1 AND entity = ?2 AND at < ?3)",
        params![key.connection, key.entity, now_ms - LAG_HISTORY_MS],
    )?;
    Ok(())
}

impl Store {
    /// The entity's lag from `since_ms` to `now_ms`, oldest first, at most `max_points` points.
    pub fn lag_history(&self, key: &EntityKey, since_ms: i64, now_ms: i64, max_points: usize) -> Result<Vec<LagPoint>> {
        self.read(|c| {
            let before: Option<i64> = c
                .query_opt(
                    "SELECT max(at) FROM catch_ups WHERE connection = ?1 AND entity = ?2 AND at <= ?3",
                    params![key.connection, key.entity, since_ms],
                    |r| r.get(0),
                )?
                .flatten();
            let within: Vec<i64> = c.query_all(
                "SELECT at FROM catch_ups WHERE connection = ?1 AND entity = ?2 AND at > ?3 AND at <= ?4 ORDER BY at",
                params![key.connection, key.entity, since_ms, now_ms],
                |r| r.get(0),
            )?;
            Ok(lag_points(before, &within, since_ms, now_ms, max_points))
        })
    }
}

/// The sawtooth of lag over `[since, now]` given the last catch-up at or before `since` and the
/// catch-ups after it (ascending). With few catch-ups every tooth is exact: the peak just before
/// each catch-up and the 0 at it (two points at the same time). Otherwise `max_points − 1`
/// equal buckets, each point the worst lag within the bucket ending at its time.
pub fn lag_points(before: Option<i64>, catch_ups: &[i64], since: i64, now: i64, max_points: usize) -> Vec<LagPoint> {
    let lag = |at: i64, last: Option<i64>| LagPoint { at, lag_ms: last.map(|l| at - l) };
    let max_points = max_points.max(2);
    if now <= since {
        return vec![lag(now, before)];
    }
    let mut last = before;
    if 2 * catch_ups.len() + 2 <= max_points {
        let mut out = vec![lag(since, last)];
        for &c in catch_ups {
            out.push(lag(c, last));
            out.push(LagPoint { at: c, lag_ms: Some(0) });
            last = Some(c);
        }
        // A catch-up this very millisecond already ends the line at 0.
        if last != Some(now) {
            out.push(lag(now, last));
        }
        return out;
    }
    let buckets = (max_points - 1) as i64;
    let mut out = Vec::with_capacity(max_points);
    out.push(lag(since, last));
    let mut next = catch_ups.iter().copied().peekable();
    for i in 1..=buckets {
        let end = since + (now - since) * i / buckets;
        let mut worst: Option<i64> = None;
        while let Some(c) = next.next_if(|&c| c <= end) {
            worst = worst.max(last.map(|l| c - l));
            last = Some(c);
        }
        worst = worst.max(last.map(|l| end - l));
        out.push(LagPoint { at: end, lag_ms: worst });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::setup;
    use super::*;
    use crate::state::{Outcome, RunKind};

    const MIN: i64 = 60_000;

    fn run(store: &Store, key: &EntityKey, outcome: Outcome, at: i64) {
        let id = store.begin_run(key, RunKind::Incremental, at - 1_000).unwrap();
        let caught_up = matches!(outcome, Outcome::CaughtUp | Outcome::GuardTripped);
        store.finish_run(key, id, outcome, None, None, false, None, caught_up, at, 3).unwrap();
    }

    /// Caught up at 10 and 20 min, failing until 50 min, caught up at 50: the lag at each moment
    /// is the time since the last of them, also beyond the 3 runs the history keeps.
    #[test]
    fn the_lag_is_the_time_since_the_last_catch_up_a_sawtooth() {
        let (_d, store, key) = setup();
        run(&store, &key, Outcome::CaughtUp, 10 * MIN);
        run(&store, &key, Outcome::CaughtUp, 20 * MIN);
        for m in [30, 35, 40, 45] {
            run(&store, &key, Outcome::Failed, m * MIN);
        }
        run(&store, &key, Outcome::CaughtUp, 50 * MIN);
        let points = store.lag_history(&key, 0, 60 * MIN, LAG_POINTS).unwrap();
        let pairs: Vec<(i64, Option<i64>)> = points.iter().map(|p| (p.at / MIN, p.lag_ms.map(|l| l / MIN))).collect();
        assert_eq!(
            pairs,
            vec![(0, None), (10, None), (10, Some(0)), (20, Some(10)), (20, Some(0)), (50, Some(30)), (50, Some(0)), (60, Some(10))],
            "never caught up before 10 min; 30 min behind just before 50 min; 10 min now"
        );
        // A window starting between catch-ups measures from the one before it.
        let later = store.lag_history(&key, 25 * MIN, 60 * MIN, LAG_POINTS).unwrap();
        assert_eq!(later[0], LagPoint { at: 25 * MIN, lag_ms: Some(5 * MIN) });
        assert_eq!(later[1], LagPoint { at: 50 * MIN, lag_ms: Some(30 * MIN) });
    }

    /// A poll every minute for a day, with a 3-hour outage: bounded points, each bucket's worst
    /// lag — about a minute, but 3 hours at the end of the outage.
    #[test]
    fn many_catch_ups_are_bucketed_to_their_worst_lag() {
        let (_d, store, key) = setup();
        let day = 24 * 60;
        for m in 1..=day {
            if !(600..780).contains(&m) {
                run(&store, &key, Outcome::CaughtUp, m * MIN);
            }
        }
        let points = store.lag_history(&key, 0, day * MIN, 97).unwrap();
        assert_eq!(points.len(), 97);
        assert!(points.windows(2).all(|w| w[0].at < w[1].at), "ascending");
        assert_eq!(points.last().unwrap().at, day * MIN);
        // 96 buckets of 15 min: the one ending at 13:00 (780 min) holds the catch-up after the outage.
        let worst = points.iter().filter_map(|p| p.lag_ms).max().unwrap();
        assert_eq!(worst, 181 * MIN, "from the catch-up at 599 min to the one at 780 min");
        let at_worst = points.iter().find(|p| p.lag_ms == Some(worst)).unwrap().at;
        assert_eq!(at_worst, 780 * MIN);
        let normal = points.iter().filter(|p| p.at < 600 * MIN && p.at > 0).all(|p| p.lag_ms == Some(MIN));
        assert!(normal, "a minute behind at worst while it polled every minute: {points:?}");
        // During the outage the lag grows: the bucket ending at 700 min is 101 min behind.
        assert_eq!(points.iter().find(|p| p.at == 705 * MIN).unwrap().lag_ms, Some(106 * MIN));
    }

    /// Catch-ups older than the history are pruned as new ones come, but the last one before the
    /// window stays: the lag at its start is still known.
    #[test]
    fn old_catch_ups_are_pruned_but_the_one_before_the_window_stays() {
        let (_d, store, key) = setup();
        let day = 24 * 60 * MIN;
        run(&store, &key, Outcome::CaughtUp, day);
        run(&store, &key, Outcome::CaughtUp, 2 * day);
        run(&store, &key, Outcome::CaughtUp, 10 * day);
        let kept: i64 = store.read(|c| Ok(c.query_row("SELECT count(*) FROM catch_ups", rusqlite::params![], |r| r.get(0))?)).unwrap();
        assert_eq!(kept, 2, "day 1 is gone, day 2 is the last before the window of day 3 to 10");
        let points = store.lag_history(&key, 3 * day, 10 * day, LAG_POINTS).unwrap();
        assert_eq!(points[0].lag_ms, Some(day));
    }

    /// Read in the millisecond of a catch-up, the line ends at that catch-up's 0, once.
    #[test]
    fn a_catch_up_right_now_ends_the_line_at_zero_once() {
        let points = lag_points(Some(0), &[5 * MIN, 10 * MIN], 0, 10 * MIN, LAG_POINTS);
        let at_now: Vec<_> = points.iter().filter(|p| p.at == 10 * MIN).map(|p| p.lag_ms).collect();
        assert_eq!(at_now, vec![Some(5 * MIN), Some(0)], "the peak, then 0: {points:?}");
        let later = lag_points(Some(0), &[5 * MIN], 0, 7 * MIN, LAG_POINTS);
        assert_eq!(later.last(), Some(&LagPoint { at: 7 * MIN, lag_ms: Some(2 * MIN) }), "between catch-ups the line ends at now");
    }
}
