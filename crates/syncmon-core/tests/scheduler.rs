//! The agent's schedule: the initial catch-up counts as the first full pass, and the periodic full
//! resync (`full_resync_every`) comes when it is due, not on the first poll after the initial load.

mod common;

use common::*;
use std::time::Duration;
use syncmon_core::RunKind;
use syncmon_mock::MockConfig;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_full_resync_runs_when_due_and_not_right_after_the_initial_load() {
    let cfg = MockConfig { entities: entities(&[("items", 300)]), ..Default::default() };
    let h = Harness::start(cfg, "", "poll_every = \"1s\"\nfull_resync_every = \"6s\"").await;
    let cancel = CancellationToken::new();
    let (sm, c) = (h.sm.clone(), cancel.clone());
    let agent = tokio::spawn(async move { sm.run(c).await.unwrap() });

    let kinds = || h.sm.runs("src/items", 100).unwrap().into_iter().map(|r| r.kind).collect::<Vec<_>>();
    // The catch-up and a few polls after it (bounded: 60 × 100 ms): every one incremental.
    let mut polls = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        polls = kinds().iter().filter(|k| **k == RunKind::Incremental).count();
        if polls >= 3 {
            break;
        }
    }
    assert!(polls >= 3, "the agent polls: {:?}", kinds());
    assert!(!kinds().contains(&RunKind::Resync), "no full resync right after the initial load: {:?}", kinds());

    // Then, 6 s after the initial load, the full resync (bounded: 150 × 100 ms).
    let mut resynced = false;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let runs = h.sm.runs("src/items", 100).unwrap();
        if runs.iter().any(|r| r.kind == RunKind::Resync && r.finished_at.is_some()) {
            resynced = true;
            break;
        }
    }
    cancel.cancel();
    agent.await.unwrap();
    assert!(resynced, "the full resync ran once due: {:?}", kinds());
    h.assert_converged("items");
}

/// The request log keeps its retention while the agent runs, not only when it starts: with a
/// 2 s retention and a poll a second, after 7 s the oldest entry is at most 4 s old (retention
/// plus one housekeeping interval of retention / 2, and a second of slack for a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_keeps_its_retention_while_the_agent_runs() {
    let cfg = MockConfig { entities: entities(&[("items", 50)]), ..Default::default() };
    let mock = syncmon_mock::MockServer::start(cfg).await.unwrap();
    let text = config_text(&mock.base_url(), &["items"], "", "poll_every = \"1s\"") + "[storage]\nrequest_log_retention = \"2s\"\n";
    let h = Harness::with_config(mock, text).await;
    let cancel = CancellationToken::new();
    let (sm, c) = (h.sm.clone(), cancel.clone());
    let started = std::time::Instant::now();
    let agent = tokio::spawn(async move { sm.run(c).await.unwrap() });
    let db = rusqlite::Connection::open_with_flags(h.dir.path().join("syncmon.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let oldest_age_ms = || -> Option<i64> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        db.query_row("SELECT min(at) FROM request_log", [], |r| r.get::<_, Option<i64>>(0)).unwrap().map(|at| now - at)
    };
    // Observe for 7 s (bounded: 80 × 100 ms): long enough for the first entries to expire.
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() >= Duration::from_secs(7) {
            break;
        }
    }
    let age = oldest_age_ms();
    cancel.cancel();
    agent.await.unwrap();
    let age = age.expect("the agent polls every second, so the request log has entries");
    assert!(age <= 4_000, "the oldest request-log entry is {age} ms old after 7 s with a 2 s retention");
}
