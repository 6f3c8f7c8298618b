//! Activity survives a restart: the events of one engine are listed by the next one opened on the
//! same SQLite file (and by a read-only one), newest first, and numbering carries on.

mod common;
use common::{entities, Harness};
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
