//! `profile = "snapshot"` against the simulated source's snapshot feed (no version at all):
//! every poll reads every page; only what was inserted or changed is written; ids absent from a
//! COMPLETE pass are deleted under the deletion guard; an interrupted pass deletes nothing.

mod common;

use common::*;
use std::collections::BTreeMap;
use syncmon_core::config::Config;
use syncmon_core::engine::Outcome;
use syncmon_mock::{Fault, FaultKind, FeedSpec, MockConfig, MockServer};

const SNAPSHOT: &str = "max_retries = 1\nprofile = \"snapshot\"\n[connection.cursor]\nrecords_pointer = \"/items\"\npage_size_param = \"limit\"\nnext_url_pointer = \"/links/next\"\n";

/// A snapshot feed `prices` of `records` records, read in pages of 100.
async fn harness(records: usize) -> Harness {
    let mock = MockServer::start(MockConfig { entities: Vec::new(), feeds: vec![FeedSpec::snapshot("prices", records)], ..Default::default() }).await.unwrap();
    let text = config_text(&mock.base_url(), &["prices"], SNAPSHOT, "");
    Harness::with_config(mock, text).await
}

/// Every page from `page` on fails until the faults are cleared (retries included).
fn fail_from_page(h: &Harness, page: u32) {
    h.mock.inject(Fault { kind: FaultKind::FailPage { page, status: 500 }, entity: Some("prices".into()), times: 0 });
}

/// id → data, of the replica's live rows and of the source.
fn replica_data(h: &Harness) -> BTreeMap<String, serde_json::Value> {
    h.replica("prices").into_iter().map(|(id, (_, data))| (id, data)).collect()
}

fn source_data(h: &Harness) -> BTreeMap<String, serde_json::Value> {
    h.mock.dataset("prices").into_iter().map(|r| (r.id, r.data)).collect()
}

fn tombstones(h: &Harness) -> Vec<String> {
    h.export("prices", true).into_iter().filter(|r| r.get("deleted_at").is_some()).map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn versions(h: &Harness) -> BTreeMap<String, String> {
    h.replica("prices").into_iter().map(|(id, (v, _))| (id, v)).collect()
}

#[tokio::test]
async fn a_snapshot_feeds_inserts_updates_and_deletions_arrive_and_an_interrupted_pass_tombstones_nothing() {
    let h = harness(1000).await;
    let first = h.sync_ok("prices").await;
    assert_eq!((first.pages, first.records, first.changed), (10, 1000, Some(1000)), "{}", first.summary());
    assert_eq!(replica_data(&h), source_data(&h));
    let before = versions(&h);

    let inserted = h.mock.insert("prices", 5);
    let updated = h.mock.mutate("prices", 7);
    let deleted = h.mock.delete("prices", 4);

    // A pass cut at page 6: what it read is applied, nothing is deleted.
    fail_from_page(&h, 6);
    let cut = h.sync("prices").await;
    assert_eq!(cut.outcome, Outcome::Failed, "{}", cut.summary());
    assert!(tombstones(&h).is_empty(), "an interrupted pass deletes nothing");
    let live = replica_data(&h);
    assert!(deleted.iter().all(|id| live.contains_key(id)), "the records deleted at the source are still in the replica");
    assert!(h.sm.status().unwrap()[0].last_complete_pass_at.is_some(), "the first pass was complete");

    h.mock.clear_faults();
    let pass = h.sync_ok("prices").await;
    assert_eq!(replica_data(&h), source_data(&h), "inserts, updates and deletions arrived");
    let mut gone = tombstones(&h);
    gone.sort();
    let mut want = deleted.clone();
    want.sort();
    assert_eq!(gone, want, "exactly the deleted ids are tombstones");
    assert_eq!(pass.pass.map(|p| p.deleted), Some(4));

    // Only what changed got a new local version (the change counter), above all earlier ones.
    let after = versions(&h);
    let top: u64 = before.values().map(|v| v.parse::<u64>().unwrap()).max().unwrap();
    for (id, v) in &after {
        let changed = inserted.contains(id) || updated.contains(id);
        match before.get(id) {
            Some(old) if !changed => assert_eq!(v, old, "{id} did not change"),
            _ => assert!(v.parse::<u64>().unwrap() > top, "{id} changed: its row_version {v} is a new change number"),
        }
    }
    assert_eq!(h.checkpoint("prices"), after.values().map(|v| v.parse::<u64>().unwrap()).max().unwrap().to_string());
    let status = h.sm.status().unwrap().remove(0);
    assert_eq!(status.replica_rows, 1001);
}

#[tokio::test]
async fn a_second_pass_over_an_unchanged_snapshot_writes_no_replica_row() {
    let h = harness(450).await;
    h.sync_ok("prices").await;
    let (before, checkpoint) = (versions(&h), h.checkpoint("prices"));
    // A millisecond apart from the first pass's last write, so `updated_at` tells them apart.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let started_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;

    let again = h.sync_ok("prices").await;
    assert_eq!((again.records, again.changed), (450, Some(0)), "{}", again.summary());
    assert!(again.summary().contains("(0 new or changed)"), "{}", again.summary());
    assert_eq!(versions(&h), before, "no row_version moved");
    assert_eq!(h.checkpoint("prices"), checkpoint);
    let db = rusqlite::Connection::open_with_flags(h.dir.path().join("syncmon.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let rewritten: i64 = db.query_row("SELECT count(*) FROM replica_src_prices WHERE updated_at >= ?1", [started_ms], |r| r.get(0)).unwrap();
    assert_eq!(rewritten, 0, "an unchanged record is not rewritten");
    let status = h.sm.status().unwrap().remove(0);
    assert!(status.last_complete_pass_at.is_some_and(|t| t >= started_ms), "status shows the last complete pass");
    let refused = h.sm.reset_checkpoint("prices").await.unwrap_err().to_string();
    assert!(refused.contains("snapshot feed"), "the change counter is not a checkpoint to reset: {refused}");
    assert_eq!(h.checkpoint("prices"), checkpoint);
}

#[tokio::test]
async fn the_deletion_guard_trips_when_most_ids_vanish() {
    let h = harness(300).await;
    h.sync_ok("prices").await;
    h.mock.delete("prices", 200);
    let stopped = h.sync("prices").await;
    assert_eq!(stopped.outcome, Outcome::GuardTripped, "{}", stopped.summary());
    let end = stopped.pass.unwrap();
    assert_eq!((end.unseen, end.deleted, end.live_before), (200, 0, 300));
    assert!(tombstones(&h).is_empty() && h.replica("prices").len() == 300, "the guard deletes nothing");
    let status = h.sm.status().unwrap().remove(0);
    assert_eq!(status.health, syncmon_core::Health::Failing);
    assert!(status.reason.as_deref().unwrap_or("").contains("--yes"), "{:?}", status.reason);

    // The next poll stops again; allowing it deletes them.
    assert_eq!(h.sync("prices").await.outcome, Outcome::GuardTripped);
    let allowed = h.sm.resync("prices", true, &tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(allowed.outcome, Outcome::CaughtUp, "{}", allowed.summary());
    assert_eq!(tombstones(&h).len(), 200);
    assert_eq!(replica_data(&h), source_data(&h));
}

#[tokio::test]
async fn a_restart_after_an_interrupted_pass_starts_again_from_the_first_page() {
    let mut h = harness(800).await;
    h.sync_ok("prices").await;
    let before = versions(&h);
    let deleted = h.mock.delete("prices", 3);
    let updated = h.mock.mutate("prices", 2);
    fail_from_page(&h, 4);
    assert_eq!(h.sync("prices").await.outcome, Outcome::Failed);
    assert!(tombstones(&h).is_empty(), "the interrupted pass deleted nothing");
    h.reopen();
    h.mock.clear_faults();
    let pass = h.sync_ok("prices").await;
    assert_eq!(pass.pages, 8, "the pass after the restart read every page again: {}", pass.summary());
    let mut gone = tombstones(&h);
    gone.sort();
    let mut want = deleted;
    want.sort();
    assert_eq!(gone, want, "only what the source deleted is deleted");
    assert_eq!(replica_data(&h), source_data(&h));
    for (id, v) in versions(&h) {
        if !updated.contains(&id) {
            assert_eq!(Some(&v), before.get(&id), "{id} did not change: the restart rewrote nothing");
        }
    }
}

#[tokio::test]
async fn a_replayed_snapshot_record_takes_a_change_number_and_the_next_pass_leaves_it_alone() {
    let mock = MockServer::start(MockConfig { entities: Vec::new(), feeds: vec![FeedSpec::snapshot("prices", 120)], ..Default::default() }).await.unwrap();
    let strict = config_text(&mock.base_url(), &["prices"], SNAPSHOT, "required_fields = [\"discount\"]");
    let mut h = Harness::with_config(mock, strict).await;
    let first = h.sync_ok("prices").await;
    assert_eq!((first.failed_new, first.changed), (120, Some(0)), "no record has a discount: {}", first.summary());

    // The rule is dropped: the failed items replay into the replica.
    h.config_text = config_text(&h.mock.base_url(), &["prices"], SNAPSHOT, "");
    h.reopen();
    let ids = h.sm.failed_ids(&Default::default()).unwrap();
    let replayed = h.sm.replay(&ids, &tokio_util::sync::CancellationToken::new()).await.unwrap();
    assert_eq!(replayed.replayed, 120);
    assert_eq!(replica_data(&h), source_data(&h));
    let numbers: std::collections::BTreeSet<u64> = versions(&h).values().map(|v| v.parse().unwrap()).collect();
    assert_eq!(numbers, (1..=120).collect(), "each replayed record took a change number");

    let pass = h.sync_ok("prices").await;
    assert_eq!(pass.changed, Some(0), "the replayed records are the source's records: {}", pass.summary());
}

#[test]
fn keys_that_carry_a_version_contradict_the_snapshot_profile() {
    let conn = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"snapshot\"\n";
    Config::parse(conn).expect("a snapshot needs no cursor section");
    Config::parse(&format!("{conn}[connection.cursor]\nrecords_pointer = \"/items\"\nnext_url_pointer = \"/links/next\"\n")).unwrap();
    for (extra, key) in [("version_field = \"rowVersion\"\n", "version_field"), ("filter_param = \"since\"\n", "filter_param")] {
        let err = Config::parse(&format!("{conn}[connection.cursor]\n{extra}")).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(format!("connections[0].cursor.{key}").as_str()));
        assert!(err.message.contains(&format!("`{key}` (line 6) contradicts it")), "{}", err.message);
    }
    let err = Config::parse(&format!("{conn}[connection.cursor]\nnext = \"short-page\"\npage_size_param = \"limit\"\n")).unwrap_err();
    assert!(err.message.contains("short-page"), "{}", err.message);
    // The cursor profile still needs its filter.
    let cursor = "[[connection]]\nid = \"a\"\nbase_url = \"http://127.0.0.1:1\"\nprofile = \"cursor\"\n[connection.cursor]\nnext = \"link-header\"\n";
    assert!(Config::parse(cursor).unwrap_err().message.contains("filter_param"));
}
