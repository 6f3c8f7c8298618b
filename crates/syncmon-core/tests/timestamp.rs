//! `profile = "timestamp"` against the simulated source's timestamp feed: coarse timestamps (100
//! records share each second), an inclusive "since", and edits that land on the newest second a
//! poll has already read. Nothing may be lost, and what is read again unchanged is not news.

mod common;

use common::*;
use syncmon_core::engine::Outcome;
use syncmon_core::events::EventKind;
use syncmon_core::profile::CheckpointKind;
use syncmon_core::timestamp::{to_version, TimestampFormat};
use syncmon_mock::{Fault, FaultKind, FeedKind, FeedSpec, MockConfig, MockServer, TimeFormat, TimestampFeed};

/// 2024-01-01T00:00:00.400Z: the newest group of the initial data is stamped 00:00:00.
const CLOCK_MS: i64 = 1_704_067_200_400;
const NEWEST: &str = "2024-01-01T00:00:00Z";

async fn feed_mock(format: TimeFormat) -> MockServer {
    let feed = FeedSpec { kind: FeedKind::Timestamp(TimestampFeed { format, ..Default::default() }), ..FeedSpec::timestamp("vendors", 300) };
    MockServer::start(MockConfig { entities: Vec::new(), feeds: vec![feed], clock_ms: Some(CLOCK_MS), ..Default::default() }).await.unwrap()
}

/// The configuration, pages of `page_size` (70: pages end in the middle of a second).
fn feed_config(base_url: &str, page_size: u32, conn_extra: &str, cursor_extra: &str, tail: &str) -> String {
    format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base_url}\"\nbackoff_base = \"20ms\"\nbackoff_max = \"100ms\"\nmax_retries = 1\n\
         requests_per_second = 1000\ntimeout = \"2s\"\nprofile = \"timestamp\"\n{conn_extra}\n\
         [connection.cursor]\nid_field = \"id\"\nversion_field = \"lastModified\"\nrecords_pointer = \"/items\"\n\
         filter_param = \"modifiedSince\"\nextra_query = \"orderBy=lastModified\"\npage_size_param = \"limit\"\n\
         next_url_pointer = \"/links/next\"\n{cursor_extra}\n\
         [[connection.entity]]\nname = \"vendors\"\npage_size = {page_size}\n{tail}\n"
    )
}

async fn harness(page_size: u32, conn_extra: &str) -> Harness {
    let mock = feed_mock(TimeFormat::Rfc3339).await;
    let text = feed_config(&mock.base_url(), page_size, conn_extra, "", "");
    Harness::with_config(mock, text).await
}

/// The replica holds every record of the feed with its data, and as its version the record's
/// own timestamp (microseconds since 1970).
fn assert_replica_is_the_feed(h: &Harness, format: TimestampFormat) {
    let replica = h.replica("vendors");
    let source = h.source("vendors");
    assert_eq!(replica.keys().collect::<Vec<_>>(), source.keys().collect::<Vec<_>>(), "the same ids");
    for (id, (_, data)) in &source {
        let (version, held) = &replica[id];
        assert_eq!(held, data, "{id}: the replica holds the source's record as it is now");
        assert_eq!(version, &to_version(&data["lastModified"], format).unwrap().to_string(), "{id}");
    }
}

/// (id, updated_at) of every replica row, read straight from the SQLite file.
fn written_at(h: &Harness) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(h.dir.path().join(syncmon_core::DB_FILE)).unwrap();
    let table = syncmon_core::store::EntityKey::new("src", "vendors").table();
    let mut st = c.prepare(&format!("SELECT id, updated_at FROM \"{table}\" ORDER BY id")).unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}

#[tokio::test]
async fn edits_on_the_newest_timestamp_already_read_are_not_lost() {
    let h = harness(100, "").await;
    let r = h.sync_ok("vendors").await;
    assert_eq!((r.pages, r.records), (3, 300));
    assert_replica_is_the_feed(&h, TimestampFormat::Rfc3339);
    assert_eq!(h.mock.newest_served("vendors").as_deref(), Some(NEWEST));

    // The same second again: 10 records change within it, after the poll read it.
    let edited = h.mock.mutate_at_served("vendors", 10);
    assert_eq!(edited.len(), 10);
    let r = h.sync_ok("vendors").await;
    assert_replica_is_the_feed(&h, TimestampFormat::Rfc3339);
    assert_eq!(r.records, 10, "the 10 edits are the changes; the second's other records came again unchanged: {}", r.summary());

    // Twice more in the same second, to the same records and others.
    h.mock.edit_at_served("vendors", &[edited[0].as_str(), edited[1].as_str()]);
    h.mock.mutate_at_served("vendors", 30);
    h.sync_ok("vendors").await;
    assert_replica_is_the_feed(&h, TimestampFormat::Rfc3339);
    assert_eq!(h.sm.status().unwrap()[0].checkpoint_display, NEWEST);
}

#[tokio::test]
async fn unchanged_records_read_again_are_neither_rewritten_nor_counted_nor_forwarded() {
    let mock = feed_mock(TimeFormat::Rfc3339).await;
    let target = format!(
        "\n[[target]]\nid = \"dst\"\nbase_url = \"{}/target\"\nbackoff_base = \"20ms\"\nrequests_per_second = 1000\ntimeout = \"2s\"\n",
        mock.base_url()
    );
    let text = feed_config(&mock.base_url(), 70, "", "", "forward_to = \"dst\"") + &target;
    let h = Harness::with_config(mock, text).await;
    h.sync_ok("vendors").await;
    let puts = || h.mock.requests().iter().filter(|q| q.method == "PUT").count();
    assert_eq!(puts(), 300, "every record forwarded once");
    let before = written_at(&h);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    // Nothing changed: the poll reads the newest second again (100 records, 2 pages of 70) and
    // ends caught up without a change (the not-advancing guards do not take it for a stall).
    let r = h.sync_ok("vendors").await;
    assert_eq!((r.pages, r.records), (2, 0), "{}", r.summary());
    assert_eq!(h.sm.runs("vendors", 1).unwrap()[0].records, 0, "the run history counts no change");
    assert_eq!(written_at(&h), before, "no row rewritten");
    assert_eq!(puts(), 300, "nothing forwarded again");
    let since: Vec<String> = h.mock.requests().iter().filter(|q| q.method == "GET" && q.query.contains("modifiedSince")).map(|q| q.query.clone()).collect();
    assert!(since.iter().any(|q| q.contains("modifiedSince=2024-01-01T00%3A00%3A00Z")), "asked from the checkpoint itself: {since:?}");

    // One change in that second: only it is written and forwarded.
    let edited = h.mock.mutate_at_served("vendors", 1);
    let r = h.sync_ok("vendors").await;
    assert_eq!(r.records, 1);
    let after = written_at(&h);
    let rewritten: Vec<&String> = after.iter().zip(&before).filter(|(a, b)| a.1 != b.1).map(|(a, _)| &a.0).collect();
    assert_eq!(rewritten, [&edited[0]]);
    assert_eq!(puts(), 301);
    assert_replica_is_the_feed(&h, TimestampFormat::Rfc3339);
}

#[tokio::test]
async fn an_epoch_milliseconds_feed_is_asked_in_milliseconds_and_loses_nothing() {
    let mock = feed_mock(TimeFormat::EpochMillis).await;
    let text = feed_config(&mock.base_url(), 70, "", "timestamp_format = \"epoch_millis\"", "");
    let h = Harness::with_config(mock, text).await;
    h.sync_ok("vendors").await;
    assert_replica_is_the_feed(&h, TimestampFormat::EpochMillis);
    let newest_ms = CLOCK_MS - 400;
    assert_eq!(h.checkpoint("vendors"), (newest_ms * 1000).to_string(), "microseconds since 1970");

    h.mock.mutate_at_served("vendors", 5);
    let r = h.sync_ok("vendors").await;
    assert_eq!(r.records, 5);
    assert_replica_is_the_feed(&h, TimestampFormat::EpochMillis);
    let last = h.mock.requests().into_iter().rfind(|q| q.query.contains("modifiedSince")).unwrap();
    assert!(last.query.contains(&format!("modifiedSince={newest_ms}&")), "the since in the feed's own unit: {}", last.query);
}

#[tokio::test]
async fn the_checkpoint_is_shown_as_a_date() {
    let h = harness(100, "").await;
    let s = &h.sm.status().unwrap()[0];
    assert_eq!((s.checkpoint_kind, s.checkpoint_display.as_str()), (CheckpointKind::Timestamp, "1970-01-01T00:00:00Z"));
    let mut events = h.sm.subscribe();
    let r = h.sync_ok("vendors").await;
    let mut pages = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let EventKind::PageApplied { checkpoint, .. } = e.kind {
            pages.push(checkpoint);
        }
    }
    assert_eq!(pages, ["2023-12-31T23:59:58Z", "2023-12-31T23:59:59Z", NEWEST], "the event log's lines read as dates too");
    assert_eq!(r.checkpoint_display, NEWEST);
    assert!(r.summary().contains(&format!("checkpoint {NEWEST}")), "{}", r.summary());
    let s = &h.sm.status().unwrap()[0];
    assert_eq!(s.checkpoint_display, NEWEST);
    assert_eq!(s.checkpoint, "1704067200000000");
    let json = serde_json::to_value(s).unwrap();
    assert_eq!((json["checkpoint_kind"].as_str(), json["checkpoint_display"].as_str()), (Some("timestamp"), Some(NEWEST)));
}

#[tokio::test]
async fn a_cycle_stopped_between_pages_resumes_after_a_restart_without_loss() {
    let mut h = harness(70, "").await;
    // The third page of the pass fails past its retries: the cycle stops after 140 records, in
    // the middle of the second second (records 100..199 share 23:59:59).
    h.mock.inject(Fault { kind: FaultKind::FailPage { page: 3, status: 503 }, entity: Some("vendors".into()), times: 5 });
    let r = h.sync("vendors").await;
    assert_eq!((r.outcome, r.pages), (Outcome::Failed, 2), "{}", r.summary());
    assert_eq!(h.replica("vendors").len(), 140);
    assert_eq!(h.sm.status().unwrap()[0].checkpoint_display, "2023-12-31T23:59:59Z");

    h.mock.clear_faults();
    h.reopen();
    h.sync_ok("vendors").await;
    assert_replica_is_the_feed(&h, TimestampFormat::Rfc3339);
}

#[tokio::test]
async fn an_overlap_reads_records_stamped_a_little_below_the_checkpoint_but_never_lets_an_older_stamp_win() {
    let h = harness(100, "overlap = \"2s\"").await;
    h.sync_ok("vendors").await;
    let before = h.replica("vendors");
    // The source's clock steps back a second and every record changes: stamped 23:59:59, below
    // the checkpoint (00:00:00). Without the overlap none of them would be read again.
    h.mock.set_clock_ms(CLOCK_MS - 1000);
    assert_eq!(h.mock.mutate("vendors", 300).len(), 300);
    let r = h.sync_ok("vendors").await;
    let newest = to_version(&serde_json::json!(NEWEST), TimestampFormat::Rfc3339).unwrap().to_string();
    let (replica, source) = (h.replica("vendors"), h.source("vendors"));
    let mut kept = 0;
    for (id, (_, data)) in &source {
        let (version, held) = &replica[id];
        if before[id].0 == newest {
            // Held at 00:00:00, served again stamped 23:59:59: an older version never overwrites
            // a newer one, whatever its content.
            assert_eq!((version, held), (&before[id].0, &before[id].1), "{id}: kept as held");
            kept += 1;
        } else {
            // Held at 23:59:58 (now newer) or 23:59:59 (the same second with new content): applied.
            assert_eq!(held, data, "{id}: the replica holds the source's record as it is now");
            assert_eq!(version, &to_version(&data["lastModified"], TimestampFormat::Rfc3339).unwrap().to_string(), "{id}");
        }
    }
    assert_eq!(kept, 100, "the newest second's records keep their version");
    assert_eq!(r.records, 200, "two seconds read again, the 200 applied changes count: {}", r.summary());
    assert_eq!(h.sm.status().unwrap()[0].checkpoint_display, NEWEST, "the checkpoint never moves back");
}

#[tokio::test]
async fn bad_records_become_failed_items_and_a_full_resync_heals_them_and_finds_deletions() {
    let h = harness(100, "").await;
    h.mock.inject(Fault { kind: FaultKind::MissingRowVersion { records: 2 }, entity: Some("vendors".into()), times: 1 });
    let r = h.sync_ok("vendors").await;
    assert_eq!(r.failed_new, 2, "{}", r.summary());
    let items = h.sm.failed_items(&Default::default(), None, 10).unwrap();
    assert!(items.iter().all(|i| i.message == "the record has no `lastModified`"), "{items:?}");
    assert_eq!(h.replica("vendors").len(), 298, "the rest of the page is applied");

    let gone = h.mock.delete("vendors", 3);
    let r = h.sm.resync("vendors", false, &Default::default()).await.unwrap();
    assert_eq!((r.outcome, r.pass.unwrap().deleted), (Outcome::CaughtUp, 3), "{}", r.summary());
    assert_replica_is_the_feed(&h, TimestampFormat::Rfc3339);
    assert!(gone.iter().all(|id| !h.replica("vendors").contains_key(id)));
    let s = &h.sm.status().unwrap()[0];
    assert_eq!((s.pending_failed, s.checkpoint_display.as_str()), (0, NEWEST), "healed, at the same checkpoint");
    assert!(s.lag_seconds.is_some_and(|l| l < 60) && s.health == syncmon_core::Health::Healthy, "{s:?}");
}
