//! The agent's schedule: the initial catch-up counts as the first full pass, and the periodic full
//! resync (`full_resync_every`) comes when it is due, not on the first poll after the initial load.

mod common;

use common::*;
use std::time::Duration;
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
        polls = kinds().iter().filter(|k| *k == "incremental").count();
        if polls >= 3 {
            break;
        }
    }
    assert!(polls >= 3, "the agent polls: {:?}", kinds());
    assert!(!kinds().contains(&"resync".to_string()), "no full resync right after the initial load: {:?}", kinds());

    // Then, 6 s after the initial load, the full resync (bounded: 150 × 100 ms).
    let mut resynced = false;
    for _ in 0..150 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let runs = h.sm.runs("src/items", 100).unwrap();
        if runs.iter().any(|r| r.kind == "resync" && r.finished_at.is_some()) {
            resynced = true;
            break;
        }
    }
    cancel.cancel();
    agent.await.unwrap();
    assert!(resynced, "the full resync ran once due: {:?}", kinds());
    h.assert_converged("items");
}
