//! The demo's generated config against its simulated source: every profile the demo shows
//! (rowVersion entities, a timestamp feed, a snapshot feed, a two-way pair) syncs to a replica
//! equal to the source.

use std::net::TcpListener;
use syncmon_core::{Health, Outcome, RunKind};
use syncmon_demo::{Demo, DemoOptions};
use tokio_util::sync::CancellationToken;

fn free_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_syncs_one_entity_of_every_profile() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions { mock_listen: free_port(), webhook_listen: free_port(), records: 200, poll_seconds: 15 };
    let demo = Demo::start(&opts, dir.path()).await.unwrap();
    let sm = demo.open().unwrap();
    let profiles: Vec<_> = sm.config().connections.iter().map(|c| format!("{:?}", c.profile).to_lowercase()).collect();
    assert_eq!(profiles, ["rowversion", "timestamp", "snapshot", "rowversion", "rowversion"], "one connection of each profile, and the two-way pair");

    let entities = sm.select(None, &[]).unwrap();
    let reports = sm.sync_once(&entities, &CancellationToken::new()).await;
    assert_eq!(reports.len(), 7, "items, customers, salesorders, vendors, prices, and the pair's stock on both sides");
    for r in &reports {
        assert_eq!((r.outcome, r.kind), (Outcome::CaughtUp, RunKind::Incremental), "{}", r.summary());
    }
    let status = sm.status().unwrap();
    for (name, rows) in [("vendors", 300), ("prices", 150)] {
        let s = status.iter().find(|s| s.entity == name).unwrap_or_else(|| panic!("{name} in the demo's status"));
        assert_eq!((s.health, s.replica_rows), (Health::Healthy, rows), "{s:?}");
    }
    let prices = status.iter().find(|s| s.entity == "prices").unwrap();
    assert!(prices.last_complete_pass_at.is_some(), "the snapshot feed shows its last complete pass: {prices:?}");
    let vendors = status.iter().find(|s| s.entity == "vendors").unwrap();
    assert!(vendors.checkpoint_display.contains('T'), "the timestamp feed's checkpoint is a date: {vendors:?}");
}
