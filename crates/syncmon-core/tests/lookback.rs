//! Late commits (DESIGN §2.5): a record committed with a rowVersion below what polls already read.
//! Polls read strictly after the checkpoint; a lookback sweep every `lookback` re-reads from the
//! checkpoint that was current at its anchor. Proven here: no late commit is lost, not even one
//! below the top of the initial load made while the load runs; the re-reading costs at most 3× the
//! records changed; the initial load is re-read once, by the first sweep, not on every poll.
//!
//! The schedule tests run `sync` on a clock the test moves (exact and quick); the mid-load test
//! runs the agent in real time.

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use syncmon_core::config::Config;
use syncmon_core::state::{Outcome, RunOutcome, UnfinishedRun};
use syncmon_core::{Syncmon, TestClock};
use syncmon_mock::{Fault, FaultKind, MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

async fn with_test_clock(records: usize, conn_extra: &str) -> (Harness, Arc<TestClock>) {
    let mock = MockServer::start(MockConfig { entities: entities(&[("items", records)]), ..Default::default() }).await.unwrap();
    let text = config_text(&mock.base_url(), &["items"], conn_extra, "");
    let dir = tempfile::tempdir().unwrap();
    // A clock that moves only when the test says.
    let clock = Arc::new(TestClock::fixed(1_800_000_000_000));
    let sm = Arc::new(Syncmon::open_with_clock(Config::parse(&text).unwrap(), dir.path(), clock.clone()).unwrap());
    (Harness { dir, mock, sm, config_text: text }, clock)
}

/// Requests that read the feed from its very beginning (`lastRowVersion=0`).
fn reads_from_zero(h: &Harness) -> usize {
    h.mock.requests().iter().filter(|r| r.path.ends_with("/items") && r.query.split('&').any(|p| p == "lastRowVersion=0")).count()
}

fn version(v: &str) -> u128 {
    v.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_commit_below_the_top_of_the_initial_load_made_while_it_runs_arrives_by_the_first_sweep() {
    let cfg = MockConfig { entities: entities(&[("items", 2000)]), ..Default::default() };
    let h = Harness::start(cfg, "lookback = \"2s\"", "poll_every = \"1s\"").await;
    // 20 pages of 100 at 150 ms each: the initial load takes about 3 s.
    h.mock.inject(Fault { kind: FaultKind::Slow { millis: 150 }, entity: Some("items".into()), times: 20 });
    let cancel = CancellationToken::new();
    let (sm, c) = (h.sm.clone(), cancel.clone());
    let agent = tokio::spawn(async move { sm.run(c).await.unwrap() });

    // Mid-load (bounded: 500 × 20 ms): 8 pages served, the load still running.
    let pages_served = || h.mock.requests().iter().filter(|r| r.path.ends_with("/items") && r.status == 200).count();
    for _ in 0..500 {
        if pages_served() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs = h.sm.runs("src/items", 10).unwrap();
    assert!(pages_served() >= 8 && runs.len() == 1 && runs[0].outcome == UnfinishedRun::Running, "the initial load is under way: {runs:?}");
    let late = h.mock.late_commit("items");

    // The load ends without it: its version is below pages already read (bounded: 500 × 20 ms).
    for _ in 0..500 {
        if h.sm.runs("src/items", 10).unwrap().last().is_some_and(|r| r.finished_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let load = h.sm.runs("src/items", 100).unwrap().pop().unwrap();
    assert_eq!(
        (load.kind.as_str(), load.outcome, load.records),
        ("incremental", RunOutcome::Finished(Outcome::CaughtUp), 2000),
        "the load read the 2000 records, not the late one: {load:?}"
    );
    let top = h.mock.dataset("items").iter().filter(|r| r.id != late.id).map(|r| version(&r.row_version)).max().unwrap();
    assert!(version(&late.row_version) < top, "the late commit lies below the top of the initial load");

    // The first sweep, 2 s after the load, re-reads the load and brings it (bounded: 150 × 100 ms).
    let mut arrived = false;
    for _ in 0..150 {
        if h.replica("items").contains_key(&late.id) {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cancel.cancel();
    agent.await.unwrap();
    let kinds: Vec<String> = h.sm.runs("src/items", 100).unwrap().into_iter().map(|r| r.kind).collect();
    assert!(arrived, "the late commit below the top of the initial load must reach the replica; runs: {kinds:?}");
    assert!(kinds.iter().any(|k| k == "lookback"), "a lookback sweep brought it: {kinds:?}");
    h.assert_converged("items");
}

#[tokio::test]
async fn a_late_commit_behind_the_checkpoint_arrives_by_the_next_sweep_and_not_on_every_poll() {
    let (h, clock) = with_test_clock(300, "lookback = \"10s\"").await;
    assert_eq!(h.sync_ok("items").await.kind, "incremental");
    clock.advance(Duration::from_millis(1_000));
    h.mock.mutate("items", 20);
    h.sync_ok("items").await;

    // A commit behind the checkpoint: polls read strictly after it and do not see it.
    let late = h.mock.late_commit("items");
    assert!(version(&late.row_version) < version(&h.checkpoint("items")), "the late commit lies behind the checkpoint");
    clock.advance(Duration::from_millis(1_000));
    let poll = h.sync_ok("items").await;
    assert_eq!((poll.kind, poll.records), ("incremental", 0), "a poll re-reads nothing");
    assert!(!h.replica("items").contains_key(&late.id));

    // The first sweep, 10 s after the first catch-up, re-reads from the beginning.
    clock.advance(Duration::from_millis(8_000));
    let sweep = h.sync_ok("items").await;
    assert_eq!(sweep.kind, "lookback");
    assert!(h.replica("items").contains_key(&late.id), "the sweep brings the late commit");
    h.assert_converged("items");

    // The next late commit is found by the next sweep, which reads from the checkpoint current
    // a lookback before the previous sweep, not from the beginning again.
    clock.advance(Duration::from_millis(2_000));
    h.mock.mutate("items", 20);
    h.sync_ok("items").await;
    let late = h.mock.late_commit("items");
    clock.advance(Duration::from_millis(1_000));
    h.sync_ok("items").await;
    assert!(!h.replica("items").contains_key(&late.id));
    clock.advance(Duration::from_millis(7_000));
    let sweep = h.sync_ok("items").await;
    assert_eq!(sweep.kind, "lookback");
    assert!(sweep.records < 100, "the second sweep re-reads the last two lookbacks, not all 300 records: {}", sweep.summary());
    assert!(h.replica("items").contains_key(&late.id), "the second sweep brings the second late commit");
    h.assert_converged("items");
}

#[tokio::test]
async fn with_steady_changes_the_records_read_stay_within_three_times_the_records_changed() {
    // A poll every second, 10 changes each, a late commit every 7th; lookback 10 s; 6 lookbacks.
    let (h, clock) = with_test_clock(1000, "lookback = \"10s\"").await;
    h.sync_ok("items").await;
    clock.advance(Duration::from_millis(10_000));
    let first_sweep = h.sync_ok("items").await;
    let (mut served, mut changed, mut sweeps) = (0u64, 0u64, 0u32);
    let polls = 60;
    for poll in 1..=polls {
        clock.advance(Duration::from_millis(1_000));
        changed += h.mock.mutate("items", 10).len() as u64;
        if poll % 7 == 0 {
            h.mock.late_commit("items");
            changed += 1;
        }
        let r = h.sync("items").await;
        served += r.records;
        sweeps += u32::from(r.kind == "lookback");
    }
    let ratio = served as f64 / changed as f64;
    println!("lookback cost: {served} records read for {changed} changed over {polls} polls ({sweeps} sweeps): ratio {ratio:.2}");
    assert!(ratio <= 3.0, "records read / records changed = {ratio:.2} must stay within 3");
    assert_eq!((first_sweep.kind, first_sweep.records), ("lookback", 1000), "the first sweep re-reads the initial load");
    assert!(sweeps >= 5, "a sweep every lookback: {sweeps}");
    h.assert_converged("items");
}

#[tokio::test]
async fn the_initial_load_is_re_read_once_by_the_first_sweep_not_on_every_poll() {
    let (h, clock) = with_test_clock(500, "lookback = \"5s\"").await;
    h.sync_ok("items").await;
    assert_eq!(reads_from_zero(&h), 1);
    let mut kinds = Vec::new();
    // Six lookbacks of polls, one a second, with changes.
    for _ in 0..30 {
        clock.advance(Duration::from_millis(1_000));
        h.mock.mutate("items", 5);
        kinds.push(h.sync_ok("items").await.kind);
    }
    let sweeps = kinds.iter().filter(|k| **k == "lookback").count();
    assert!(sweeps >= 5, "a sweep every 5 s: {kinds:?}");
    assert_eq!(reads_from_zero(&h), 2, "the initial load and the first sweep read from 0, nothing else: {kinds:?}");
    h.assert_converged("items");
}
