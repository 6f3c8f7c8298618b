//! How fast changes reach a target: records delivered per second to the simulated target when
//! every answer takes 20 ms, at the target's `max_concurrency` 1 and 5. The entity is synced
//! first without forwarding; forwarding is then turned on, which queues every record, and the
//! timed pass (one near-empty incremental read plus the delivery) sends them all.
//! Prints the figures and the peak number of deliveries the target saw at once.
//!
//!     cargo run --release -p syncmon-core --example deliver_bench [-- 1000]

use std::time::{Duration, Instant};
use syncmon_core::config::Config;
use syncmon_core::Syncmon;
use syncmon_mock::{EntitySpec, MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

fn config(base: &str, concurrency: usize, forward: bool) -> Config {
    let fwd = if forward { "forward_to = \"dst\"\n" } else { "" };
    let text = format!(
        "[[connection]]\nid = \"src\"\nbase_url = \"{base}\"\nrequests_per_second = 1000\n\
         [[connection.entity]]\nname = \"items\"\npage_size = 500\n{fwd}\
         [[target]]\nid = \"dst\"\nbase_url = \"{base}/target\"\nmax_concurrency = {concurrency}\nrequests_per_second = 10000\ntimeout = \"5s\"\n"
    );
    Config::parse(&text).unwrap()
}

async fn run(records: usize, concurrency: usize) {
    let mock = MockServer::start(MockConfig { entities: vec![EntitySpec { name: "items".into(), records }], ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let sm = Syncmon::open(config(&mock.base_url(), concurrency, false), dir.path()).unwrap();
        let sel = sm.select(None, &["items".to_string()]).unwrap();
        sm.sync_once(&sel, &CancellationToken::new()).await;
    }
    mock.set_target_delay(Duration::from_millis(20));
    let sm = Syncmon::open(config(&mock.base_url(), concurrency, true), dir.path()).unwrap();
    let sel = sm.select(None, &["items".to_string()]).unwrap();
    let started = Instant::now();
    let report = sm.sync_once(&sel, &CancellationToken::new()).await.remove(0);
    let secs = started.elapsed().as_secs_f64();
    let delivered = report.forwarded.as_ref().map(|f| f.delivered).unwrap_or(0);
    assert_eq!(delivered as usize, records, "{}", report.summary());
    println!(
        "target answering in 20 ms, max_concurrency {concurrency}: {delivered} records in {secs:.2} s = {:.0} records/s (peak in flight {})",
        delivered as f64 / secs,
        mock.target_peak_in_flight()
    );
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    for c in [1, 5] {
        run(records, c).await;
    }
}
