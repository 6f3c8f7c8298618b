//! Activity survives a restart: the events of one engine are listed by the next one opened on the
//! same SQLite file (and by a read-only one), newest first, and numbering carries on.

mod common;
use common::{entities, Harness};
use serde_json::json;
use std::sync::Arc;
use syncmon_core::config::Config;
use syncmon_core::{EventKind, Syncmon};
use syncmon_mock::MockConfig;

#[tokio::test]
async fn events_are_listed_after_the_engine_is_reopened_on_the_same_file() {
    let mut h = Harness::start(MockConfig { entities: entities(&[("items", 250)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    let before = h.sm.recent_events(1000);
    let finished = |events: &[syncmon_core::Event]| {
        events.iter().filter(|e| matches!(&e.kind, EventKind::CycleFinished { entity, records: 250, .. } if entity == "items")).count()
    };
    assert_eq!(finished(&before), 1, "{before:?}");
    let pages = before.iter().filter(|e| matches!(e.kind, EventKind::PageApplied { .. })).count();
    assert!(pages >= 3, "a page_applied per page of 100: {before:?}");
    let last_seq = before[0].seq;

    // A restart: the first engine is gone before the next opens the file.
    let dir = h.dir.path().to_path_buf();
    let first = std::mem::replace(&mut h.sm, Arc::new(Syncmon::open_read_only(Config::parse(&h.config_text).unwrap(), &dir).unwrap()));
    drop(first);
    h.sm = Arc::new(Syncmon::open(Config::parse(&h.config_text).unwrap(), &dir).unwrap());
    let after = h.sm.recent_events(1000);
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), before.iter().map(|e| e.seq).collect::<Vec<_>>(), "the same events, newest first");
    assert_eq!(finished(&after), 1);

    // The next run's events number on and come first.
    h.sync_ok("items").await;
    let again = h.sm.recent_events(1000);
    assert_eq!(finished(&again), 1, "a second caught-up cycle with 0 records, the first still listed");
    assert!(again[0].seq > last_seq, "numbering carries on: {} after {last_seq}", again[0].seq);
    assert!(again.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");
    assert_eq!(h.sm.recent_events(2).len(), 2, "the limit holds");

    // A read-only engine (status, diagnostics beside a running agent) reads the same log.
    let ro = Syncmon::open_read_only(Config::parse(&h.config_text).unwrap(), &dir).unwrap();
    assert_eq!(ro.recent_events(1000).iter().map(|e| e.seq).collect::<Vec<_>>(), again.iter().map(|e| e.seq).collect::<Vec<_>>());
}

async fn rpc(sm: &Arc<Syncmon>, req: serde_json::Value) -> serde_json::Value {
    let parsed = syncmon_core::api::parse_request(req.clone()).unwrap_or_else(|e| panic!("{req}: {e}"));
    syncmon_core::api::call(sm, parsed).await.unwrap_or_else(|e| panic!("{req}: {e}"))
}

fn seqs(page: &serde_json::Value) -> Vec<u64> {
    page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

/// The `activity` method searches the stored log: by entity (a bare name the config knows), by
/// type, by a Trackingid, paged back with `before_seq` and saying when older events match.
#[tokio::test]
async fn activity_is_searched_in_the_store_and_paged_back() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 250), ("customers", 30)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    h.sync_ok("customers").await;
    let all = rpc(&h.sm, json!({"method": "activity", "params": {"limit": 1000}})).await;
    assert_eq!(all["more"], false);

    let items = rpc(&h.sm, json!({"method": "activity", "params": {"entity": "items", "limit": 1000}})).await;
    let events = items["events"].as_array().unwrap();
    assert!(events.len() >= 5, "cycle started, 3 pages, cycle finished: {items}");
    assert!(events.iter().all(|e| e["entity"] == "items"), "only items: {items}");
    assert!(seqs(&all).len() > events.len(), "customers' events are in the log but not here");

    // A Trackingid of the items cycle finds its events, whatever the case.
    let finished = events.iter().find(|e| e["type"] == "cycle_finished").expect("items finished");
    let tracking = finished["tracking_id"].as_str().expect("the last answer's Trackingid").to_uppercase();
    let found = rpc(&h.sm, json!({"method": "activity", "params": {"text": tracking}})).await;
    assert!(seqs(&found).contains(&finished["seq"].as_u64().unwrap()), "{found}");
    assert!(found["events"].as_array().unwrap().iter().all(|e| e["entity"] == "items"), "{found}");

    // Pages of two page_applied events, back to the first.
    let mut before: Option<u64> = None;
    let mut paged = Vec::new();
    for _ in 0..10 {
        let page = rpc(&h.sm, json!({"method": "activity", "params": {"entity": "src/items", "kind": "page_applied", "limit": 2, "before_seq": before}})).await;
        paged.extend(seqs(&page));
        before = paged.last().copied();
        if page["more"] == false {
            break;
        }
    }
    let pages: Vec<u64> = events.iter().filter(|e| e["type"] == "page_applied").map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(paged, pages, "the same pages, newest first, none twice");
    assert!(pages.len() >= 3);

    // Empty words are no condition; a time window in the future finds nothing.
    let empty = rpc(&h.sm, json!({"method": "activity", "params": {"entity": "", "kind": " ", "text": "", "limit": 1000}})).await;
    assert_eq!(seqs(&empty), seqs(&all));
    let later = rpc(&h.sm, json!({"method": "activity", "params": {"since": h.sm.now_ms() + 60_000}})).await;
    assert_eq!((seqs(&later).len(), later["more"].as_bool()), (0, Some(false)));
}

/// The Entity screen's lag history: after two catch-ups, two teeth (a peak and a 0 at each), and
/// the last point is measured from the last catch-up the status names.
#[tokio::test]
async fn the_entity_detail_has_the_lag_since_each_catch_up() {
    let h = Harness::start(MockConfig { entities: entities(&[("items", 120)]), ..Default::default() }, "", "").await;
    h.sync_ok("items").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    h.sync_ok("items").await;
    let detail = rpc(&h.sm, json!({"method": "entity_detail", "params": {"entity": "items"}})).await;
    let lag = detail["lag"].as_array().unwrap();
    let zeros = lag.iter().filter(|p| p["lag_ms"] == 0).count();
    assert_eq!(zeros, 2, "{lag:?}");
    assert_eq!(lag[0]["lag_ms"], serde_json::Value::Null, "never caught up before the first sync");
    let last = lag.last().unwrap();
    let caught_up = detail["status"]["last_caught_up_at"].as_i64().unwrap();
    assert_eq!(last["at"].as_i64().unwrap() - last["lag_ms"].as_i64().unwrap(), caught_up);
    let week = 7 * 24 * 3_600_000;
    assert_eq!(last["at"].as_i64().unwrap() - lag[0]["at"].as_i64().unwrap(), week, "the chart's 7 days");
}
