//! The replica against the simulated source on loopback: initial and incremental syncs, the
//! digit boundary, resyncs with deletions and the deletion guard.

mod common;

use common::*;
use syncmon_core::engine::Outcome;
use syncmon_mock::MockConfig;

#[tokio::test]
async fn a_full_initial_sync_copies_every_record_of_every_entity() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 730), ("customers", 250), ("salesorders", 99)]), ..Default::default() }, "", "").await;
    for e in ["items", "customers", "salesorders"] {
        let r = h.sync_ok(e).await;
        assert!(r.pages >= 1);
        h.assert_converged(e);
        assert_eq!(h.checkpoint(e).parse::<u128>().unwrap(), max_version(&h, e), "{e}: the checkpoint is the highest version applied");
    }
    let status = h.sm.status().unwrap();
    assert!(status.iter().all(|s| s.health == syncmon_core::Health::Healthy), "{status:?}");
    assert_eq!(status.iter().find(|s| s.entity == "items").unwrap().replica_rows, 730);
}

#[tokio::test]
async fn a_feed_whose_row_versions_gain_a_digit_midway_loses_nothing() {
    // Versions step by 2 from 999_500: the feed crosses 1_000_000 after 250 records.
    let h = Harness::start(MockConfig { entities: entities(&[("items", 600)]), start_version: 999_500, ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    h.assert_converged("items");
    assert!(h.checkpoint("items").len() == 7, "checkpoint {} must be past the digit boundary", h.checkpoint("items"));
    // Changes after the boundary are picked up incrementally too.
    h.mock.mutate("items", 40);
    h.mock.insert("items", 10);
    h.sync_ok("items").await;
    h.assert_converged("items");
}

#[tokio::test]
async fn incremental_syncs_follow_a_source_that_changes_while_syncing() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 2000)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    // Change the source concurrently with the next sync, then catch up once more.
    let mock = h.mock.clone();
    let writer = tokio::spawn(async move {
        for _ in 0..40 {
            mock.mutate("items", 10);
            mock.insert("items", 2);
            mock.delete("items", 1);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    });
    h.sync_ok("items").await;
    writer.await.unwrap();
    h.sync_ok("items").await;
    // Deletions are found by a resync, not by incremental polls: compare the ids the source still has.
    let replica = h.replica("items");
    for (id, (v, data)) in h.source("items") {
        let (rv, rdata) = replica.get(&id).unwrap_or_else(|| panic!("{id} is missing from the replica"));
        assert_eq!((rv, rdata), (&v, &data), "{id}");
    }
    let source = h.source("items");
    let gone = replica.keys().filter(|id| !source.contains_key(*id)).count() as i64;
    assert!(gone > 0, "the source deleted rows the replica holds");
    let r = h.sm.resync("items", false, &Default::default()).await.unwrap();
    assert_eq!(r.pass.unwrap().deleted, gone, "the resync tombstones exactly the deleted ids");
    h.assert_converged("items");
}

#[tokio::test]
async fn a_full_resync_tombstones_exactly_the_deleted_ids() {
    let h = Harness::start(MockConfig { entities: entities(&[("customers", 400)]), ..Default::default() }, "", "").await;
    h.sync_ok("customers").await;
    let deleted = h.mock.delete("customers", 7);
    let r = h.sm.resync("customers", false, &Default::default()).await.unwrap();
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(r.pass.unwrap().deleted, 7);
    let tombstoned: Vec<String> =
        h.export("customers", true).into_iter().filter(|v| v.get("deleted_at").is_some()).map(|v| v["id"].as_str().unwrap().to_string()).collect();
    let mut expected = deleted.clone();
    expected.sort();
    let mut got = tombstoned.clone();
    got.sort();
    assert_eq!(got, expected, "exactly the deleted ids are tombstoned");
    h.assert_converged("customers");
}

/// A record served without its id during a full resync is not seen by that pass, which then
/// tombstones its row although the source still has it. The next pass serves it again, unchanged,
/// at the same rowVersion: the row must come back to life, not stay deleted until the record
/// changes at the source (found by the soak).
#[tokio::test]
async fn a_row_tombstoned_by_a_pass_that_missed_it_comes_back_when_a_later_pass_sees_it() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 300)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    h.mock.inject(syncmon_mock::Fault { kind: syncmon_mock::FaultKind::MissingId { records: 1 }, entity: None, times: 1 });
    let r = h.sm.resync("items", false, &Default::default()).await.unwrap();
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(r.pass.unwrap().deleted, 1, "the pass that could not see one record tombstones its row");
    assert_eq!(h.replica("items").len(), 299);

    let r = h.sm.resync("items", false, &Default::default()).await.unwrap();
    assert_eq!(r.outcome, Outcome::CaughtUp, "{}", r.summary());
    assert_eq!(r.pass.unwrap().deleted, 0);
    h.assert_converged("items");
}

#[tokio::test]
async fn the_deletion_guard_stops_a_resync_against_a_source_that_suddenly_returns_nothing() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 200)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    h.mock.delete_all("items");
    // Before it starts, the resync says the most it may delete: every row, as the pass sees none yet.
    let preview = h.sm.resync_preview("items").unwrap();
    assert_eq!((preview.replica_rows, preview.may_delete, preview.resumes, preview.stopped_at_guard), (200, 200, false, None), "{preview:?}");
    assert_eq!(preview.deletion_guard, 0.5);
    let r = h.sm.resync("items", false, &Default::default()).await.unwrap();
    assert_eq!(r.outcome, Outcome::GuardTripped, "{}", r.summary());
    // Stopped at the guard: allowing deletions deletes exactly what it asked about.
    let preview = h.sm.resync_preview("items").unwrap();
    assert_eq!((preview.replica_rows, preview.stopped_at_guard), (200, Some(200)), "{preview:?}");
    assert_eq!(h.replica("items").len(), 200, "nothing is deleted while the guard holds");
    let s = h.sm.status().unwrap().remove(0);
    assert_eq!(s.health, syncmon_core::Health::Failing);
    assert!(s.reason.unwrap().contains("--yes"), "the status says how to allow the deletion");
    // The user confirms: the finished pass's deletions are applied.
    let r = h.sm.resync("items", true, &Default::default()).await.unwrap();
    assert_eq!(r.pass.unwrap().deleted, 200);
    assert!(h.replica("items").is_empty());
    let preview = h.sm.resync_preview("items").unwrap();
    assert_eq!((preview.replica_rows, preview.may_delete, preview.stopped_at_guard), (0, 0, None), "{preview:?}");
}

#[tokio::test]
async fn an_interrupted_resync_resumes_after_a_restart() {
    let mut h = Harness::start(MockConfig { entities: entities(&[("items", 1000)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    let deleted = h.mock.delete("items", 3);
    // Stop the pass after its first pages.
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut events = h.sm.subscribe();
    let c = cancel.clone();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if matches!(e.kind, syncmon_core::events::EventKind::PageApplied { .. }) {
                c.cancel();
                break;
            }
        }
    });
    let r = h.sm.resync("items", false, &cancel).await.unwrap();
    assert_eq!(r.outcome, Outcome::Cancelled);
    h.reopen();
    let st = h.sm.status().unwrap().remove(0);
    assert_eq!(st.health, syncmon_core::Health::Resyncing);
    // The same numbers everywhere: records read of the replica's rows, and the deletions the pass
    // would make if it ended now (every live row it has not seen yet).
    let seen = st.resync_seen.expect("a pass under way counts what it read");
    assert!(seen > 0 && seen < 1000, "{seen}");
    assert_eq!(st.resync_would_delete, Some(st.replica_rows - seen), "{st:?}");
    let reason = st.reason.clone().unwrap();
    assert!(reason.contains(&format!("{seen} of 1,000 records read")) && reason.contains("not seen yet"), "{reason}");
    // A resync now resumes the pass: it may delete only the rows the pass has not seen yet.
    let preview = h.sm.resync_preview("items").unwrap();
    assert!(preview.resumes && preview.seen == seen && preview.may_delete == 1000 - seen && preview.replica_rows == 1000, "{preview:?}");
    let mut events = h.sm.subscribe();
    // A plain sync resumes the pass from its cursor and finishes it.
    let r = h.sync_ok("items").await;
    let mut last = None;
    while let Ok(e) = events.try_recv() {
        if let syncmon_core::events::EventKind::ResyncProgress { seen, would_delete, .. } = e.kind {
            last = Some((seen, would_delete));
        }
    }
    assert_eq!(last, Some((997, Some(3))), "the last progress counts the whole pass and names the deletions it makes at its end");
    assert_eq!(r.kind, syncmon_core::RunKind::Resync);
    assert!(r.records < 1000, "the pass resumed from its cursor instead of starting over ({} records)", r.records);
    assert_eq!(r.pass.unwrap().deleted, deleted.len() as i64);
    h.assert_converged("items");
}
